"""The one exception type users see, always with the fix spelled out."""


class JokerError(Exception):
    """An error caused by the user's input or environment, with what to do about it.

    `str(error)` is one line: what went wrong, then the fix. Front ends (CLI, server,
    add-on) show it as is; a traceback is only for bugs.
    """

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem.rstrip(". ")
        self.fix = fix.rstrip(". ") if fix else None
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.problem}. Fix: {self.fix}." if self.fix else f"{self.problem}."


class JobCancelled(Exception):
    """Raised inside a running job when its cancel request is honoured."""
