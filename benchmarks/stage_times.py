"""Times each DVC stage of the current params (`dvc repro --force --single-item`, DVC's own hashing
and caching included) and prints a Markdown table with the machine it ran on.

    python benchmarks/stage_times.py [stage ...]      # default: every stage of the pipeline, in order
"""
from __future__ import annotations

import platform
import subprocess
import sys
import time

from machine import cpu_description


def machine() -> str:
    return f"{cpu_description()}, Python {platform.python_version()}"


def main(stages: list[str]) -> None:
    stages = stages or subprocess.run([sys.executable, "-m", "dvc", "stage", "list", "--name-only"], check=True,
                                      capture_output=True, text=True).stdout.split()
    rows = []
    for stage in stages:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dvc", "repro", "--force", "--single-item", stage], check=True,
                       stdout=subprocess.DEVNULL)
        rows.append((stage, time.perf_counter() - start))
    print(f"Machine: {machine()}\n")
    print("| stage | seconds |\n|---|---|")
    for stage, seconds in rows:
        print(f"| `{stage}` | {seconds:.1f} |")
    print(f"| total | {sum(s for _, s in rows):.1f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
