"""The machine a benchmark ran on, for the figures it prints."""
from __future__ import annotations

import os
import platform


def cpu_description() -> str:
    """E.g. '2 CPU cores (AMD EPYC)'."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} CPU cores ({cpu})"
