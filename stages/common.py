"""What every stage does around its work: load params, turn bad input into one error line."""
from __future__ import annotations

import sys
from typing import Callable

from data.errors import InputError
from stages.params import Params, load_params


def run_stage(main: Callable[[Params], None]) -> None:
    try:
        main(load_params())
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
