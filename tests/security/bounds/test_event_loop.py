"""Finding 7: sqlglot on a 98k-character SQL and checking a 940 KB ANSWER ran on the event
loop (bystanders' p50 went from 1.4 ms to 800 ms); the slow-step pool was FIFO."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from sqlenv_core import checker, sandbox
from sqlenv_core import env as env_module
from sqlenv_core.dataset import load_dataset
from sqlenv_core.schemas import SQLAction
from sqlenv_server.sessions import SessionManager
from sqlenv_server.settings import ServerSettings
from sqlenv_server.workers import FairExecutor


@pytest.mark.parametrize(
    ("kind", "argument", "patched"),
    [
        (
            "QUERY",
            "SELECT 1 AS k FROM airports WHERE " + " OR ".join(["1 = 1"] * 9_000),
            "sqlglot",
        ),
        ("ANSWER", ", ".join(["x"] * 300_000), "checker"),
    ],
)
def test_heavy_steps_run_off_the_event_loop(
    monkeypatch, kind: str, argument: str, patched: str
) -> None:
    threads: list[str] = []
    if patched == "sqlglot":
        original = sandbox._verdict

        def spy(sql: str):
            threads.append(threading.current_thread().name)
            return original(sql)

        monkeypatch.setattr(sandbox, "_verdict", spy)
    else:
        original_check = checker.check_answer

        def spy_check(*args):
            threads.append(threading.current_thread().name)
            return original_check(*args)

        monkeypatch.setattr(env_module, "check_answer", spy_check)

    async def play() -> None:
        manager = SessionManager(load_dataset(), ServerSettings())
        session = manager.open("ws", "203.0.113.1")
        manager.reset(session, {"db_id": "flight_4"})
        await manager.step(session, SQLAction(action_type=kind, argument=argument))
        await manager.shutdown()

    asyncio.run(play())
    assert threads and all(name.startswith("sqlenv-query") for name in threads), threads


def test_clients_take_turns_and_a_session_runs_one_step_at_a_time() -> None:
    executor = FairExecutor(1, thread_name_prefix="t")
    order: list[str] = []
    gate = threading.Event()
    first = executor.submit("a", "a0", gate.wait)  # holds the only thread
    jobs = [executor.submit("a", f"a{i}", order.append, f"a{i}") for i in range(1, 6)]
    jobs += [executor.submit("a", "a1", order.append, "a1-second")]
    jobs += [executor.submit("b", "b0", order.append, "b0")]
    gate.set()
    for job in [first, *jobs]:
        job.result(timeout=10)
    assert order[0] == "b0", order  # right after a0 (a's turn), not after all of a's
    assert order.index("a1-second") > order.index("a1")
    executor.shutdown()


def test_one_session_never_has_two_steps_in_flight() -> None:
    executor = FairExecutor(4, thread_name_prefix="t")
    active, peak = [0], [0]
    lock = threading.Lock()

    def job() -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.01)
        with lock:
            active[0] -= 1

    futures = [executor.submit("c", "s", job) for _ in range(10)]
    for f in futures:
        f.result(timeout=10)
    assert peak[0] == 1
    executor.shutdown()
