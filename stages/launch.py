"""Runs a training stage as `processes` processes (the params key), the way dvc.yaml calls it:

    python -m stages.launch PROCESSES MODULE [ARG ...]      e.g. python -m stages.launch 2 stages.image

One process runs MODULE in this interpreter, as `python -m MODULE ARG ...` would. More processes are
started by torchrun's launcher (`--standalone`, one per GPU, or a share of the CPU cores each; see
`data.training.start_processes`). Either way a stage that stops on bad input ends with its error line
(once per process that got to print it) and exit status 1: torchrun's own report of a failed worker, a
traceback of its launcher, is left out, because the worker has already said what went wrong.
"""
from __future__ import annotations

import runpy
import sys


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit("usage: python -m stages.launch PROCESSES MODULE [ARG ...]")
    count, module, arguments = argv[0], argv[1], argv[2:]
    if not count.isdigit() or int(count) < 1:
        sys.exit(f"error: processes = {count!r}; use a whole number of processes, 1 or more (one per GPU)")
    processes = int(count)
    if processes == 1:
        sys.argv = [module, *arguments]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    try:
        run(parse_args(["--standalone", f"--nproc-per-node={processes}", "-m", module, *arguments]))
    except ChildFailedError as failed:
        # torchrun stops the other processes when one fails. Status 1 is a stage's error exit or a Python
        # traceback, both already printed; anything else (a signal, a crash) is said here.
        codes = {rank: failure.exitcode for rank, failure in failed.failures.items()}
        if 1 not in codes.values():
            from stages.common import restore_hint

            print(f"error: {module} failed in {len(codes)} of {processes} processes (rank: exit status "
                  f"{', '.join(f'{rank}: {code}' for rank, code in sorted(codes.items()))}){restore_hint()}",
                  file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
