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
from sqlenv_core.env import SQLEnvironment
from sqlenv_core.errors import StepDeferred
from sqlenv_core.schemas import SQLAction
from sqlenv_server.sessions import SessionManager
from sqlenv_server.settings import ServerSettings
from sqlenv_server.workers import FairExecutor


@pytest.mark.parametrize("repeats", [700, 8_000])  # 7.7 KB (runs) and 96 KB of SQL
def test_long_sql_is_parsed_in_another_process(monkeypatch, repeats: int) -> None:
    """sqlglot's compiled parser holds the GIL throughout (0.3-0.8 s for 98 KB): neither
    the event loop nor a worker thread of the server may run it on long SQL."""
    calls: list[str] = []
    original = sandbox._verdict
    monkeypatch.setattr(sandbox, "_verdict", lambda sql: calls.append(sql) or original(sql))
    sql = "SELECT 1 AS k FROM airports WHERE " + " OR ".join(["apid = 1"] * repeats)
    delete = "DELETE FROM airports -- " + "x" * 2000

    async def play():
        manager = SessionManager(load_dataset(), ServerSettings())
        session = manager.open("ws", "203.0.113.1")
        manager.reset(session, {"db_id": "flight_4"})
        obs = await manager.step(session, SQLAction(action_type="QUERY", argument=sql))
        rejected = await manager.step(session, SQLAction(action_type="QUERY", argument=delete))
        await manager.shutdown()
        return obs, rejected

    obs, rejected = asyncio.run(play())
    assert calls == []
    assert obs.step_count == 1 and (obs.error == "" or obs.error.startswith("SQL error:"))
    assert "only a single read-only SELECT is allowed; got DELETE" in rejected.error


@pytest.mark.parametrize("correct", [False, True])
def test_big_answers_are_checked_in_another_process(monkeypatch, correct: bool) -> None:
    calls: list[str] = []
    monkeypatch.setattr(
        env_module, "check_answer", lambda *a: calls.append("here") or checker.check_answer(*a)
    )
    dataset = load_dataset()
    # a question whose gold is big enough for its check to leave the loop
    big = next(q for q in dataset.select(split="train") if len(q.gold_rows) > 600)
    text = checker.format_answer(big.gold_rows) if correct else ", ".join(["x"] * 300_000)

    async def play():
        manager = SessionManager(dataset, ServerSettings())
        session = manager.open("ws", "203.0.113.1")
        manager.reset(session, {"question_id": big.id})
        obs = await manager.step(session, SQLAction(action_type="ANSWER", argument=text))
        state = manager.state(session)
        await manager.shutdown()
        return obs, state

    obs, state = asyncio.run(play())
    assert calls == []  # not in this process: no thread of it held the GIL for the check
    assert obs.done and state.correct is correct
    assert obs.result.startswith("Correct." if correct else "Incorrect:")


def test_a_big_result_within_the_inline_budget_is_processed_off_the_loop() -> None:
    environment = SQLEnvironment()
    environment.reset(db_id="flight_4")
    sql = "SELECT hex(zeroblob(3900)) || 1 AS k FROM routes LIMIT 1000"
    with pytest.raises(StepDeferred):
        environment.step(SQLAction(action_type="QUERY", argument=sql), inline_budget_s=1.0)
    assert environment.state.step_count == 0  # untouched: the worker runs the step again
    small = environment.step(
        SQLAction(action_type="QUERY", argument="SELECT 1"), inline_budget_s=1.0
    )
    assert small.step_count == 1 and not small.error
    environment.close()


def test_clients_take_turns_and_a_session_runs_one_step_at_a_time() -> None:
    executor = FairExecutor(1, thread_name_prefix="t")
    order: list[str] = []
    running, gate = threading.Event(), threading.Event()

    def hold() -> None:
        running.set()
        gate.wait()

    first = executor.submit("a", "a0", hold)  # holds the only thread
    assert running.wait(10)
    jobs = [executor.submit("a", f"a{i}", order.append, f"a{i}") for i in range(1, 6)]
    jobs += [executor.submit("a", "a1", order.append, "a1-second")]
    jobs += [executor.submit("b", "b0", order.append, "b0")]
    gate.set()
    for job in [first, *jobs]:
        job.result(timeout=10)
    # a queued first, so a1 goes first; then b's turn, not after all five of a's sessions
    assert order[:2] == ["a1", "b0"], order
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
