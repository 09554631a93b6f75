"""One exception tree for the engine, so callers can catch ``SQLEnvError`` alone.

Only faults of the *caller* raise (no reset yet, bad configuration, missing data).
Mistakes of the *agent* (bad SQL, unknown table, stepping after the end) come back
as observations with ``error`` set, because an agent learns from them.
"""

from __future__ import annotations

__all__ = [
    "DataError",
    "QueryInterruptedError",
    "QueryRejectedError",
    "QueryTimeoutError",
    "ResetNeeded",
    "SQLEnvError",
    "SandboxError",
    "StepDeferred",
    "UnknownQuestionError",
]


class SQLEnvError(Exception):
    """Base of every error raised by sqlenv-core."""


class ResetNeeded(SQLEnvError):
    """``step`` or ``state`` was used before the first ``reset``."""


class DataError(SQLEnvError):
    """The data directory is missing, empty or corrupt; the message names the path."""


class UnknownQuestionError(SQLEnvError, LookupError):
    """No question matches the id or filters given to ``reset``."""


class SandboxError(SQLEnvError):
    """A query could not run; the message is written for the agent to read."""


class QueryRejectedError(SandboxError):
    """The sandbox refused the SQL before running it (not a single read-only SELECT)."""


class QueryTimeoutError(SandboxError):
    """The query ran past its deadline and was interrupted."""


class QueryInterruptedError(SandboxError):
    """The query was stopped by ``Sandbox.interrupt()`` (e.g. its client disconnected)."""


class StepDeferred(SQLEnvError):
    """A QUERY outran the caller's inline budget; the episode is unchanged.

    Servers run steps on their event loop with a small ``inline_budget_s`` so cheap
    queries stay fast, and on this signal re-run the same step in a worker thread
    with the full deadline, so a slow query never stalls other sessions.
    """
