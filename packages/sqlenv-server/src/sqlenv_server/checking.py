"""Big answers and long SQL are checked in a process of their own, off the server's GIL.

Checking an ANSWER is pure Python and linear in its length: a 940 KB answer takes about a
second of CPU. In a worker thread that second is spent holding the GIL in 5-ms turns,
and on a machine with more runnable threads than cores the holder is often descheduled
mid-turn, so the event loop waits for the GIL far longer than the switch interval (the
bystanders' p99 went from 20 ms to 400 ms). The process is started with the server
(its imports take about 0.3 s of CPU; 25-40 MB) and reused; if it dies, the check runs
in this process and a new one is started for the next. Long SQL goes there too: sqlglot's compiled parser
does not even give the GIL up every 5 ms (98,000 characters held it for 0.3-0.8 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from sqlenv_core.checker import CheckResult, check_answer
from sqlenv_core.schemas import Cell

__all__ = ["CheckerProcess"]

_T = TypeVar("_T")


def _verdict(sql: str) -> tuple[str | None, str]:
    from sqlenv_core.sqlcheck import verdict  # sqlglot: imported by the child only

    return verdict(sql)


log = logging.getLogger("sqlenv_server.checking")


CHECKER_NICE = 10
"""The checking process runs this much nicer than the server: it holds none of the
server's locks, so on a busy machine the event loop should have the cores first."""


def _prepare() -> None:
    """The child's initializer: lower its priority, load the checker and sqlglot."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(CHECKER_NICE)
    import sqlenv_core.sqlcheck  # noqa: F401  (sqlglot: 0.1 s, better before the first SQL)


def _verdict_of_answer(
    text: str, gold_rows: list[list[Cell]], order_matters: bool
) -> tuple[bool, str]:
    result = check_answer(text, gold_rows, order_matters)
    return result.correct, result.reason


def _nothing() -> None:
    return None


class CheckerProcess:
    """``await check(text, gold_rows, order_matters)``: ``check_answer`` in a child process."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Start the process now (its imports run beside the server's own start), so
        that the first big answer does not wait about 0.5 s for it, and its pipes and
        thread are there from the beginning rather than appearing under load."""
        self._executor().submit(_nothing)

    async def check(
        self, text: str, gold_rows: list[list[Cell]], order_matters: bool
    ) -> CheckResult:
        """The verdict, without ``parsed_rows`` (which the engine does not use): a 940 KB
        answer parses into 80,000 rows, and unpickling them would cost the loop 30 ms."""
        correct, reason = await self._run(_verdict_of_answer, text, gold_rows, order_matters)
        return CheckResult(correct, reason, [])

    async def verdict(self, sql: str) -> tuple[str | None, str]:
        """``sqlenv_core.sqlcheck.verdict(sql)``: whether the sandbox may run it."""
        return await self._run(_verdict, sql)

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_prepare,
            )
        return self._pool

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        try:
            return await asyncio.wrap_future(self._executor().submit(fn, *args))
        except BrokenProcessPool:
            log.warning("the checking process died; checking in this process")
            self._pool = None
            return await asyncio.to_thread(fn, *args)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
