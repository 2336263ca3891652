"""The workbench's exception tree.

::

    WorkbenchError                 base of every error the workbench raises on purpose
    ├── InvalidDataError           imported data or a schema file is wrong (carries every problem found)
    ├── InvalidScenarioError       a scenario file or design is wrong (carries every problem found)
    ├── NotFittedError             a generator was used before ``fit``
    └── UnknownNameError           a registry lookup (generator, analysis, built-in cohort) failed

Messages say what is wrong, where (file, row, column or key) and how to fix it. The UI shows them with
``st.error``; the CLI prints them and exits with status 2. Anything else escaping the library is a bug.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "WorkbenchError",
    "InvalidDataError",
    "InvalidScenarioError",
    "NotFittedError",
    "UnknownNameError",
]


class WorkbenchError(Exception):
    """Base class of every error the workbench raises on purpose."""


class _ProblemList(WorkbenchError):
    """An error that reports every problem found at once, not only the first."""

    kind = "problem"

    def __init__(self, problems: str | Iterable[str], *, source: str | None = None):
        if isinstance(problems, str):
            problems = [problems]
        self.problems: list[str] = [str(p) for p in problems]
        if not self.problems:
            raise ValueError("an error needs at least one problem")
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        where = f" in {self.source}" if self.source else ""
        if len(self.problems) == 1:
            return f"{self.kind}{where}: {self.problems[0]}"
        lines = [f"{len(self.problems)} problems{where}:"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


class InvalidDataError(_ProblemList):
    """Imported data or its schema is wrong; ``problems`` lists everything found."""

    kind = "invalid data"


class InvalidScenarioError(_ProblemList):
    """A scenario file or design is wrong; ``problems`` lists every key path at fault."""

    kind = "invalid scenario"


class NotFittedError(WorkbenchError):
    """A generator was asked to sample before ``fit`` was called."""


class UnknownNameError(WorkbenchError, KeyError):
    """A name is not in a registry; the message lists the valid names."""

    def __init__(self, what: str, name: str, valid: Iterable[str]):
        self.what, self.name, self.valid = what, name, sorted(valid)
        super().__init__(f"unknown {what} {name!r}; choose one of: {', '.join(self.valid)}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]
