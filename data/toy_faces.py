"""Procedural face portraits written in the CelebAMask-HQ on-disk format (a toy stand-in dataset).

Each face is a random head-and-shoulders portrait: face shape, size, position and a slight roll and
yaw; hair style (bald, short, bob, long, bun, with or without a fringe, curtains hiding one or both
ears), and optional hat, eyeglasses or sunglasses, earrings, necklace and open mouth; skin, hair, eye,
lip, cloth and background colours. Shapes are analytic (ellipses, superellipses, parabolic bands,
half-planes) in image units, so the same face is rasterised at the mask size for the part masks and
at twice that size for the photo, like the 1024-pixel images and 512-pixel masks of the real data.

The portrait is drawn back to front (hair behind the neck, neck, cloth, ears, face, features, hair in
front, hat). The dataset instead paints its part masks in label-index order, a later part overwriting
an earlier one, so each part mask is the part's visible pixels plus those of its shape covered by a
part of higher index (skin under the eyes, hair under the hat, neck under the cloth): painting the
masks in index order gives back exactly the drawn label map, and each photo pixel is textured as the
part that wins there. A part with fewer than MIN_PIXELS visible mask pixels is left out of the face,
in the label map and in the photo alike, and has no mask file, as an absent part in the real data.

Everything is drawn from `np.random.default_rng([seed, k])` for face k, so the files are the same
bytes for the same seed and arguments.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image, ImageFilter

from data.labels import CELEBA_PARTS

IMAGE_DIR = "CelebA-HQ-img"
MASK_DIR = "CelebAMask-HQ-mask-anno"
FACES_PER_FOLDER = 2000
JPEG_QUALITY = 95
PNG_COMPRESS_LEVEL = 6
MIN_PIXELS = 2  # visible mask pixels for a part to count as present
_ANTIALIAS = ImageFilter.Kernel((3, 3), (1, 2, 1, 2, 4, 2, 1, 2, 1))  # softens the hard edges of the shapes

CHANNEL = {name: i + 1 for i, name in enumerate(CELEBA_PARTS)}

_HAIR_STYLES = ("bald", "short", "bob", "long", "bun")
_HAIR_STYLE_P = (0.07, 0.3, 0.2, 0.33, 0.1)
_SKIN_TONES = np.array(
    [(255, 226, 200), (238, 196, 164), (212, 158, 122), (168, 114, 82), (110, 72, 52)], float)
_HAIR_COLORS = np.array(
    [(28, 22, 20), (62, 40, 28), (110, 72, 45), (170, 120, 70), (215, 180, 120), (140, 60, 30),
     (160, 160, 160)], float)
_HAIR_COLOR_P = (0.3, 0.25, 0.16, 0.09, 0.09, 0.06, 0.05)
_IRIS_COLORS = np.array([(90, 58, 34), (45, 30, 22), (80, 120, 165), (85, 120, 70), (125, 95, 50)], float)
_METALS = np.array([(215, 175, 60), (195, 195, 205), (238, 232, 220)], float)  # gold, silver, pearl


# ---------------------------------------------------------------------------------------------
# Random face description


def _sample_face(rng: np.random.Generator, size: int) -> SimpleNamespace:
    """All random choices of one face. Lengths are in image units (image side = 1) or, for the head,
    in units of the face half-width (u) and half-height (v)."""
    px = 1.0 / size  # one mask pixel: thin parts keep at least about a pixel of width
    f = SimpleNamespace()
    scale = rng.uniform(0.95, 1.2)
    f.cx = 0.5 + rng.uniform(-0.05, 0.05)
    f.cy = 0.46 + rng.uniform(-0.04, 0.04)
    f.fw = 0.175 * scale * rng.uniform(0.92, 1.08)
    f.fh = 0.235 * scale * rng.uniform(0.95, 1.05)
    f.roll = float(np.clip(rng.normal(0.0, 0.07), -0.2, 0.2))
    f.yaw = rng.uniform(-0.12, 0.12)
    f.shift = 0.5 * f.yaw  # features slide sideways when the head turns
    f.jaw = rng.uniform(0.15, 0.35)

    f.eye_x = rng.uniform(0.38, 0.46)
    f.eye_y = rng.uniform(-0.14, -0.06)
    f.eye_w = rng.uniform(0.17, 0.21)
    f.eye_h = max(rng.uniform(0.05, 0.075), 1.0 * px / f.fh)
    f.eye_tilt = rng.uniform(-0.05, 0.1)
    f.gaze = rng.uniform(-0.25, 0.25)  # iris offset, in eye half-widths
    f.brow_x = f.eye_x + rng.uniform(0.0, 0.04)
    f.brow_y = f.eye_y - rng.uniform(0.17, 0.24)
    f.brow_w = f.eye_w * rng.uniform(1.2, 1.45)
    f.brow_t = max(rng.uniform(0.05, 0.09), 1.3 * px / f.fh)
    f.brow_arch = rng.uniform(0.02, 0.07)
    f.nose_top = f.eye_y + 0.02
    f.nose_bot = rng.uniform(0.24, 0.32)
    f.nose_wt = 0.07
    f.nose_wb = rng.uniform(0.16, 0.22)
    f.nose_tip = rng.uniform(0.06, 0.09)
    f.mouth_y = rng.uniform(0.5, 0.6)
    f.mouth_w = rng.uniform(0.32, 0.44)
    f.lip_u = max(rng.uniform(0.05, 0.09), 1.0 * px / f.fh)
    f.lip_l = max(rng.uniform(0.07, 0.12), 1.0 * px / f.fh)
    f.mouth_open = max(rng.uniform(0.04, 0.12), 1.0 * px / f.fh) if rng.random() < 0.35 else 0.0
    f.smile = rng.uniform(-0.02, 0.06)
    f.teeth = rng.random() < 0.6
    f.ear_x = rng.uniform(1.0, 1.06)
    f.ear_y = rng.uniform(-0.05, 0.05)
    f.ear_w = rng.uniform(0.14, 0.18)
    f.ear_h = rng.uniform(0.26, 0.32)

    f.hair = _sample_hair(rng, f)
    f.hat = _sample_hat(rng) if rng.random() < 0.12 else None
    f.glasses = _sample_glasses(rng, f, px) if rng.random() < 0.18 else None
    f.earrings = _sample_earrings(rng, px) if rng.random() < 0.3 else None
    f.body = _sample_body(rng, f)
    f.necklace = _sample_necklace(rng, px) if rng.random() < 0.18 else None
    f.colors = _sample_colors(rng, f)
    f.texture_seed = int(rng.integers(2**32))
    return f


def _sample_hair(rng: np.random.Generator, f: SimpleNamespace) -> SimpleNamespace:
    h = SimpleNamespace()
    h.style = _HAIR_STYLES[rng.choice(len(_HAIR_STYLES), p=_HAIR_STYLE_P)]
    h.center = rng.uniform(-0.25, -0.1)  # v of the centre of the hair silhouette
    h.half_w = rng.uniform(1.08, 1.2) if h.style in ("short", "bun") else rng.uniform(1.15, 1.32)
    h.half_h = rng.uniform(1.15, 1.35)
    h.curly = rng.random() < 0.2
    amp = rng.uniform(0.04, 0.08) if h.curly else rng.uniform(0.01, 0.03)
    h.waves = [(amp * rng.uniform(0.4, 1.0), int(rng.integers(lo, lo + 6)), rng.uniform(0, 2 * np.pi))
               for lo in (4, 10, 18)]
    h.fringe = rng.random() < 0.35
    h.hairline = rng.uniform(-0.4, -0.3) if h.fringe else rng.uniform(-0.72, -0.5)
    h.part_tilt = rng.uniform(-0.15, 0.15)  # a side parting tilts the hairline
    h.fringe_phase = rng.uniform(0, 2 * np.pi)
    h.side_limit = rng.uniform(-0.4, -0.2) if h.style in ("short", "bun") else h.center + 0.15
    h.curtain_in = rng.uniform(0.78, 0.92)
    h.curtain_out = max(h.half_w, f.ear_x + f.ear_w + 0.08)
    h.spread = rng.uniform(0.05, 0.25)
    h.end = rng.uniform(0.6, 1.1) if h.style == "bob" else rng.uniform(1.6, 2.8)
    h.tucked = int(rng.choice((-1, 1))) if rng.random() < 0.25 else 0  # side with the ear left bare
    h.bun_r = rng.uniform(0.3, 0.45)
    return h


def _sample_hat(rng: np.random.Generator) -> SimpleNamespace:
    return SimpleNamespace(kind=("beanie", "cap", "brim")[rng.integers(3)], bottom=rng.uniform(-0.58, -0.4),
                           brim_w=rng.uniform(1.6, 2.0), knit=rng.random() < 0.5)


def _sample_glasses(rng: np.random.Generator, f: SimpleNamespace, px: float) -> SimpleNamespace:
    g = SimpleNamespace()
    g.sun = rng.random() < 0.25
    g.half_w = f.eye_w * rng.uniform(1.45, 1.8)
    g.half_h = max(rng.uniform(0.14, 0.2), 2.5 * f.eye_h)
    g.y = f.eye_y + rng.uniform(-0.01, 0.03)
    g.power = rng.uniform(2.0, 5.0)  # 2: round lenses, larger: squarer
    g.frame = max(0.006, 1.3 * px)  # image units
    return g


def _sample_earrings(rng: np.random.Generator, px: float) -> SimpleNamespace:
    return SimpleNamespace(kind=("stud", "hoop", "drop")[rng.integers(3)],
                           r=max(rng.uniform(0.008, 0.013), 1.2 * px), hoop_r=rng.uniform(0.02, 0.03),
                           t=max(0.006, 1.2 * px))


def _sample_body(rng: np.random.Generator, f: SimpleNamespace) -> SimpleNamespace:
    b = SimpleNamespace()
    b.x = f.cx + rng.uniform(-0.02, 0.02)
    b.neck_w = f.fw * rng.uniform(0.55, 0.7)
    b.shoulder_y = f.cy + f.fh * rng.uniform(1.2, 1.45)
    b.shoulder_w = rng.uniform(0.32, 0.5)
    b.drop = rng.uniform(0.04, 0.12)
    b.neckline = ("crew", "v", "scoop", "turtle")[rng.choice(4, p=(0.35, 0.3, 0.2, 0.15))]
    b.depth = {"crew": rng.uniform(0.02, 0.05), "v": rng.uniform(0.08, 0.18), "scoop": rng.uniform(0.06, 0.12),
               "turtle": 0.0}[b.neckline]
    return b


def _sample_necklace(rng: np.random.Generator, px: float) -> SimpleNamespace:
    return SimpleNamespace(depth=rng.uniform(0.02, 0.07), t=max(0.007, 1.3 * px), pendant=rng.random() < 0.5,
                           r=max(rng.uniform(0.01, 0.016), 1.5 * px))


def _sample_colors(rng: np.random.Generator, f: SimpleNamespace) -> SimpleNamespace:
    c = SimpleNamespace()
    tone = rng.uniform(0, len(_SKIN_TONES) - 1)
    lo = int(tone)
    c.skin = _SKIN_TONES[lo] + (tone - lo) * (_SKIN_TONES[min(lo + 1, len(_SKIN_TONES) - 1)] - _SKIN_TONES[lo])
    c.skin = np.clip(c.skin + rng.normal(0, 6, 3), 0, 255)
    c.blush = rng.uniform(0.0, 0.12)
    hair = _HAIR_COLORS[rng.choice(len(_HAIR_COLORS), p=_HAIR_COLOR_P)]
    c.hair = np.clip(hair * rng.uniform(0.85, 1.15) + rng.normal(0, 8, 3), 0, 255)
    c.brow = np.clip(c.hair * 0.75, 0, 200) if f.hair.style != "bald" else np.array([60.0, 45, 35])
    lip = np.array([178.0, 80, 86]) if rng.random() < 0.85 else np.array([185.0, 25, 50])  # natural or lipstick
    c.lip = np.clip(0.45 * c.skin + 0.55 * lip + rng.normal(0, 6, 3), 0, 255) * np.array([1.0, 0.85, 0.88])
    c.iris = _IRIS_COLORS[rng.integers(len(_IRIS_COLORS))] * rng.uniform(0.85, 1.15)
    c.cloth = rng.uniform(15, 240, 3)
    c.cloth2 = np.clip(c.cloth + rng.normal(0, 70, 3), 0, 255)
    c.pattern = ("plain", "stripes", "checks", "dots")[rng.choice(4, p=(0.5, 0.2, 0.15, 0.15))]
    c.pattern_freq = rng.uniform(15, 35)
    c.pattern_angle = rng.uniform(0, np.pi)
    c.bg = rng.uniform(40, 235, 3)
    c.bg2 = np.clip(c.bg + rng.normal(0, 45, 3), 0, 255)
    c.bg_angle = rng.uniform(0, 2 * np.pi)
    c.hat = rng.uniform(20, 235, 3)
    c.metal = _METALS[rng.integers(len(_METALS))]
    c.frame = (np.array([20.0, 20, 22]), np.array([90.0, 55, 30]), np.array([190.0, 160, 80]))[rng.integers(3)]
    c.lens = rng.uniform(20, 60, 3) if f.glasses is not None and f.glasses.sun else rng.uniform(150, 230, 3)
    c.light = rng.uniform(-1, 1)  # side of the key light
    c.strands = rng.uniform(50, 110)
    for name, value in vars(c).items():  # colours as columns, for the channels-first textures
        if isinstance(value, np.ndarray):
            setattr(c, name, value.reshape(3, 1))
    return c


# ---------------------------------------------------------------------------------------------
# Shapes: boolean masks over a grid (or any set of pixels) with image coordinates x, y in [0, 1]
# and head coordinates u, v (origin at the face centre, rolled with the head, in face half-sizes).


def _grid(f: SimpleNamespace, n: int) -> SimpleNamespace:
    c = (np.arange(n) + 0.5) / n
    x, y = np.meshgrid(c, c)
    dx, dy = x - f.cx, y - f.cy
    cos, sin = np.cos(f.roll), np.sin(f.roll)
    return SimpleNamespace(x=x, y=y, u=(dx * cos + dy * sin) / f.fw, v=(-dx * sin + dy * cos) / f.fh)


def _skin(f, g):
    below = np.clip(g.v, 0, 1)
    narrow = 1.0 - f.jaw * below * np.sqrt(below)  # the jaw narrows towards the chin
    return (g.u / narrow) ** 2 + g.v ** 2 <= 1.0


def _ear(f, g, side):
    w = f.ear_w * (1.0 - 2.5 * side * f.yaw)  # the ear on the side the head turns to hides more
    return ((g.u - side * f.ear_x) / w) ** 2 + ((g.v - f.ear_y) / f.ear_h) ** 2 <= 1.0


def _eye_coords(f, g, side):
    a = (g.u - f.shift - side * f.eye_x) / f.eye_w
    b = (g.v - f.eye_y + side * f.eye_tilt * a * f.eye_w) / f.eye_h
    return a, b


def _eye(f, g, side):
    a, b = _eye_coords(f, g, side)
    lid = np.clip(1.0 - a * a, 0, None) ** 0.7
    return (np.abs(a) <= 1.0) & (b >= -lid) & (b <= 0.8 * lid)


def _brow(f, g, side):
    a = (g.u - f.shift - side * f.brow_x) / f.brow_w
    centre = f.brow_y - f.brow_arch * (1.0 - a * a)
    outward = (side * a + 1.0) / 2.0  # 0 at the inner end, 1 at the outer end
    half = f.brow_t / 2.0 * (1.0 - 0.6 * outward ** 2)
    return (np.abs(a) <= 1.0) & (np.abs(g.v - centre) <= half)


def _nose(f, g):
    du = g.u - 1.3 * f.shift  # the tip sticks out most, so it moves most with the yaw
    tip_v = f.nose_bot - f.nose_tip
    t = np.clip((g.v - f.nose_top) / (f.nose_bot - f.nose_top), 0, 1)
    body = (g.v >= f.nose_top) & (g.v <= tip_v) & (np.abs(du) <= f.nose_wt + (f.nose_wb - f.nose_wt) * t ** 2)
    tip = (du / f.nose_wb) ** 2 + ((g.v - tip_v) / f.nose_tip) ** 2 <= 1.0
    return body | tip


def _mouth_coords(f, g):
    a = (g.u - f.shift) / f.mouth_w
    fall = np.clip(1.0 - a * a, 0, None)
    mid = f.mouth_y - f.smile * a * a
    return a, fall, mid


def _lips(f, g):
    """(inner mouth, upper lip, lower lip)."""
    a, fall, mid = _mouth_coords(f, g)
    inside = np.abs(a) <= 1.0
    gap = f.mouth_open * fall
    bow = 1.0 - 0.35 * np.exp(-(a / 0.18) ** 2)  # the dip of the cupid's bow
    upper = inside & (g.v < mid - gap) & (g.v >= mid - gap - f.lip_u * fall ** 0.6 * bow)
    lower = inside & (g.v > mid + gap) & (g.v <= mid + gap + f.lip_l * fall ** 0.6)
    opening = inside & (np.abs(g.v - mid) <= gap) & (gap > 0)
    return opening, upper, lower


def _hair_back(f, g):
    """Long hair hanging behind the neck and shoulders."""
    h = f.hair
    outer = h.curtain_out + h.spread * np.clip(g.v, 0, None)
    bottom = h.end + 0.12 * np.sin(6.0 * g.u + h.fringe_phase)
    return (g.v >= h.center) & (g.v <= bottom) & (np.abs(g.u) <= outer)


def _hair_front(f, g):
    """Hair over the top of the head, down to the hairline, plus the side curtains of long hair."""
    h = f.hair
    dv = g.v - h.center
    # The silhouette's radius wobbles with the angle; tabulated, as sines over every pixel are slow.
    angles = np.linspace(-np.pi, np.pi, 721)
    radius = 1.0 + sum(amp * np.sin(k * angles + phase) for amp, k, phase in h.waves)
    wobble = np.interp(np.arctan2(dv, g.u), angles, radius)
    outline = (g.u / h.half_w) ** 2 + (dv / h.half_h) ** 2 <= wobble ** 2
    temple = (np.clip(np.abs(g.u) / 0.95, 0, 1) ** 2) ** 2  # 0 mid-forehead, 1 from the temples out
    hairline = (h.hairline + h.part_tilt * g.u) * (1.0 - temple) + h.side_limit * temple
    if h.fringe:
        hairline = hairline + 0.04 * np.sin(22.0 * g.u + h.fringe_phase)  # strand tips
    front = outline & (g.v < hairline)
    if h.style == "bun":
        front |= (g.u / h.bun_r) ** 2 + ((g.v - h.center + 0.92 * h.half_h) / (0.85 * h.bun_r)) ** 2 <= 1.0
    if h.style in ("bob", "long"):
        outer = h.curtain_out + h.spread * np.clip(g.v, 0, None)
        bottom = h.end + 0.12 * np.sin(6.0 * g.u + h.fringe_phase)
        for side in (-1, 1):
            if side != h.tucked:
                su = side * g.u
                inner = h.curtain_in + 0.04 * np.clip(g.v, 0, None)
                front |= (g.v >= h.center) & (g.v <= bottom) & (su >= inner) & (su <= outer)
    return front


def _hat(f, g):
    t = f.hat
    h = f.hair
    dv = g.v - h.center
    if t.kind == "brim":
        crown = ((g.u / 0.95) ** 2 + ((g.v - t.bottom) / (h.half_h + 0.1)) ** 2 <= 1.0) & (g.v <= t.bottom)
        brim = (g.u / t.brim_w) ** 2 + ((g.v - t.bottom) / 0.2) ** 2 <= 1.0
        return crown | brim
    crown_w = max(h.half_w, 1.08) * 1.04
    dome = ((g.u / crown_w) ** 2 + (dv / (h.half_h * 1.04)) ** 2 <= 1.0) & (g.v <= t.bottom)
    if t.kind == "cap":
        dome |= (g.u / 1.18) ** 2 + ((g.v - t.bottom) / 0.13) ** 2 <= 1.0
    return dome


def _glasses_shapes(f, g):
    """(whole glasses: lenses, bridge and temples; the part of it that is lens rather than frame)."""
    s = f.glasses
    fu, fv = s.frame / f.fw, s.frame / f.fh
    du = g.u - f.shift
    lenses = np.zeros(np.shape(g.u), bool)
    inner = np.zeros(np.shape(g.u), bool)
    for side in (-1, 1):
        a = np.abs(du - side * f.eye_x)
        b = np.abs(g.v - s.y)
        lenses |= (a / s.half_w) ** s.power + (b / s.half_h) ** s.power <= 1.0
        inner |= (a / (s.half_w - fu)) ** s.power + (b / (s.half_h - fv)) ** s.power <= 1.0
    bar_v = s.y - 0.45 * s.half_h
    bar = np.abs(g.v - bar_v) <= fv / 2
    bridge = bar & (np.abs(du) <= f.eye_x - 0.8 * s.half_w)
    temples = bar & (np.abs(du) >= f.eye_x + 0.9 * s.half_w) & (np.abs(g.u) <= f.ear_x)
    return lenses | bridge | temples, inner


def _earring(f, g, side):
    e = f.earrings
    # distances from the ear lobe in image units, so round things stay round
    du = (g.u - side * f.ear_x) * f.fw
    dv = (g.v - f.ear_y - 0.85 * f.ear_h) * f.fh
    if e.kind == "stud":
        return du ** 2 + dv ** 2 <= e.r ** 2
    if e.kind == "hoop":
        return np.abs(np.hypot(du, dv - e.hoop_r) - e.hoop_r) <= e.t / 2
    return (du / e.r) ** 2 + ((dv - 2.2 * e.r) / (2.2 * e.r)) ** 2 <= 1.0


def _torso(f, g):
    b = f.body
    dx = np.abs(g.x - b.x)
    out = np.clip(dx - b.neck_w, 0, None) / 0.3
    top = b.shoulder_y + b.drop * out * np.sqrt(out)
    return (g.y >= top) & (dx <= b.shoulder_w + 0.5 * (g.y - b.shoulder_y))


def _neckline(f, g):
    b = f.body
    dx = np.abs(g.x - b.x)
    dy = g.y - b.shoulder_y
    if b.neckline == "crew":
        return (dx / (1.3 * b.neck_w)) ** 2 + (dy / b.depth) ** 2 <= 1.0
    if b.neckline == "v":
        return (dy <= b.depth * (1.0 - dx / (1.6 * b.neck_w))) & (dy >= -0.1)
    if b.neckline == "scoop":
        return (dx / (2.0 * b.neck_w)) ** 2 + (dy / b.depth) ** 2 <= 1.0
    return np.zeros(np.shape(g.x), bool)


def _neck(f, g, torso, neckline):
    b = f.body
    width = b.neck_w + 0.6 * np.clip(g.y - (b.shoulder_y - 0.03), 0, None)  # widens into the shoulders
    column = (np.abs(g.x - b.x) <= width) & (g.y >= f.cy)
    return column | (torso & neckline)


def _cloth(f, g, torso, neckline):
    b = f.body
    cloth = torso & ~neckline
    if b.neckline == "turtle":
        cloth |= (np.abs(g.x - b.x) <= 1.12 * b.neck_w) & (g.y >= b.shoulder_y - 0.07)
    return cloth


def _necklace_curve(f, x):
    b, n = f.body, f.necklace
    return b.shoulder_y - 0.045 + n.depth * (1.0 - ((x - b.x) / (1.1 * b.neck_w)) ** 2)


def _necklace(f, g):
    b, n = f.body, f.necklace
    chain = (np.abs(g.y - _necklace_curve(f, g.x)) <= n.t / 2) & (np.abs(g.x - b.x) <= 1.1 * b.neck_w)
    if n.pendant:
        chain |= np.hypot(g.x - b.x, g.y - _necklace_curve(f, b.x) - n.r) <= n.r
    return chain


def _boxed(shape, f, g, u0, u1, v0, v1):
    """shape(f, g) evaluated only on the pixels around the head-frame box [u0, u1] x [v0, v1], which
    must hold the shape: small features then cost little on a big grid."""
    n = g.x.shape[0]
    uu = np.array([u0, u1, u0, u1]) * f.fw
    vv = np.array([v0, v0, v1, v1]) * f.fh
    cos, sin = np.cos(f.roll), np.sin(f.roll)
    xs, ys = f.cx + uu * cos - vv * sin, f.cy + uu * sin + vv * cos
    c0, c1 = np.clip([int(np.floor(xs.min() * n)) - 1, int(np.ceil(xs.max() * n)) + 1], 0, n)
    r0, r1 = np.clip([int(np.floor(ys.min() * n)) - 1, int(np.ceil(ys.max() * n)) + 1], 0, n)
    out = np.zeros((n, n), bool)
    if r1 > r0 and c1 > c0:
        out[r0:r1, c0:c1] = shape(f, SimpleNamespace(**{k: a[r0:r1, c0:c1] for k, a in vars(g).items()}))
    return out


def _layers(f, g) -> list[tuple[str, np.ndarray]]:
    """(part, shape) from back to front: the order a portrait is drawn in, not the label order."""
    h = f.hair
    reach = max(1.3 * h.half_w, h.curtain_out + h.spread * (h.end + 0.15))
    hair_back = hair_front = None
    if h.style in ("bob", "long"):
        hair_back = _boxed(_hair_back, f, g, -reach, reach, h.center, h.end + 0.15)
    if h.style != "bald":
        top = h.center - 1.3 * h.half_h - (h.bun_r if h.style == "bun" else 0.0)
        bottom = (h.end if h.style in ("bob", "long") else h.side_limit) + 0.15
        hair_front = _boxed(_hair_front, f, g, -reach, reach, top, bottom)
    layers = [] if hair_back is None else [("hair", hair_back)]
    torso, neckline = _torso(f, g), _neckline(f, g)
    layers += [("neck", _neck(f, g, torso, neckline)), ("cloth", _cloth(f, g, torso, neckline))]
    if f.necklace is not None:
        layers.append(("neck_l", _necklace(f, g)))
    for part, side in (("l_ear", 1), ("r_ear", -1)):  # l_ear: the person's left, on the image right
        u, w = side * f.ear_x, 1.5 * f.ear_w
        layers.append((part, _boxed(lambda f, g: _ear(f, g, side), f, g, u - w, u + w,
                                    f.ear_y - f.ear_h, f.ear_y + f.ear_h)))
    if f.earrings is not None:
        reach = 2.5 * f.earrings.hoop_r + 5 * f.earrings.r  # image units
        du, dv, v0 = reach / f.fw, reach / f.fh, f.ear_y + 0.85 * f.ear_h
        layers.append(("ear_r", np.logical_or.reduce([
            _boxed(lambda f, g: _earring(f, g, side), f, g,
                   side * f.ear_x - du, side * f.ear_x + du, v0 - dv, v0 + dv) for side in (-1, 1)])))
    layers.append(("skin", _skin(f, g)))
    layers.append(("nose", _boxed(_nose, f, g, 1.3 * f.shift - f.nose_wb, 1.3 * f.shift + f.nose_wb, f.nose_top,
                                  f.nose_bot)))
    top = f.mouth_y - max(f.smile, 0) - f.mouth_open - f.lip_u
    bottom = f.mouth_y - min(f.smile, 0) + f.mouth_open + f.lip_l
    for i, part in enumerate(("mouth", "u_lip", "l_lip")):
        layers.append((part, _boxed(lambda f, g: _lips(f, g)[i], f, g, f.shift - f.mouth_w, f.shift + f.mouth_w,
                                    top, bottom)))
    glasses = None
    if f.glasses is not None:
        s = f.glasses
        glasses = ("eye_g", _boxed(lambda f, g: _glasses_shapes(f, g)[0], f, g, -f.ear_x - 0.1, f.ear_x + 0.1,
                                   s.y - s.half_h, s.y + s.half_h))
    if glasses and not f.glasses.sun:
        layers.append(glasses)
    for part, side in (("l_eye", 1), ("r_eye", -1)):
        u = f.shift + side * f.eye_x
        dv = f.eye_h + abs(f.eye_tilt) * f.eye_w
        layers.append((part, _boxed(lambda f, g: _eye(f, g, side), f, g, u - f.eye_w, u + f.eye_w, f.eye_y - dv,
                                    f.eye_y + dv)))
    if glasses and f.glasses.sun:  # dark lenses hide the eyes
        layers.append(glasses)
    for part, side in (("l_brow", 1), ("r_brow", -1)):
        u = f.shift + side * f.brow_x
        layers.append((part, _boxed(lambda f, g: _brow(f, g, side), f, g, u - f.brow_w, u + f.brow_w,
                                    f.brow_y - f.brow_arch - f.brow_t, f.brow_y + f.brow_t)))
    if hair_front is not None:
        layers.append(("hair", hair_front))
    if f.hat is not None:
        layers.append(("hat", _hat(f, g)))
    return layers


def _draw(layers: list[tuple[str, np.ndarray]], n: int) -> np.ndarray:
    label = np.zeros((n, n), np.uint8)
    for part, shape in layers:
        label[shape] = CHANNEL[part]
    return label


# ---------------------------------------------------------------------------------------------
# Textures: colours as 3 x k float arrays (channels first, so numpy loops run along the pixels) for
# the k pixels of one part, given those pixels' coordinates and noise values p


def _rgb(r, g, b):
    return np.array([[r], [g], [b]], float)


def _smooth_noise(rng: np.random.Generator, n: int, cells: int) -> np.ndarray:
    """Unit-variance noise with about `cells` blobs across, upsampled bicubically to n x n."""
    coarse = Image.fromarray(rng.standard_normal((cells, cells)).astype(np.float32))
    return np.asarray(coarse.resize((n, n), Image.BICUBIC), dtype=np.float64)


def _mix(a, b, t):
    return a + (b - a) * t


def _gauss(d2, width):
    return np.exp(-d2 / width ** 2)


def _tex_background(f, p):
    c = f.colors
    t = 0.5 + (p.x - 0.5) * np.cos(c.bg_angle) + (p.y - 0.5) * np.sin(c.bg_angle)
    vignette = 1.0 - 0.25 * ((p.x - 0.5) ** 2 + (p.y - 0.5) ** 2)
    return _mix(c.bg, c.bg2, np.clip(t, 0, 1)) * vignette + 22 * p.low + 4 * p.fine


def _shade_skin(f, p, base):
    c = f.colors
    uf = p.u - f.shift
    light = 1.0 + 0.1 * c.light * p.u - 0.12 * (p.u ** 2 + 0.6 * p.v ** 2)
    sockets = sum(_gauss((uf - s * f.eye_x) ** 2 + 4 * (p.v - f.eye_y + 0.02) ** 2, 0.28) for s in (-1, 1))
    cheeks = sum(_gauss((uf - s * 0.5) ** 2 + (p.v - 0.28) ** 2, 0.25) for s in (-1, 1))
    return base * (light - 0.16 * sockets) + _rgb(60, -10, -5) * (c.blush * cheeks) + 7 * p.mid + 3 * p.fine


def _tex_skin(f, p):
    return _shade_skin(f, p, f.colors.skin)


def _tex_nose(f, p):
    du = p.u - 1.3 * f.shift
    ridge = _gauss(du ** 2, 0.06) * np.clip((p.v - f.nose_top) / (f.nose_bot - f.nose_top), 0, 1)
    nostrils = sum(_gauss(((du - s * 0.09) / 1.5) ** 2 + (p.v - f.nose_bot + 0.04) ** 2, 0.045)
                   for s in (-1, 1))
    sides = np.clip(np.abs(du) / f.nose_wb, 0, 1) ** 2
    return _shade_skin(f, p, f.colors.skin) * (1.0 + 0.1 * ridge - 0.4 * nostrils - 0.1 * sides)


def _tex_ear(f, p):
    side = np.sign(p.u)
    bowl = _gauss(((p.u - side * f.ear_x) / f.ear_w) ** 2 + ((p.v - f.ear_y) / f.ear_h) ** 2, 0.5)
    return _shade_skin(f, p, f.colors.skin * 0.93) * (1.0 - 0.25 * bowl)


def _tex_neck(f, p):
    under_chin = np.clip(1.0 - (p.y - f.cy - f.fh) / 0.08, 0, 1)  # the chin casts a shadow
    light = 0.9 + 0.05 * f.colors.light * (p.x - f.body.x) / f.body.neck_w
    return f.colors.skin * (light * (1.0 - 0.3 * under_chin)) + 6 * p.mid + 3 * p.fine


def _tex_eye(f, p, side):
    c = f.colors
    a, b = _eye_coords(f, p, side)
    lid = np.clip(1.0 - a * a, 0, None) ** 0.7
    col = _rgb(232, 228, 222) * (1.0 - 0.25 * a ** 2)
    r = np.hypot((a - f.gaze) * f.eye_w * f.fw, b * f.eye_h * f.fh) / (1.15 * f.eye_h * f.fh)
    iris = r <= 1.0
    col[:, iris] = c.iris * (1.1 - 0.4 * r[iris])
    col[:, r <= 0.45] = _rgb(15, 12, 12)
    col[:, np.hypot(a - f.gaze - 0.12, b + 0.3) < 0.12] = _rgb(250, 250, 250)
    lashes = np.clip((b + lid) / 0.35, 0, 1)  # the upper lid line is dark
    return _mix(_rgb(25, 18, 16), col, lashes) + 3 * p.fine


def _tex_brow(f, p):
    return f.colors.brow * (0.9 + 0.1 * p.mid) + 14 * p.fine


def _tex_mouth(f, p):
    a, fall, mid = _mouth_coords(f, p)
    col = np.repeat(_rgb(85, 25, 30), len(a), axis=1)
    if f.teeth:
        col[:, (p.v < mid - 0.1 * f.mouth_open * fall) & (np.abs(a) < 0.65)] = _rgb(230, 225, 215)
    return col + 4 * p.fine


def _tex_lip(f, p, lower):
    a, _, _ = _mouth_coords(f, p)
    shine = 0.08 + 0.12 * _gauss(a ** 2, 0.35) if lower else 0.0
    return f.colors.lip * (0.92 + shine - 0.15 * a ** 2) + 5 * p.mid + 3 * p.fine


def _tex_hair(f, p):
    c, h = f.colors, f.hair
    du, dv = p.u * f.fw, (p.v - h.center + 0.7 * h.half_h) * f.fh  # from the crown, in image units
    theta = np.arctan2(dv, du)
    if h.curly:
        pattern = np.sin(40.0 * np.hypot(du, dv) + 3.0 * p.mid) * np.sin(c.strands * theta + 2.0 * p.low)
    else:
        pattern = np.sin(c.strands * theta + 5.0 * p.low)
    shine = _gauss((np.hypot(du, dv) - 0.09) ** 2, 0.04) * 0.2
    dark = np.clip((p.v - 0.5) / 3.0, 0, 0.25)  # hair far below the face is in shadow
    return c.hair * (0.8 + 0.15 * pattern + shine - dark + 0.07 * p.mid) + 8 * p.fine + 20


def _tex_hat(f, p):
    c = f.colors
    stripes = np.sin(60.0 * p.u * f.fw) if f.hat.knit else 0.0
    brim = (p.v > f.hat.bottom - 0.05) * 0.15
    return c.hat * (0.95 + 0.08 * stripes - brim - 0.1 * p.v + 0.1 * c.light * p.u + 0.06 * p.mid)


def _tex_metal(f, p):
    sparkle = np.clip(p.fine, 0, None)
    return f.colors.metal * (0.75 + 0.15 * sparkle) + 30 * sparkle


def _tex_cloth(f, p):
    c = f.colors
    along = (p.x * np.cos(c.pattern_angle) + p.y * np.sin(c.pattern_angle)) * c.pattern_freq
    across = (-p.x * np.sin(c.pattern_angle) + p.y * np.cos(c.pattern_angle)) * c.pattern_freq
    if c.pattern == "stripes":
        t = np.sin(2 * np.pi * along) > 0.3
    elif c.pattern == "checks":
        t = (np.sin(2 * np.pi * along) > 0) ^ (np.sin(2 * np.pi * across) > 0)
    elif c.pattern == "dots":
        t = (np.sin(2 * np.pi * along) * np.sin(2 * np.pi * across)) > 0.6
    else:
        t = np.zeros(len(p.x))
    folds = 1.0 - 0.15 * np.abs(p.low) + 0.06 * p.mid + 0.08 * c.light * (p.x - f.body.x) / 0.3
    return _mix(c.cloth, c.cloth2, t) * folds + 4 * p.fine


def _tex_glasses(f, p):
    c = f.colors
    _, lens = _glasses_shapes(f, p)
    col = c.frame + 6 * p.fine
    if f.glasses.sun:
        glare = np.clip(1.0 - 3.0 * (p.v[lens] - f.glasses.y + f.glasses.half_h), 0, 1)
        col[:, lens] = c.lens * (1.0 + 0.8 * glare)
    else:
        behind = SimpleNamespace(**{k: v[lens] for k, v in vars(p).items()})
        col[:, lens] = _mix(_tex_skin(f, behind), c.lens, 0.25)
    return col


_TEXTURES = {
    "skin": _tex_skin, "nose": _tex_nose, "eye_g": _tex_glasses,
    "l_eye": lambda f, p: _tex_eye(f, p, 1), "r_eye": lambda f, p: _tex_eye(f, p, -1),
    "l_brow": _tex_brow, "r_brow": _tex_brow, "l_ear": _tex_ear, "r_ear": _tex_ear, "mouth": _tex_mouth,
    "u_lip": lambda f, p: _tex_lip(f, p, False), "l_lip": lambda f, p: _tex_lip(f, p, True),
    "hair": _tex_hair, "hat": _tex_hat, "ear_r": _tex_metal, "neck_l": _tex_metal, "neck": _tex_neck,
    "cloth": _tex_cloth,
}


def _paint(f: SimpleNamespace, g: SimpleNamespace, label: np.ndarray) -> np.ndarray:
    """The photo: each pixel textured as the part its label names."""
    n = label.shape[0]
    rng = np.random.default_rng(f.texture_seed)
    fields = dict(vars(g), fine=rng.standard_normal((n, n)), low=_smooth_noise(rng, n, 5),
                  mid=_smooth_noise(rng, n, 24))
    fields = {k: v.ravel() for k, v in fields.items()}
    flat = label.ravel()
    order = np.argsort(flat, kind="stable")  # pixels grouped by label, to gather each part once
    starts = np.searchsorted(flat[order], np.arange(len(CHANNEL) + 2))
    image = np.empty((3, n * n))
    for channel in range(len(CHANNEL) + 1):
        where = order[starts[channel]:starts[channel + 1]]
        if where.size:
            p = SimpleNamespace(**{k: v[where] for k, v in fields.items()})
            texture = _tex_background if channel == 0 else _TEXTURES[CELEBA_PARTS[channel - 1]]
            image[:, where] = texture(f, p)
    image = image.reshape(3, n, n).transpose(1, 2, 0)
    photo = Image.fromarray((np.clip(image, 0, 255) + 0.5).astype(np.uint8))  # rounded
    return np.asarray(photo.filter(_ANTIALIAS))


# ---------------------------------------------------------------------------------------------
# Public API


def render_face(rng: np.random.Generator, size: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Returns ({part name: bool mask size x size} for the parts present, image uint8 (2*size)x(2*size)x3)."""
    if size < 32:
        raise ValueError(f"size must be at least 32, got {size}")
    f = _sample_face(rng, size)
    g = _grid(f, size)
    layers = _layers(f, g)
    counts = np.bincount(_draw(layers, size).ravel(), minlength=len(CHANNEL) + 1)
    present = {part for part in CELEBA_PARTS if counts[CHANNEL[part]] >= MIN_PIXELS}
    # Dropping a part only uncovers what lay under it, so the parts kept stay above MIN_PIXELS.
    layers = [(part, shape) for part, shape in layers if part in present]
    label = _draw(layers, size)
    masks = {}
    for part in CELEBA_PARTS:
        if part in present:
            shape = np.logical_or.reduce([s for p, s in layers if p == part])
            masks[part] = (label == CHANNEL[part]) | (shape & (label > CHANNEL[part]))
    big = _grid(f, 2 * size)
    big_label = _draw([(part, shape) for part, shape in _layers(f, big) if part in present], 2 * size)
    return masks, _paint(f, big, big_label)


def combine_part_masks(masks: dict[str, np.ndarray], size: int) -> np.ndarray:
    """uint8 size x size label map: 0, then each part of CELEBA_PARTS in index order painted with its
    channel (1..18)."""
    label = np.zeros((size, size), np.uint8)
    for part in CELEBA_PARTS:
        if part in masks:
            label[np.asarray(masks[part], bool)] = CHANNEL[part]
    return label


def image_path(root: Path, k: int) -> Path:
    return Path(root) / IMAGE_DIR / f"{k}.jpg"


def mask_path(root: Path, k: int, part: str) -> Path:
    return Path(root) / MASK_DIR / str(k // FACES_PER_FOLDER) / f"{k:05d}_{part}.png"


def write_toy_faces(root: Path, *, seed: int, count: int, size: int) -> None:
    """Writes the dataset under root (root must not exist yet or be empty)."""
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty")
    (root / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    for folder in range((count - 1) // FACES_PER_FOLDER + 1 if count else 0):
        (root / MASK_DIR / str(folder)).mkdir(parents=True, exist_ok=True)
    try:
        from tqdm import tqdm
        faces = tqdm(range(count), desc="toy faces", unit="face", leave=False)
    except ImportError:
        faces = range(count)
    for k in faces:
        masks, image = render_face(np.random.default_rng([seed, k]), size)
        Image.fromarray(image).save(image_path(root, k), quality=JPEG_QUALITY)
        for part, mask in masks.items():
            Image.fromarray(mask.astype(np.uint8) * 255).save(
                mask_path(root, k, part), compress_level=PNG_COMPRESS_LEVEL)
