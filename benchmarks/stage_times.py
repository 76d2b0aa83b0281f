"""Times the DVC pipeline of the current params, DVC's own hashing and caching included, and prints
Markdown tables with the machine it ran on:
- each stage forced on its own (`dvc repro --force --single-item`), or with `--whole` one
  `dvc repro --force` of the whole pipeline;
- then, unless stages are named, a no-op `dvc repro` (nothing changed: DVC hashes the deps and finds
  every stage up to date), median of three.

    python benchmarks/stage_times.py [stage ...]      # default: every stage of the pipeline, in order
    python benchmarks/stage_times.py --whole

It runs in the current checkout and leaves outputs and dvc.lock as `dvc repro` would.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time

from machine import cpu_description


def machine() -> str:
    return f"{cpu_description()}, Python {platform.python_version()}"


def timed_repro(*arguments: str) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "dvc", "repro", *arguments], capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"dvc repro {' '.join(arguments)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return time.perf_counter() - start, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stages", nargs="*", help="stages to time on their own (default: all, in order)")
    parser.add_argument("--whole", action="store_true", help="one `dvc repro --force` of the whole pipeline")
    args = parser.parse_args()
    if args.whole and args.stages:
        parser.error("--whole times the whole pipeline; leave out the stage names")

    rows = []
    if args.whole:
        seconds, out = timed_repro("--force")
        rows.append((f"`dvc repro --force` ({out.count('Running stage')} stages)", seconds))
    else:
        stages = args.stages or subprocess.run([sys.executable, "-m", "dvc", "stage", "list", "--name-only"],
                                               check=True, capture_output=True, text=True).stdout.split()
        for stage in stages:
            rows.append((f"`{stage}`", timed_repro("--force", "--single-item", stage)[0]))
        rows.append(("total", sum(seconds for _, seconds in rows)))
    if not args.stages:
        no_ops = []
        for _ in range(3):
            seconds, out = timed_repro()
            if "up to date" not in out:
                sys.exit(f"the pipeline was not up to date after the timed run:\n{out[-2000:]}")
            no_ops.append(seconds)
        rows.append(("`dvc repro` with nothing changed (median of 3)", statistics.median(no_ops)))

    print(f"Machine: {machine()}\n")
    print("| stage | seconds |\n|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
