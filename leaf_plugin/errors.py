"""Errors the command line reports as one line, without a traceback.

``UserError`` is bad input (exit code 2); ``TrainingError`` is a failure that
happens while training, such as a non-finite loss (exit code 3).
"""


class UserError(Exception):
    """Bad input from the user: a flag, a config file, a dataset or a checkpoint."""

    exit_code = 2


class TrainingError(Exception):
    """Training cannot continue (a non-finite loss, for example)."""

    exit_code = 3
