"""How fast the palette studio answers: seconds from `semantic-palette serve` to a page ready in
headless Chromium, and seconds per Compose request (4 scenes) through the HTTP API, on the chain the
workspace's outputs hold (the repository after `dvc repro`, or another folder with --workspace).

    python benchmarks/studio_latency.py [--workspace .] [--repeats 10] [--screenshots docs/studio]

With --screenshots, the page composes the README's palette and a PNG of each tab is written there.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from browser import Page
from machine import cpu_description

REPO = Path(__file__).resolve().parents[1]
PALETTE = {"road": 0.35, "building": 0.3, "sky": 0.15}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_http(url: str, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server stopped: {server.stderr.read()}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"no answer from {url} after {timeout} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a running process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=REPO, help="folder with params.yaml and outputs/")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--screenshots", type=Path, help="folder for a PNG of each tab")
    args = parser.parse_args()
    from gradio_client import Client

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "stages.generate", "serve", "--port", str(port)],
                              cwd=args.workspace, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    try:
        wait_for_http(url, server)
        answering, startup_cpu = time.perf_counter() - started, cpu_seconds(server.pid)
        load = os.getloadavg()[0]
        with Page(url) as page:
            ready = time.perf_counter() - started
            client = Client(url, verbose=False)
            palette = ",".join(f"{name}={value}" for name, value in PALETTE.items())
            seconds = []
            for seed in range(args.repeats + 1):  # the first request warms up, and is reported apart
                begin = time.perf_counter()
                client.predict(palette, "gmm", seed, 4, api_name="/compose")
                seconds.append(time.perf_counter() - begin)
            if args.screenshots:
                for name, value in PALETTE.items():
                    page.set_slider(name, value)
                page.wait(lambda: page.value("palette") == palette)
                page.click("compose-button")
                page.table("proportions")
                page.image_sizes("scenes")
                buttons = {"Edit": "edit-button", "Interpolate": "interpolate-button", "Faces": "faces-button"}
                written = page.screenshots(args.screenshots, buttons)
                print(f"screenshots: {', '.join(str(path) for path in written)}")
    finally:
        server.terminate()
        server.wait()
    print(f"palette studio on {cpu_description()}, load average {load:.1f} at the start, chain of "
          f"{args.workspace.resolve()}")
    print(f"server answering HTTP {answering:.1f} s after the command ({startup_cpu:.1f} CPU s); page ready in "
          f"Chromium {ready:.1f} s after it (browser start and page load {page.load_seconds:.1f} s of that)")
    print(f"Compose, 4 scenes, through the HTTP API: first {seconds[0] * 1000:.0f} ms, then median "
          f"{statistics.median(seconds[1:]) * 1000:.0f} ms, max {max(seconds[1:]) * 1000:.0f} ms over {args.repeats}")


if __name__ == "__main__":
    main()
