"""Errors as an artist should meet them: one report line with the fix, never a traceback."""

from __future__ import annotations

import functools
from typing import Callable

from joker_core.errors import JokerError


def reports_errors(execute: Callable) -> Callable:
    """Operator.execute decorator: a JokerError becomes an error report and CANCELLED
    (in scripts, Blender raises it as a RuntimeError carrying the same line)."""
    @functools.wraps(execute)
    def wrapper(self, context):
        try:
            return execute(self, context)
        except JokerError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
    return wrapper
