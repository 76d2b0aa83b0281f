"""The one exception type for bad input."""


class InputError(Exception):
    """Bad input (a file, a dataset folder or a param). The message names it and says the fix.

    Stages turn it into a single `error: ...` line and a non-zero exit; anything else is a bug and
    keeps its traceback.
    """
