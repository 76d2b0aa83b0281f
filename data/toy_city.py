"""Toy city: procedurally drawn street scenes written in the Cityscapes on-disk layout.

Each image is a pinhole-camera view down a street: a horizon and vanishing point (jittered per
image), a road converging to it with lane markings, sidewalks, building facades or houses, lawns,
hedges and tree lines along the sides, and cars, persons, poles, traffic signs and traffic lights
scaled by their depth. Three scene types give multi-modal class proportions:

- `downtown`: tall buildings on both sides, a narrow wedge of sky, busy sidewalks, parked cars,
  poles with signs and traffic lights;
- `suburb`: low houses behind lawns and hedges, many trees, a wide sky, few cars and persons;
- `highway`: a wide multi-lane road, grass verges and tree lines, a big sky, many cars, no persons.

Some images show the ego vehicle's hood at the bottom, as in real Cityscapes. The images are
textured per class (lighting and tint per image, texture noise, windows, lane markings, paving
joints, foliage, sky gradients and clouds, haze with distance), with some classes close in colour
(sidewalk and road, overcast sky and grey facades), so a segmenter has to use more than colour.

Everything is drawn with numpy over pixel grids in painter's order (far to near), so the label,
instance and colour images agree on occlusion. Files follow Cityscapes exactly:
`leftImg8bit/{split}/{city}/{city}_{seq:06d}_000019_leftImg8bit.png` and, under `gtFine`, the
`_gtFine_labelIds`, `_gtFine_instanceIds` (16-bit) and `_gtFine_color` PNGs, with the scene type as
the city. Output is a pure function of the seed and arguments.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

SCENE_TYPES = ("downtown", "suburb", "highway")
SPLITS = ("train", "val")
FRAME = 19  # the annotated frame of each Cityscapes snippet
PNG_COMPRESS_LEVEL = 1

# Cityscapes raw label ids (data.labels' "cityscapes" channels; the tests check the names).
EGO_VEHICLE, ROAD, SIDEWALK, BUILDING, WALL, FENCE = 1, 7, 8, 11, 12, 13
POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN, VEGETATION, TERRAIN, SKY = 17, 19, 20, 21, 22, 23
PERSON, CAR = 24, 26
THING_IDS = (PERSON, CAR)
DRAWN_IDS = (EGO_VEHICLE, ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, TRAFFIC_LIGHT,
             TRAFFIC_SIGN, VEGETATION, TERRAIN, SKY, PERSON, CAR)

CAM_H = 1.5  # camera height above the road, metres
EGO_FRACTION = 0.35

Window = tuple[slice, slice]


# ----------------------------------------------------------------------------------------------
# Canvas, camera and texture helpers


def _value_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Smooth noise (about unit amplitude) with features about `cell` pixels wide."""
    grid = rng.standard_normal((int(height / cell) + 2, int(width / cell) + 2)).astype(np.float32)
    y = (np.arange(height, dtype=np.float32) + 0.5) / cell
    x = (np.arange(width, dtype=np.float32) + 0.5) / cell
    y0, x0 = y.astype(np.int64), x.astype(np.int64)
    ty, tx = y - y0, x - x0
    ty, tx = (ty * ty * (3 - 2 * ty))[:, None], (tx * tx * (3 - 2 * tx))[None, :]
    top = grid[y0][:, x0] * (1 - tx) + grid[y0][:, x0 + 1] * tx
    bottom = grid[y0 + 1][:, x0] * (1 - tx) + grid[y0 + 1][:, x0 + 1] * tx
    return top * (1 - ty) + bottom * ty


def _band(dist, half_width: float, px):
    """Box-filtered coverage of the band |dist| < half_width when a pixel spans `px` (same units)."""
    return np.maximum(np.minimum(dist + half_width, px / 2) - np.maximum(dist - half_width, -px / 2), 0) / px


def _bands(coord, period: float, half_width: float, px, phase: float = 0.0):
    """Coverage of bands centred every `period` along coord; tends to the mean coverage once a
    pixel spans several bands, so distant patterns blur instead of aliasing."""
    c = coord - phase
    single = _band(c - period * np.round(c / period), half_width, px)
    t = np.minimum(np.maximum(2 * px / period - 0.5, 0), 1)  # np.clip's overhead shows up here
    return single + (2 * half_width / period - single) * t


def _colour(rgb) -> np.ndarray:
    """An RGB triple shaped to broadcast over planar (3 x h x w) images."""
    return np.asarray(rgb, np.float32).reshape(3, 1, 1)


def _rgb(rng: np.random.Generator, base, jitter: float = 12.0) -> np.ndarray:
    """A colour near base."""
    return _colour(np.minimum(np.maximum(np.add(base, rng.uniform(-jitter, jitter, 3)), 0), 255))


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _mix(a, b, t):
    """a*(1-t) + b*t."""
    return a + (b - a) * np.asarray(t, np.float32)


class _Canvas:
    """Label, instance and colour buffers plus the pinhole camera that maps the street onto them.

    World coordinates: X to the right of the camera, Y up from the road, Z forward (metres).
    Colours are planar (3 x H x W): numpy broadcasts far faster over a leading colour axis.
    """

    def __init__(self, rng: np.random.Generator, height: int, width: int):
        self.h, self.w = height, width
        self.label = np.zeros((height, width), np.uint8)
        self.inst = np.zeros((height, width), np.int32)
        self.img = np.zeros((3, height, width), np.float32)
        self.depth = np.zeros((height, width), np.float32)
        self.f = width * float(rng.uniform(0.8, 1.05))  # focal length, pixels
        self.yh = height * float(rng.uniform(0.36, 0.5))  # horizon row
        self.vx = width * float(rng.uniform(0.4, 0.6))  # vanishing point column
        self.ys = np.arange(height, dtype=np.float32) + 0.5  # pixel centres
        self.xs = np.arange(width, dtype=np.float32) + 0.5
        self.next_k = {k: 0 for k in THING_IDS}
        # Screen-space noise shared by all textures: per-pixel grain, small blotches, large patches.
        self.grain = rng.standard_normal((height, width), dtype=np.float32)
        self.blotch = _value_noise(rng, height, width, max(2.0, width / 80))
        self.patch = _value_noise(rng, height, width, max(6.0, width / 14))
        # The sun lights one side of the street; the other side and the fronts are in shade.
        sunny = float(rng.uniform(0.95, 1.12))
        shaded = float(rng.uniform(0.6, 0.85))
        self.light_left, self.light_right = (sunny, shaded) if rng.random() < 0.5 else (shaded, sunny)
        self.light_front = float(rng.uniform(0.75, 0.95))
        self.haze_dist = float(rng.uniform(150, 450))
        self.haze_rgb = _colour((200, 200, 200))  # set by the sky

    # Projection -------------------------------------------------------------------------------

    def col(self, X: float, Z: float) -> float:
        return self.vx + self.f * X / Z

    def row(self, Y: float, Z: float) -> float:
        return self.yh + self.f * (CAM_H - Y) / Z

    def _rows(self, top: float, bottom: float) -> slice | None:
        i0, i1 = max(0, math.floor(top)), min(self.h, math.ceil(bottom))
        return slice(i0, i1) if i0 < i1 else None

    def _cols(self, left: float, right: float) -> slice | None:
        j0, j1 = max(0, math.floor(left)), min(self.w, math.ceil(right))
        return slice(j0, j1) if j0 < j1 else None

    def frontal(self, Z: float, X0: float, X1: float, Y0: float, Y1: float):
        """Window covering the upright rectangle [X0, X1] x [Y0, Y1] at depth Z (facing the camera),
        with the world X of its columns (1 x w) and Y of its rows (h x 1); None when off screen."""
        rows = self._rows(self.row(Y1, Z), self.row(Y0, Z))
        cols = self._cols(self.col(X0, Z), self.col(X1, Z))
        if rows is None or cols is None:
            return None
        X = (self.xs[cols] - self.vx) * (Z / self.f)
        Y = CAM_H - (self.ys[rows] - self.yh) * (Z / self.f)
        return (rows, cols), X[None, :], Y[:, None]

    def side(self, X: float, Z0: float, Z1: float, Y0: float, Y1: float):
        """Window covering the part of the vertical plane at lateral offset X (parallel to the
        street) between depths Z0..Z1 and heights Y0..Y1, with the depth of its columns (1 x w) and
        the height of its pixels (h x w); None when off screen."""
        Z0 = max(Z0, 0.3)
        if abs(X) < 1e-3 or Z1 <= Z0:
            return None
        c0, c1 = sorted((self.col(X, Z0), self.col(X, Z1)))
        cols = self._cols(c0, c1)
        rows = self._rows(min(self.row(Y1, Z0), self.row(Y1, Z1)), max(self.row(Y0, Z0), self.row(Y0, Z1)))
        if rows is None or cols is None:
            return None
        inv_depth = np.maximum((self.xs[cols] - self.vx) / (self.f * X), 1e-6)
        Z = (1.0 / inv_depth)[None, :]
        Y = CAM_H - (self.ys[rows, None] - self.yh) * (Z / self.f)
        return (rows, cols), Z, Y

    def ground(self):
        """Window of the rows below the horizon with the world X (h x w) and Z (h x 1) of the road
        plane there."""
        i0 = min(self.h, max(0, math.floor(self.yh + 0.5)))
        dy = np.maximum(self.ys[i0:] - self.yh, 1e-3)[:, None]
        Z = self.f * CAM_H / dy
        X = (self.xs[None, :] - self.vx) * (CAM_H / dy)
        return (slice(i0, self.h), slice(0, self.w)), X, Z

    # Painting ---------------------------------------------------------------------------------

    def new_instance(self, label: int) -> int:
        k = self.next_k[label]
        self.next_k[label] = k + 1
        return label * 1000 + k

    def paint(self, win: Window, mask, label: int, color, depth=0.0, instance_id: int | None = None):
        """Sets label, instance id, colour and depth (for the haze; 0 = none) where mask is true
        inside the window."""
        shape = (win[0].stop - win[0].start, win[1].stop - win[1].start)
        mask = np.broadcast_to(mask, shape)
        if not mask.any():
            return
        np.copyto(self.label[win], label, where=mask)
        np.copyto(self.inst[win], label if instance_id is None else instance_id, where=mask)
        np.copyto(self.depth[win], depth, where=mask, casting="same_kind")
        np.copyto(self.img[:, win[0], win[1]], color, where=mask, casting="same_kind")

    def apply_haze(self) -> None:
        """Fades each pixel toward the horizon sky with its distance (aerial perspective)."""
        fade = 1.0 - np.exp(self.depth * np.float32(-1.0 / self.haze_dist))
        self.img += (self.haze_rgb - self.img) * fade

    def texture(self, win: Window, grain: float, blotch: float, patch: float = 0.0) -> np.ndarray:
        """Brightness field around 1 made of the canvas noise inside a window."""
        m = 1.0 + grain * self.grain[win] + blotch * self.blotch[win]
        return m + patch * self.patch[win] if patch else m

    def shade(self, win: Window, base: np.ndarray, grain: float, blotch: float, patch: float = 0.0):
        """Base colour modulated by the canvas noise inside a window."""
        return base * self.texture(win, grain, blotch, patch)

    def foliage(self, win: Window, base: np.ndarray) -> np.ndarray:
        """Leaves: clumps of light and dark green rather than a flat colour."""
        clumps = np.clip(0.5 + 0.45 * self.blotch[win] + 0.2 * self.grain[win], 0, 1)
        dark = base * np.float32(0.55)
        light = base * np.float32(1.2) + _colour((12, 10, -4))
        return _mix(dark, light, clumps)


# ----------------------------------------------------------------------------------------------
# Street layout


class _Street:
    """Lateral layout of a street in metres: lanes, optional parking strips, sidewalks."""

    def __init__(self, rng, lanes: int, lane_w: float, park: tuple[float, float], walks: tuple[float, float]):
        self.lane_w = lane_w
        self.oncoming = lanes // 2  # lanes left of the centre line come toward the camera
        cam_lane = int(rng.integers(self.oncoming, lanes)) if lanes > 1 else 0
        self.road_l = -(park[0] + (cam_lane + 0.5) * lane_w) + float(rng.uniform(-0.4, 0.4)) * min(1.0, lane_w / 3.5)
        self.lanes_l = self.road_l + park[0]
        self.road_r = self.lanes_l + lanes * lane_w + park[1]
        self.park = park
        self.walk_l, self.walk_r = walks
        self.lane_centres = [self.lanes_l + (i + 0.5) * lane_w for i in range(lanes)]
        self.boundaries = [self.lanes_l + i * lane_w for i in range(1, lanes)]
        self.centre_line = self.lanes_l + self.oncoming * lane_w if lanes > 1 else None

    def away(self, i: int) -> bool:
        return i >= self.oncoming

    @property
    def outer_l(self) -> float:
        return self.road_l - self.walk_l

    @property
    def outer_r(self) -> float:
        return self.road_r + self.walk_r


# ----------------------------------------------------------------------------------------------
# Background: sky, ground, backdrops


def _sky(cv: _Canvas, rng: np.random.Generator) -> None:
    """The whole frame: a vertical gradient, paler toward the horizon, with clouds."""
    if rng.random() < 0.35:  # overcast: grey, close to concrete facades
        g = float(rng.uniform(150, 200))
        top = _rgb(rng, (g - 12, g - 6, g + 2), 6)
        bottom = _rgb(rng, (g + 18, g + 20, g + 22), 6)
        cover, cloud_rgb = float(rng.uniform(0.2, 0.5)), top * 0.85
    else:
        top = _rgb(rng, (55, 110, 195), 25)
        bottom = _rgb(rng, (180, 200, 225), 15)
        cover, cloud_rgb = float(rng.uniform(0.0, 0.9)), _rgb(rng, (238, 238, 240), 8)
    cv.haze_rgb = np.clip(bottom, 0, 255)
    t = np.clip(cv.ys / max(cv.yh, 1.0), 0, 1)[:, None] ** 0.7
    color = _mix(top, bottom, t)
    clouds = np.clip((cv.patch + 0.2 * cv.blotch - (1.0 - cover)) * 1.5, 0, 0.9)
    full = (slice(0, cv.h), slice(0, cv.w))
    cv.paint(full, True, SKY, _mix(color, cloud_rgb, clouds))


def _ground(cv: _Canvas, rng: np.random.Generator, st: _Street, markings: str,
            crosswalk_z: float | None = None) -> None:
    """Terrain everywhere below the horizon, then sidewalks and the road with its markings."""
    win, X, Z = cv.ground()
    if win[0].start >= cv.h:
        return
    px_x, px_z = Z / cv.f, Z * Z / (cv.f * CAM_H)  # pixel footprint across and along the street

    grass = _pick(rng, ((95, 120, 60), (120, 130, 70), (140, 125, 85), (85, 110, 55)))
    terrain = cv.shade(win, _rgb(rng, grass, 12), 0.08, 0.14, 0.12)
    cv.paint(win, True, TERRAIN, terrain, Z)

    walk_rgb = _rgb(rng, _pick(rng, ((128, 126, 124), (150, 145, 138), (160, 128, 118), (112, 112, 114))), 10)
    joints = np.maximum(_bands(X, 0.6, 0.025, px_x), _bands(Z, 0.6, 0.025, px_z))
    walk = cv.shade(win, walk_rgb, 0.06, 0.05, 0.06) * (1 - 0.3 * joints)
    curb = np.maximum(_band(X - st.road_l + 0.1, 0.1, px_x), _band(X - st.road_r - 0.1, 0.1, px_x))
    walk = _mix(walk, walk_rgb * 1.25, curb * 0.8)
    on_walk = ((X >= st.outer_l) & (X < st.road_l)) | ((X > st.road_r) & (X <= st.outer_r))
    cv.paint(win, on_walk, SIDEWALK, walk, Z)

    asphalt = cv.shade(win, _rgb(rng, (88, 88, 92), 14), 0.06, 0.06, 0.08)
    paint_rgb = _rgb(rng, (225, 225, 220), 12)
    wear = float(rng.uniform(0.6, 0.95))
    lines = np.zeros_like(X)
    phase = float(rng.uniform(0, 10))
    if markings != "none":
        for b in st.boundaries:
            if b == st.centre_line and markings == "solid-centre":
                lines = np.maximum(lines, _band(X - b, 0.08, px_x))
            else:
                dash = 3.0 if markings == "highway" else 2.0
                lines = np.maximum(lines, _band(X - b, 0.07, px_x) * _bands(Z, 3 * dash, dash / 2, px_z, phase))
    if markings == "highway":  # solid edge lines
        for edge in (st.road_l + 0.4, st.road_r - 0.4):
            lines = np.maximum(lines, _band(X - edge, 0.1, px_x))
    if crosswalk_z is not None:
        zebra = _bands(X, 1.0, 0.25, px_x, phase) * _band(Z - crosswalk_z - 2.0, 2.0, px_z)
        lines = np.maximum(lines, zebra)
    road = _mix(asphalt, paint_rgb, lines * wear * np.clip(1.0 + 0.3 * cv.blotch[win], 0, 1))
    on_road = (X >= st.road_l) & (X <= st.road_r)
    cv.paint(win, on_road, ROAD, road, Z)


def _skyline(cv: _Canvas, rng: np.random.Generator, Z: float, heights: tuple[float, float]) -> None:
    """Buildings across the far end of the street."""
    span = (cv.w + abs(cv.vx) + 10) * Z / cv.f
    X = -span
    while X < span:
        width = float(rng.uniform(8, 30))
        height = float(rng.uniform(*heights))
        got = cv.frontal(Z, X, X + width, 0, height)
        if got:
            win, Xw, Yw = got
            mask = (Xw >= X) & (Xw < X + width) & (Yw <= height) & (Yw >= 0)
            base = _rgb(rng, _pick(rng, _FACADE_COLOURS), 15) * cv.light_front
            cv.paint(win, mask, BUILDING, cv.shade(win, base, 0.04, 0.05), Z)
        X += width


def _hills(cv: _Canvas, rng: np.random.Generator, Z: float, height: float, label: int) -> None:
    """A far ridge of wooded hills or fields across the view."""
    span = (cv.w + 10) * Z / cv.f * 2
    got = cv.frontal(Z, -span, span, 0, height * 1.6)
    if not got:
        return
    win, X, Y = got
    ridge = height * (0.6 + 0.25 * np.sin(X / (0.3 * span) + rng.uniform(0, 6))
                      + 0.15 * np.sin(X / (0.07 * span) + rng.uniform(0, 6)))
    base = _rgb(rng, (70, 100, 50) if label == VEGETATION else (120, 125, 80), 10)
    color = cv.foliage(win, base) if label == VEGETATION else cv.shade(win, base, 0.05, 0.1)
    cv.paint(win, (Y <= ridge) & (Y >= 0), label, color, Z)


# ----------------------------------------------------------------------------------------------
# Buildings and vegetation along the street

_FACADE_COLOURS = ((150, 150, 148), (170, 165, 155), (185, 170, 145), (150, 90, 70), (205, 195, 175),
                   (125, 105, 90), (200, 200, 200), (105, 115, 130), (160, 140, 120), (120, 120, 125))
_GLASS_COLOURS = ((45, 55, 70), (70, 85, 105), (30, 35, 40), (110, 130, 150))


def _windows(along, Y, px_along, px_y, spacing: float, width: float, floor_h: float, win_h: float,
             first_floor: float, top: float, phase: float):
    """Coverage of a grid of windows on a wall (along: horizontal wall coordinate, Y: height)."""
    cov = _bands(along, spacing, width / 2, px_along, phase) * _bands(Y, floor_h, win_h / 2, px_y, floor_h / 2)
    return cov * ((Y > first_floor) & (Y < top - 0.6))


def _glazed(wall: np.ndarray, glass: np.ndarray, brightness: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Wall colour times a brightness field, with windows of coverage cov."""
    return wall * (brightness * (1 - cov)) + glass * cov


def _building(cv: _Canvas, rng: np.random.Generator, X: float, Z0: float, Z1: float, height: float,
              modern: bool, end_wall: bool = True) -> None:
    """A block whose street-side facade is the plane at lateral offset X from depth Z0 to Z1;
    end_wall: whether its wall facing the camera can show (not behind a taller nearer block)."""
    base = _rgb(rng, _pick(rng, _GLASS_COLOURS[1:] if modern else _FACADE_COLOURS), 14)
    glass = _rgb(rng, _pick(rng, _GLASS_COLOURS), 10)
    floor_h = float(rng.uniform(2.8, 3.8))
    spacing = float(rng.uniform(1.6, 2.4)) if modern else float(rng.uniform(2.5, 4.5))
    win_w = spacing * float(rng.uniform(0.7, 0.9) if modern else rng.uniform(0.3, 0.6))
    win_h = floor_h * float(rng.uniform(0.6, 0.8) if modern else rng.uniform(0.35, 0.55))
    first = floor_h * float(rng.uniform(0.9, 1.3))
    phase = float(rng.uniform(0, spacing))
    outward = math.copysign(float(rng.uniform(10, 20)), X)
    light = cv.light_left if X < 0 else cv.light_right

    # The end wall facing the camera shows only above lower, nearer buildings (drawn later).
    got = end_wall and cv.frontal(Z0, min(X, X + outward), max(X, X + outward), 0, height)
    if got:
        win, Xw, Y = got
        mask = (Y >= 0) & (Y <= height) & (np.abs(Xw - X - outward / 2) <= abs(outward) / 2)
        px = Z0 / cv.f
        cov = _windows(Xw, Y, px, px, spacing, win_w, floor_h, win_h, first, height, phase)
        color = _glazed(base * cv.light_front, glass * 0.8, cv.texture(win, 0.04, 0.04, 0.03), cov)
        cv.paint(win, mask, BUILDING, color, Z0)

    got = cv.side(X, Z0, Z1, 0, height)
    if got:
        win, Z, Y = got
        mask = (Z >= Z0) & (Z <= Z1) & (Y >= 0) & (Y <= height)
        cov = _windows(Z, Y, Z * Z / (cv.f * abs(X)), Z / cv.f, spacing, win_w, floor_h, win_h, first, height, phase)
        # A darker ground floor (shop fronts, entrances) and a lighter cornice band at the top.
        brightness = cv.texture(win, 0.04, 0.05, 0.04) * np.where(Y < first * 0.9, 0.7, 1.0)
        brightness = brightness + 0.15 * _band(Y - height + 0.3, 0.3, Z / cv.f)
        cv.paint(win, mask, BUILDING, _glazed(base * light, glass * light, brightness, cov), Z)


def _building_row(cv: _Canvas, rng: np.random.Generator, X: float, z_far: float,
                  heights: tuple[float, float], lengths: tuple[float, float], modern_p: float) -> None:
    """Contiguous blocks along one side of the street, drawn far to near."""
    blocks, Z = [], 1.0
    while Z < z_far:
        length = float(rng.uniform(*lengths))
        blocks.append((Z, min(Z + length, z_far), float(rng.uniform(*heights)), bool(rng.random() < modern_p)))
        Z += length
    nearer = [0.0] + [b[2] for b in blocks[:-1]]
    for (Z0, Z1, height, modern), in_front in zip(reversed(blocks), reversed(nearer)):
        _building(cv, rng, X, Z0, Z1, height, modern, end_wall=height > in_front)


def _house(cv: _Canvas, rng: np.random.Generator, X: float, Z0: float, Z1: float) -> None:
    """A detached house with a gable roof, its long wall along the street at lateral offset X."""
    wall_rgb = _rgb(rng, _pick(rng, _FACADE_COLOURS), 14)
    roof_rgb = _rgb(rng, _pick(rng, ((140, 70, 55), (70, 65, 65), (110, 80, 60), (95, 95, 100))), 10)
    glass = _rgb(rng, _pick(rng, _GLASS_COLOURS), 10)
    wall_h = float(rng.uniform(2.8, 6.0))
    roof_h = float(rng.uniform(1.5, 3.5))
    depth = math.copysign(float(rng.uniform(7, 12)), X)
    light = cv.light_left if X < 0 else cv.light_right
    phase = float(rng.uniform(0, 3))

    got = cv.frontal(Z0, min(X, X + depth), max(X, X + depth), 0, wall_h + roof_h)
    if got:  # gable end facing the camera
        win, Xw, Y = got
        u = np.abs(Xw - X - depth / 2) / (abs(depth) / 2)
        wall = (u <= 1) & (Y >= 0) & (Y <= wall_h)
        gable = (u <= 1) & (Y > wall_h) & (Y <= wall_h + roof_h * (1 - u))
        px = Z0 / cv.f
        cov = _windows(Xw, Y, px, px, 3.0, 1.2, 2.8, 1.3, 0.6, wall_h + 0.5, phase)
        color = _glazed(wall_rgb * cv.light_front, glass, cv.texture(win, 0.04, 0.05), cov)
        color = np.where(gable, cv.shade(win, roof_rgb * cv.light_front * 1.1, 0.05, 0.06), color)
        cv.paint(win, wall | gable, BUILDING, color, Z0)

    got = cv.side(X, Z0, Z1, 0, wall_h + roof_h * 0.7)
    if got:
        win, Z, Y = got
        mask = (Z >= Z0) & (Z <= Z1) & (Y >= 0) & (Y <= wall_h + roof_h * 0.7)
        cov = _windows(Z, Y, Z * Z / (cv.f * abs(X)), Z / cv.f, 3.5, 1.3, 2.8, 1.3, 0.6, wall_h + 0.5, phase)
        color = _glazed(wall_rgb * light, glass * light, cv.texture(win, 0.04, 0.05), cov)
        roof = cv.shade(win, roof_rgb * (0.8 + 0.25 * (light > 1)), 0.06, 0.08)
        roof = roof * (1 - 0.25 * _bands(Y, 0.35, 0.04, Z / cv.f))  # tile courses
        color = np.where(Y > wall_h, roof, color)
        cv.paint(win, mask, BUILDING, color, Z)


def _tree_line(cv: _Canvas, rng: np.random.Generator, X: float, Z0: float, Z1: float,
               heights: tuple[float, float]) -> None:
    """A belt of trees seen from the side: a vegetation plane with a bumpy crown line."""
    top = float(rng.uniform(*heights))
    got = cv.side(X, Z0, Z1, 0, top * 1.5)
    if not got:
        return
    win, Z, Y = got
    crowns = float(rng.uniform(3, 8))
    ridge = top * (0.8 + 0.35 * np.abs(np.sin(Z / crowns + rng.uniform(0, 6))) ** 0.6
                   + 0.15 * np.sin(Z / (3.1 * crowns) + rng.uniform(0, 6)))
    ridge = ridge + 0.15 * top * cv.blotch[win]
    ridge = ridge * np.sqrt(np.clip(np.minimum(Z - Z0, Z1 - Z) / 6.0, 0, 1))  # rounded ends
    base = _rgb(rng, _pick(rng, ((60, 95, 40), (80, 110, 45), (50, 80, 45))), 10)
    light = cv.light_left if X < 0 else cv.light_right
    mask = (Z >= Z0) & (Z <= Z1) & (Y >= 0) & (Y <= ridge)
    cv.paint(win, mask, VEGETATION, cv.foliage(win, base * light), Z)


def _hedge(cv: _Canvas, rng: np.random.Generator, X: float, Z0: float, Z1: float) -> None:
    """A hedge, or a fence, along the front of a lawn."""
    if rng.random() < 0.3:
        height, label = float(rng.uniform(0.8, 1.4)), FENCE
        base = _rgb(rng, _pick(rng, ((200, 195, 185), (120, 95, 70), (90, 90, 90))), 10)
    else:
        height, label = float(rng.uniform(0.8, 1.8)), VEGETATION
        base = _rgb(rng, (55, 90, 40), 10)
    got = cv.side(X, Z0, Z1, 0, height * 1.1)
    if not got:
        return
    win, Z, Y = got
    light = cv.light_left if X < 0 else cv.light_right
    if label == FENCE:
        slats = _bands(Z, 0.25, 0.08, Z * Z / (cv.f * abs(X)))
        color = cv.shade(win, base * light, 0.04, 0.04) * (0.6 + 0.4 * slats)
        top = height
    else:
        color = cv.foliage(win, base * light)
        top = height * (1 + 0.1 * cv.blotch[win])
    cv.paint(win, (Z >= Z0) & (Z <= Z1) & (Y >= 0) & (Y <= top), label, color, Z)


def _barrier(cv: _Canvas, rng: np.random.Generator, X: float, z_far: float) -> None:
    """A concrete median barrier whose face toward the camera is the plane at X."""
    got = cv.side(X, 1.0, z_far, 0, 0.9)
    if not got:
        return
    win, Z, Y = got
    base = _rgb(rng, (150, 148, 140), 10)
    # Darker, dirtier foot; a joint between precast sections every 6 m.
    brightness = cv.texture(win, 0.05, 0.06) * (0.7 + 0.35 * np.clip(Y / 0.9, 0, 1))
    brightness = brightness * (1 - 0.3 * _bands(Z, 6.0, 0.05, Z * Z / (cv.f * abs(X))))
    color = base * brightness
    cv.paint(win, (Z >= 1.0) & (Z <= z_far) & (Y >= 0) & (Y <= 0.9), WALL, color, Z)


# ----------------------------------------------------------------------------------------------
# Objects (drawn far to near)


_CAR_COLOURS = ((230, 230, 228), (175, 178, 182), (30, 30, 32), (70, 72, 76), (150, 25, 25),
                (30, 50, 120), (20, 30, 60), (40, 80, 50), (200, 170, 40), (120, 120, 110))


def _shadow(cv: _Canvas, X0: float, X1: float, Z0: float, Z1: float) -> None:
    """Darkens the road under an object (image only; the label stays)."""
    rows = cv._rows(max(cv.row(0, Z1), cv.yh + 0.5), cv.row(0, max(Z0, 0.3)) + 1)
    if rows is None:
        return
    dy = np.maximum(cv.ys[rows] - cv.yh, 1e-3)[:, None]
    Z = cv.f * CAM_H / dy
    X = (cv.xs[None, :] - cv.vx) * (CAM_H / dy)
    mask = (X >= X0) & (X <= X1) & (Z >= Z0) & (Z <= Z1)
    cv.img[:, rows][:, mask] *= 0.45


def _car(cv: _Canvas, rng: np.random.Generator, X: float, Z: float, facing_away: bool) -> None:
    """A car as a box: the visible long side, then the end facing the camera."""
    w, h, length = float(rng.uniform(1.65, 1.9)), float(rng.uniform(1.35, 1.65)), float(rng.uniform(3.9, 4.8))
    paint = _rgb(rng, _pick(rng, _CAR_COLOURS), 12)
    glass = _rgb(rng, (35, 40, 50), 8)
    tyre = _colour((22, 22, 24))
    belt = float(rng.uniform(0.85, 1.0))  # top of the body, bottom of the windows
    iid = cv.new_instance(CAR)
    _shadow(cv, X - w / 2 - 0.1, X + w / 2 + 0.1, Z - 0.2, Z + length)

    if abs(X) > w / 2:  # the camera sees the side facing the street's centre
        sx = X - math.copysign(w / 2, X)
        got = cv.side(sx, Z, Z + length, 0, h)
        if got:
            win, Zc, Y = got
            s = (Zc - Z) / length  # 0 at the near end, 1 at the far end
            t = np.clip((Y - belt) / (h - belt), 0, 1)
            body = (s >= 0) & (s <= 1) & (Y >= 0.25) & (Y <= belt)
            cabin = (Y > belt) & (Y <= h) & (s >= 0.18 + 0.12 * t) & (s <= 0.85 - 0.1 * t)
            r = 0.33
            axles = (Z + 0.2 * length, Z + 0.8 * length)
            wheels = ((Zc - axles[0]) ** 2 + (Y - r) ** 2 < r * r) | ((Zc - axles[1]) ** 2 + (Y - r) ** 2 < r * r)
            light = cv.light_left if sx < 0 else cv.light_right  # faces the way that side's facades do
            color = cv.shade(win, paint * light * 0.9, 0.03, 0.02) * (0.85 + 0.25 * np.clip((Y - 0.25) / belt, 0, 1))
            color = np.where(cabin & (Y > belt + 0.05) & (Y < h - 0.06), glass, color)
            color = np.where(wheels, tyre, color)
            cv.paint(win, body | cabin | wheels, CAR, color, Zc, iid)

    got = cv.frontal(Z, X - w / 2, X + w / 2, 0, h)
    if not got:
        return
    win, Xw, Y = got
    u = np.abs(Xw - X)
    t = np.clip((Y - belt) / (h - belt), 0, 1)
    body = (u <= w / 2) & (Y >= 0.22) & (Y <= belt)
    cabin = (Y > belt) & (Y <= h) & (u <= w / 2 * (0.93 - 0.2 * t))
    window = cabin & (Y > belt + 0.06) & (Y < h - 0.07) & (u <= w / 2 * (0.82 - 0.2 * t))
    wheels = (Y < 0.35) & (u >= w / 2 - 0.3) & (u <= w / 2 - 0.04)
    lamps = body & (Y > belt - 0.25) & (Y < belt - 0.08) & (u > w / 2 - 0.35)
    plate = (u < 0.26) & (Y > 0.4) & (Y < 0.52)
    bumper = body & (Y < 0.4)
    color = cv.shade(win, paint, 0.03, 0.02) * (0.8 + 0.3 * np.clip((Y - 0.2) / belt, 0, 1))
    color = np.where(bumper, color * 0.6, color)
    color = np.where(window, glass, color)
    color = np.where(lamps, _colour((200, 30, 30) if facing_away else (235, 230, 200)), color)
    color = np.where(plate, _colour((225, 225, 215)), color)
    color = np.where(wheels, tyre, color)
    cv.paint(win, body | cabin | wheels, CAR, color, Z, iid)


_CLOTHES = ((30, 30, 35), (40, 50, 90), (120, 30, 35), (190, 180, 160), (90, 90, 95), (220, 220, 215),
            (60, 90, 60), (170, 110, 60), (140, 60, 120))
_SKIN = ((235, 200, 170), (200, 150, 110), (140, 95, 65), (90, 60, 45))


def _person(cv: _Canvas, rng: np.random.Generator, X: float, Z: float) -> None:
    """A pedestrian standing or walking: legs, torso, arms, head, in clothes of random colours."""
    hp = float(rng.uniform(1.55, 1.95))
    sideways = rng.random() < 0.4  # seen from the side: narrower shoulders
    half = 0.19 * (0.7 if sideways else 1.0)
    stride = float(rng.uniform(0.0, 0.18))
    got = cv.frontal(Z, X - 0.45, X + 0.45, 0, hp)
    if not got:
        return
    win, Xw, Y = got
    u = Xw - X
    px = Z / cv.f
    v = Y / hp
    legs_apart = 0.08 + stride * np.clip((0.48 - v) / 0.48, 0, 1)
    legs = (v >= 0) & (v < 0.49) & (np.abs(np.abs(u) - legs_apart) < max(0.075, px / 2))
    torso = (v >= 0.46) & (v < 0.82) & (np.abs(u) < half * (1 + 0.15 * (v - 0.46)))
    arms = (v >= 0.5) & (v < 0.8) & (np.abs(u) >= half) & (np.abs(u) < half + max(0.065, px / 2))
    head_r = 0.065 * hp
    head = (u / head_r) ** 2 + ((Y - 0.915 * hp) / (head_r * 1.25)) ** 2 < 1
    neck = (v >= 0.8) & (v < 0.88) & (np.abs(u) < max(0.05, px / 2))
    skin = _rgb(rng, _pick(rng, _SKIN), 10)
    shirt = _rgb(rng, _pick(rng, _CLOTHES), 15)
    trousers = _rgb(rng, _pick(rng, _CLOTHES[:5]), 10)
    hair = _rgb(rng, _pick(rng, ((30, 25, 20), (80, 60, 40), (150, 120, 70), (120, 120, 120))), 8)
    color = np.where(legs, trousers, shirt)
    color = np.where(head | neck, skin, color)
    color = np.where(head & (Y > 0.93 * hp), hair, color)
    color = cv.shade(win, color, 0.05, 0.03)
    cv.paint(win, legs | torso | arms | head | neck, PERSON, color, Z, cv.new_instance(PERSON))


def _post(cv: _Canvas, Z: float, X: float, Y0: float, Y1: float, half_width: float, rgb) -> None:
    """A vertical pole segment, at least one pixel wide at any distance."""
    hw = max(half_width, 0.5 * Z / cv.f)
    got = cv.frontal(Z, X - hw, X + hw, Y0, Y1)
    if got:
        win, Xw, Y = got
        color = cv.shade(win, rgb, 0.04, 0.0) * (0.8 + 0.4 * np.clip(1 - np.abs(Xw - X) / hw, 0, 1))
        cv.paint(win, (np.abs(Xw - X) <= hw) & (Y >= Y0) & (Y <= Y1), POLE, color, Z)


def _beam(cv: _Canvas, Z: float, X0: float, X1: float, Y: float, half_height: float, rgb) -> None:
    """A horizontal arm (of a street lamp or traffic-light mast)."""
    hh = max(half_height, 0.5 * Z / cv.f)
    got = cv.frontal(Z, min(X0, X1), max(X0, X1), Y - hh, Y + hh)
    if got:
        win, Xw, Yw = got
        mask = (Xw >= min(X0, X1)) & (Xw <= max(X0, X1)) & (np.abs(Yw - Y) <= hh)
        cv.paint(win, mask, POLE, rgb, Z)


def _traffic_light(cv: _Canvas, rng: np.random.Generator, X: float, Z: float, top: float) -> None:
    """A signal head hanging from `top`: a housing with three lamps, one of them lit."""
    w, h = 0.34, 0.95
    got = cv.frontal(Z, X - w / 2, X + w / 2, top - h, top)
    if not got:
        return
    win, Xw, Y = got
    mask = (np.abs(Xw - X) <= w / 2) & (Y >= top - h) & (Y <= top)
    body = _rgb(rng, _pick(rng, ((35, 35, 32), (60, 62, 58), (180, 150, 30))), 6)
    color = cv.shade(win, body, 0.04, 0.03)
    lit = int(rng.integers(3))
    for i, lamp in enumerate(((255, 40, 30), (255, 190, 30), (60, 230, 120))):
        cy = top - h * (0.2 + 0.3 * i)
        disc = (Xw - X) ** 2 + (Y - cy) ** 2 < (0.11) ** 2
        rgb = _colour(lamp) * (1.0 if i == lit else 0.25)
        color = np.where(disc, rgb, color)
    cv.paint(win, mask, TRAFFIC_LIGHT, color, Z)


def _sign(cv: _Canvas, rng: np.random.Generator, X: float, Z: float, centre: float, size: float) -> None:
    """A road sign plate: disc, triangle or rectangle with a contrasting rim."""
    shape = _pick(rng, ("disc", "triangle", "rect"))
    face, rim = _pick(rng, (((240, 240, 240), (200, 20, 25)), ((30, 80, 170), (230, 230, 230)),
                            ((240, 200, 30), (20, 20, 20)), ((200, 20, 25), (235, 235, 235))))
    r = size / 2
    got = cv.frontal(Z, X - r, X + r, centre - r, centre + r)
    if not got:
        return
    win, Xw, Y = got
    u, v = (Xw - X) / r, (Y - centre) / r
    if shape == "disc":
        d = np.sqrt(u * u + v * v)
    elif shape == "triangle":
        d = np.maximum(-v, (v + 2 * np.abs(u) * 0.87 - 0.5) / 1.1) * 1.15 + 0.3
    else:
        d = np.maximum(np.abs(u), np.abs(v) * 1.25)
    color = _mix(_colour(face), _colour(rim), d > 0.75)
    cv.paint(win, d <= 1, TRAFFIC_SIGN, cv.shade(win, color, 0.03, 0.02), Z)


def _pole(cv: _Canvas, rng: np.random.Generator, X: float, Z: float, kind: str, road_side: float) -> None:
    """A pole at the kerb with what it carries; road_side (+1/-1) points toward the road."""
    metal = _rgb(rng, _pick(rng, ((110, 112, 115), (70, 72, 70), (150, 150, 145))), 8)
    if kind == "sign":
        top = float(rng.uniform(2.4, 3.2))
        _post(cv, Z, X, 0, top, 0.04, metal)
        _sign(cv, rng, X, Z - 0.05, top - 0.35, float(rng.uniform(0.5, 0.75)))
    elif kind == "light":
        top = float(rng.uniform(3.0, 5.5))
        _post(cv, Z, X, 0, top, 0.07, metal)
        if rng.random() < 0.5:  # mast arm reaching over the road
            reach = X + road_side * float(rng.uniform(2.0, 4.5))
            _beam(cv, Z, X, reach, top - 0.1, 0.06, metal)
            _traffic_light(cv, rng, reach, Z - 0.05, top - 0.1)
        _traffic_light(cv, rng, X, Z - 0.1, top * 0.75)
    else:  # street lamp
        top = float(rng.uniform(6.0, 9.0))
        _post(cv, Z, X, 0, top, 0.08, metal)
        reach = X + road_side * float(rng.uniform(1.0, 2.0))
        _beam(cv, Z, X, reach, top, 0.06, metal)
        _beam(cv, Z, reach - road_side * 0.3, reach + road_side * 0.2, top - 0.08, 0.1, metal * 0.8)


def _gantry_sign(cv: _Canvas, rng: np.random.Generator, X: float, Z: float, road_side: float) -> None:
    """A large direction sign on two posts beside a highway."""
    width, height, bottom = float(rng.uniform(2.5, 4.5)), float(rng.uniform(1.5, 2.5)), float(rng.uniform(2.2, 3.5))
    X1 = X - road_side * width
    metal = _rgb(rng, (120, 122, 125), 8)
    for px in (X - road_side * 0.4, X1 + road_side * 0.4):
        _post(cv, Z + 0.05, px, 0, bottom + height * 0.9, 0.06, metal)
    got = cv.frontal(Z, min(X, X1), max(X, X1), bottom, bottom + height)
    if not got:
        return
    win, Xw, Y = got
    mask = (Xw >= min(X, X1)) & (Xw <= max(X, X1)) & (Y >= bottom) & (Y <= bottom + height)
    face = _rgb(rng, _pick(rng, ((20, 110, 60), (25, 70, 160))), 8)
    text = _bands(Y, height / 3, 0.12, Z / cv.f, bottom) * _bands(Xw, 0.35, 0.12, Z / cv.f)
    border = np.minimum(np.minimum(Xw - min(X, X1), max(X, X1) - Xw), np.minimum(Y - bottom, bottom + height - Y)) < 0.1
    color = _mix(cv.shade(win, face, 0.03, 0.02), _colour((235, 235, 235)), np.maximum(text * 0.8, border))
    cv.paint(win, mask, TRAFFIC_SIGN, color, Z)


def _tree(cv: _Canvas, rng: np.random.Generator, X: float, Z: float, size: float) -> None:
    """A free-standing tree: trunk and a ragged crown, all vegetation as in Cityscapes."""
    rx = size * float(rng.uniform(0.8, 1.2))
    ry = rx * float(rng.uniform(0.9, 1.4))
    trunk_h = size * float(rng.uniform(0.6, 1.3))
    cy = trunk_h + ry * 0.85
    got = cv.frontal(Z, X - rx * 1.3, X + rx * 1.3, 0, cy + ry * 1.3)
    if not got:
        return
    win, Xw, Y = got
    u, v = (Xw - X) / rx, (Y - cy) / ry
    angle = np.arctan2(v, u)
    edge = (1 + 0.1 * np.sin(5 * angle + rng.uniform(0, 6)) + 0.07 * np.sin(11 * angle + rng.uniform(0, 6))
            + 0.12 * cv.blotch[win])
    crown = u * u + v * v < edge * edge
    trunk = (np.abs(Xw - X) < max(0.12 * size / 2.5 + 0.08, 0.5 * Z / cv.f)) & (Y >= 0) & (Y < cy)
    leaves = _rgb(rng, _pick(rng, ((70, 110, 40), (90, 125, 45), (55, 90, 45), (110, 130, 50))), 12)
    bark = _rgb(rng, (85, 70, 55), 10)
    light = cv.light_left if X < 0 else cv.light_right
    color = np.where(crown, cv.foliage(win, leaves * light), cv.shade(win, bark, 0.06, 0.05))
    cv.paint(win, crown | trunk, VEGETATION, color, Z)


def _draw_far_to_near(items: list[tuple[float, Callable[[], None]]]) -> None:
    for _, draw in sorted(items, key=lambda item: -item[0]):
        draw()


def _visible_depth(cv: _Canvas, height_m: float, min_px: float) -> float:
    """Depth up to which an object of this height stays at least min_px pixels tall."""
    return cv.f * height_m / min_px


def _traffic(cv: _Canvas, rng: np.random.Generator, st: _Street, per_lane: tuple[int, int],
             z_range: tuple[float, float], items: list, lanes: list[int] | None = None) -> None:
    """Moving cars in the lanes, spaced so that they never overlap."""
    for i in (range(len(st.lane_centres)) if lanes is None else lanes):
        Z = float(rng.uniform(z_range[0], z_range[0] + 15))
        for _ in range(int(rng.integers(per_lane[0], per_lane[1] + 1))):
            if Z > z_range[1]:
                break
            X = st.lane_centres[i] + float(rng.uniform(-0.3, 0.3))
            if abs(X) > 1.2 or Z > 8:  # not inside the camera's own car
                items.append((Z, lambda X=X, Z=Z, a=st.away(i): _car(cv, rng, X, Z, a)))
            Z += float(rng.uniform(6, 40))


def _parked(cv: _Canvas, rng: np.random.Generator, X: float, z_far: float, fill: float, items: list) -> None:
    Z = float(rng.uniform(2, 10))
    while Z < z_far:
        if rng.random() < fill:
            items.append((Z, lambda Z=Z, X=X + float(rng.uniform(-0.15, 0.15)): _car(cv, rng, X, Z, True)))
        Z += float(rng.uniform(5.0, 6.5))


def _pedestrians(cv: _Canvas, rng: np.random.Generator, lo: float, hi: float, count: int,
                 z_far: float, items: list) -> None:
    for _ in range(count):
        X, Z = float(rng.uniform(lo, hi)), float(rng.uniform(3.5, z_far))
        items.append((Z, lambda X=X, Z=Z: _person(cv, rng, X, Z)))


def _kerb_poles(cv: _Canvas, rng: np.random.Generator, st: _Street, spacing: tuple[float, float],
                kinds: tuple[str, ...], z_far: float, items: list) -> None:
    for side, X in ((-1, st.road_l - 0.5), (1, st.road_r + 0.5)):
        Z = float(rng.uniform(3, spacing[1]))
        while Z < z_far:
            kind = _pick(rng, kinds)
            items.append((Z, lambda X=X, Z=Z, k=kind, s=-side: _pole(cv, rng, X, Z, k, s)))
            Z += float(rng.uniform(*spacing))


# ----------------------------------------------------------------------------------------------
# Scene types


def _downtown(cv: _Canvas, rng: np.random.Generator) -> None:
    """Tall blocks on both sides, busy sidewalks, parked cars, poles with signs and lights."""
    lanes = int(rng.integers(2, 4))
    park = (2.3 if rng.random() < 0.8 else 0.0, 2.3 if rng.random() < 0.8 else 0.0)
    walks = (float(rng.uniform(2.5, 5)), float(rng.uniform(2.5, 5)))
    st = _Street(rng, lanes, float(rng.uniform(3.0, 3.5)), park, walks)
    z_far = float(rng.uniform(120, 250))
    _sky(cv, rng)
    _ground(cv, rng, st, _pick(rng, ("dashed", "solid-centre")),
            float(rng.uniform(8, 30)) if rng.random() < 0.4 else None)
    _skyline(cv, rng, z_far, (5, 25))
    for X in (st.outer_l, st.outer_r):
        _building_row(cv, rng, X, z_far, (8, 36), (8, 25), 0.25)
    items: list = []
    for i, X in ((0, st.road_l + 1.1), (1, st.road_r - 1.1)):
        if park[i]:
            _parked(cv, rng, X, 70, float(rng.uniform(0.2, 0.8)), items)
    _traffic(cv, rng, st, (0, 3), (6, 90), items)
    zp = _visible_depth(cv, 1.7, 7)
    _pedestrians(cv, rng, st.outer_l + 0.3, st.road_l - 0.4, int(rng.integers(2, 12)), zp, items)
    _pedestrians(cv, rng, st.road_r + 0.4, st.outer_r - 0.3, int(rng.integers(2, 12)), zp, items)
    _kerb_poles(cv, rng, st, (10, 30), ("sign", "light", "light", "lamp"), 90, items)
    if rng.random() < 0.4:  # street trees along the kerb
        for X in (st.road_l - 1.2, st.road_r + 1.2):
            Z = float(rng.uniform(4, 12))
            while Z < 100:
                items.append((Z + 0.2, lambda X=X, Z=Z: _tree(cv, rng, X, Z, float(rng.uniform(1.5, 2.6)))))
                Z += float(rng.uniform(8, 16))
    _draw_far_to_near(items)


def _suburb(cv: _Canvas, rng: np.random.Generator) -> None:
    """Low houses behind lawns and hedges, many trees, a wide sky, little traffic."""
    walks = tuple(float(rng.uniform(1.5, 2.5)) if rng.random() < 0.8 else 0.0 for _ in range(2))
    st = _Street(rng, 2, float(rng.uniform(2.8, 3.3)), (0.0, 0.0), walks)
    z_far = float(rng.uniform(150, 300))
    _sky(cv, rng)
    _ground(cv, rng, st, _pick(rng, ("none", "dashed")))
    _hills(cv, rng, z_far, float(rng.uniform(8, 20)), VEGETATION)
    for side, edge in ((-1, st.outer_l), (1, st.outer_r)):
        lawn = float(rng.uniform(4, 12))
        house_x = edge + side * lawn
        _tree_line(cv, rng, house_x + side * float(rng.uniform(12, 25)), 1.0, z_far, (6, 14))
        Z, houses = float(rng.uniform(0, 8)), []
        while Z < z_far * 0.6:
            length = float(rng.uniform(8, 14))
            houses.append((Z, Z + length))
            Z += length + float(rng.uniform(4, 14))
        for Z0, Z1 in reversed(houses):
            _house(cv, rng, house_x, Z0, Z1)
        trees = [(float(rng.uniform(3, z_far * 0.5)), edge + side * float(rng.uniform(1.5, lawn - 1)))
                 for _ in range(int(rng.integers(2, 9)))]
        _draw_far_to_near([(Z, lambda X=X, Z=Z: _tree(cv, rng, X, Z, float(rng.uniform(1.8, 3.5)))) for Z, X in trees])
        Z, hedges = float(rng.uniform(0, 6)), []
        while Z < z_far * 0.5:
            length = float(rng.uniform(5, 25))
            if rng.random() < 0.6:
                hedges.append((Z, Z + length))
            Z += length + float(rng.uniform(1, 8))
        for Z0, Z1 in reversed(hedges):
            _hedge(cv, rng, edge + side * 0.4, Z0, Z1)
    items: list = []
    if rng.random() < 0.5:  # cars parked in the camera's lane: then only oncoming traffic moves
        _parked(cv, rng, st.road_r - 1.0, 60, float(rng.uniform(0.1, 0.35)), items)
        _traffic(cv, rng, st, (0, 1), (8, 80), items, [0])
    else:
        _traffic(cv, rng, st, (0, 1), (8, 80), items)
    if walks[0] or walks[1]:
        lo, hi = (st.outer_l + 0.3, st.road_l - 0.3) if walks[0] else (st.road_r + 0.3, st.outer_r - 0.3)
        _pedestrians(cv, rng, lo, hi, int(rng.integers(0, 4)), _visible_depth(cv, 1.7, 7), items)
    _kerb_poles(cv, rng, st, (25, 60), ("sign", "lamp", "lamp"), 80, items)
    _draw_far_to_near(items)


def _highway(cv: _Canvas, rng: np.random.Generator) -> None:
    """Two multi-lane carriageways, grass verges, tree belts, a big sky, many cars."""
    lanes = int(rng.integers(2, 4)) * 2
    lane_w = float(rng.uniform(3.5, 3.8))
    shoulders = (float(rng.uniform(0.8, 2.5)), float(rng.uniform(1.5, 3.0)))
    st = _Street(rng, lanes, lane_w, shoulders, (0.0, 0.0))
    z_far = float(rng.uniform(300, 700))
    _sky(cv, rng)
    _ground(cv, rng, st, "highway")
    _hills(cv, rng, z_far, float(rng.uniform(10, 40)), _pick(rng, (VEGETATION, TERRAIN)))
    for side, edge in ((-1, st.road_l), (1, st.road_r)):
        X = edge + side * float(rng.uniform(5, 20))
        Z = float(rng.uniform(1, 30))
        while Z < z_far:
            length = float(rng.uniform(20, 150))
            if rng.random() < 0.75:
                _tree_line(cv, rng, X + side * float(rng.uniform(0, 5)), Z, min(Z + length, z_far), (6, 16))
            Z += length + float(rng.uniform(0, 60))
    oncoming = list(range(st.oncoming))
    away = list(range(st.oncoming, lanes))
    items: list = []
    _traffic(cv, rng, st, (1, 4), (8, 180), items, oncoming)
    _draw_far_to_near(items)
    if rng.random() < 0.6:  # concrete median: hides the oncoming carriageway's lower part
        _barrier(cv, rng, st.centre_line + 0.5, z_far)
    items = []
    _traffic(cv, rng, st, (1, 5), (6, 180), items, away)
    Z = float(rng.uniform(10, 80))
    while Z < 250:
        X = st.road_r + float(rng.uniform(1.0, 3.0))
        if rng.random() < 0.5:
            items.append((Z, lambda X=X, Z=Z: _gantry_sign(cv, rng, X, Z, -1.0)))
        else:
            items.append((Z, lambda X=X, Z=Z: _pole(cv, rng, X, Z, _pick(rng, ("lamp", "sign")), -1.0)))
        Z += float(rng.uniform(40, 120))
    _draw_far_to_near(items)


_SCENES = {"downtown": _downtown, "suburb": _suburb, "highway": _highway}


def _ego_vehicle(cv: _Canvas, rng: np.random.Generator) -> None:
    """The bonnet of the recording car along the bottom edge, curving down to the sides."""
    hood = cv.h * float(rng.uniform(0.07, 0.14))
    t = (cv.xs - cv.w * float(rng.uniform(0.45, 0.55))) / (cv.w / 2)
    top = cv.h - hood * (1 - 0.45 * t * t)
    mask = cv.ys[:, None] >= top[None, :]
    down = np.clip((cv.ys[:, None] - top[None, :]) / hood, 0, 1)  # 0 at the bonnet's edge
    paint = _rgb(rng, _pick(rng, ((25, 25, 28), (60, 62, 66), (180, 182, 185))), 8)
    sheen = np.exp(-((down - 0.35) / 0.15) ** 2) * 0.5  # reflection of the sky across the bonnet
    color = _mix(paint * (0.7 + 0.5 * down), cv.haze_rgb, sheen)
    cv.paint((slice(0, cv.h), slice(0, cv.w)), mask, EGO_VEHICLE, color)


def _expose(cv: _Canvas, rng: np.random.Generator) -> np.ndarray:
    """Per-image exposure, white balance, contrast curve, vignetting and sensor noise."""
    gain = float(rng.uniform(0.75, 1.2))
    tint = (1 + rng.uniform(-0.07, 0.07, 3)).astype(np.float32)
    curve = (np.linspace(0, 1, 1024, dtype=np.float32) ** float(rng.uniform(0.85, 1.15))) * 255
    r2 = ((cv.ys[:, None] - cv.h / 2) / cv.h) ** 2 + ((cv.xs[None, :] - cv.w / 2) / cv.w) ** 2
    vignette = 1 - float(rng.uniform(0.1, 0.5)) * r2
    level = np.clip(cv.img * (gain * 1023 / 255 * tint.reshape(3, 1, 1)), 0, 1023).astype(np.int32)
    img = curve[level] * vignette
    # Uniform sensor noise of unit variance: far cheaper to draw than Gaussian, looks the same.
    noise = rng.integers(0, 256, img.shape, dtype=np.uint8).astype(np.float32) - np.float32(127.5)
    img += noise * np.float32(float(rng.uniform(1.5, 4.0)) / 73.9)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8).transpose(1, 2, 0).copy()


def render_city_scene(rng: np.random.Generator, height: int, width: int,
                      scene_type: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns (label_ids uint8 HxW, instance_ids int32 HxW in the instanceIds convention, image uint8 HxWx3)."""
    if scene_type not in _SCENES:
        raise ValueError(f"unknown scene type {scene_type!r}; expected one of: {', '.join(SCENE_TYPES)}")
    if height < 32 or width < 64:
        raise ValueError(f"toy city scenes need height >= 32 and width >= 64, got {height}x{width}")
    cv = _Canvas(rng, height, width)
    _SCENES[scene_type](cv, rng)
    cv.apply_haze()
    if rng.random() < EGO_FRACTION:
        _ego_vehicle(cv, rng)
    image = _expose(cv, rng)
    return cv.label, cv.inst, image


# ----------------------------------------------------------------------------------------------
# Writing the dataset


def _save_png(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


def write_toy_city(root: Path, *, seed: int, train_count: int, val_count: int, height: int, width: int) -> None:
    """Writes the dataset under root (root must not exist yet or be empty)."""
    from tqdm import tqdm

    # Imported here: the Cityscapes table comes from torchvision, slow to import, and only the
    # colour images need it.
    from data.labels import label_space

    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty; the toy city is only written into a new folder")
    if min(train_count, val_count) < 0:
        raise ValueError("image counts must not be negative")
    city = label_space("cityscapes")
    jobs = [(s, split, i) for s, (split, count) in enumerate(zip(SPLITS, (train_count, val_count)))
            for i in range(count)]
    for split_index, split, i in tqdm(jobs, desc="toy city", unit="img", leave=False):
        rng = np.random.default_rng([seed, split_index, i])
        scene_type = SCENE_TYPES[int(rng.integers(len(SCENE_TYPES)))]
        labels, instances, image = render_city_scene(rng, height, width, scene_type)
        stem = f"{scene_type}_{i:06d}_{FRAME:06d}"
        images_dir = root / "leftImg8bit" / split / scene_type
        labels_dir = root / "gtFine" / split / scene_type
        _save_png(Image.fromarray(image), images_dir / f"{stem}_leftImg8bit.png")
        _save_png(Image.fromarray(labels), labels_dir / f"{stem}_gtFine_labelIds.png")
        _save_png(Image.fromarray(instances.astype(np.uint16)), labels_dir / f"{stem}_gtFine_instanceIds.png")
        _save_png(Image.fromarray(city.colorize(labels)), labels_dir / f"{stem}_gtFine_color.png")
