"""The hostile-SQL corpus (``hostile_sql.py``, over 100 entries) through the engine and
through the server, on copies of the three largest bundled databases.

Every entry must get its outcome class within the deadline plus 10% (plus a fixed
allowance, below), every database file must stay byte-identical (sha256, checked by the
``big_data`` fixture), and over the server a second session playing real episodes must
get correct and timely replies while ``/health`` stays 200.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hostile_sql import BIG_TABLES, CORPUS, classify
from sqlenv_core.checker import format_answer
from sqlenv_core.config import EnvConfig, SandboxConfig
from sqlenv_core.dataset import load_dataset
from sqlenv_core.env import SQLEnvironment
from support import LARGEST_DBS, Server, fast_questions
from websockets.asyncio.client import connect

DEADLINE = 0.5
ENGINE_ALLOWANCE = 0.1
"""In process: tearing down a large sorter after the interrupt, rendering, GC pauses.
Measured worst overshoot on the 2-core machine: 21 ms while SQLite sorted in temporary
files; 45-65 ms since it sorts in memory under the heap limit (issue 11, finding 8: an
interrupted sort of a cross join frees up to 256 MiB)."""
SERVER_ALLOWANCE = 0.15
"""Over the server, also: the WebSocket round trip and JSON (about 1 ms), the 5 ms inline
attempt before a slow query moves to a worker thread, the thread hand-off, and an event
loop busy with the other session. Measured worst overshoot alone: 45 ms.

A timing over the bound is measured up to four more times before it counts: the machine has 2
cores shared with other jobs (load 4-12 during these runs) and the server's worker threads
run at nice 10, so a CPU-bound neighbour can slow a step that runs there tenfold (a 50 ms
query took 1 s); a real overrun (an uninterruptible call) repeats every time.
"""
RETRIES = 4


def test_the_corpus_is_big_and_covers_every_outcome() -> None:
    assert len(CORPUS) >= 50
    assert len({item.id for item in CORPUS}) == len(CORPUS)
    assert {item.expect for item in CORPUS} == {"rejected", "error", "bounded-result", "timeout"}


@pytest.mark.parametrize("db_id", LARGEST_DBS)
def test_every_entry_through_the_engine(big_data: Path, db_id: str) -> None:
    env = SQLEnvironment(
        load_dataset(big_data),
        EnvConfig(budget=10_000, sandbox=SandboxConfig(timeout_s=DEADLINE)),
    )
    env.reset(db_id=db_id, seed=0)
    big, t2 = BIG_TABLES[db_id]
    path = str(big_data / "databases" / db_id / f"{db_id}.sqlite")
    failures = []
    for item in CORPUS:
        action = {"action_type": item.action, "argument": item.render(big, t2, path)}
        start = time.monotonic()
        obs = env.step(action)
        elapsed = time.monotonic() - start
        for _ in range(RETRIES):  # see SERVER_ALLOWANCE
            if elapsed <= DEADLINE * 1.1 + ENGINE_ALLOWANCE:
                break
            start = time.monotonic()
            obs = env.step(action)
            elapsed = time.monotonic() - start
        got = classify(obs.error)
        if got != item.expect:
            failures.append(f"{item.id}: expected {item.expect}, got {got}: {obs.error[:120]}")
        if elapsed > DEADLINE * 1.1 + ENGINE_ALLOWANCE:
            failures.append(f"{item.id}: took {elapsed:.3f} s")
        if obs.error:
            assert len(obs.error) < 2000, item.id  # a clear message, not a dump
        assert len(obs.model_dump_json()) < 10_000_000, item.id  # bounded result
    assert not failures, "\n".join(failures)
    # the engine is still fine afterwards
    obs = env.step({"action_type": "QUERY", "argument": f"SELECT count(*) FROM {big}"})
    assert obs.error == "" and obs.table is not None and obs.table.rows[0][0] > 1000
    env.close()


async def _ask(ws: Any, message: dict[str, Any], timeout: float = 30) -> tuple[dict[str, Any], float]:
    start = time.monotonic()
    await ws.send(json.dumps(message))
    frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=timeout))
    return frame, time.monotonic() - start


async def play_correctly(url: str, questions: list[Any], stop: asyncio.Event, log: list[float]) -> int:
    """Play oracle episodes until ``stop``: every reply checked, every step timed."""
    played = 0
    async with connect(url, max_size=None) as ws:
        while not stop.is_set():
            q = questions[played % len(questions)]
            frame, took = await _ask(ws, {"type": "reset", "data": {"question_id": q.id}})
            assert frame["type"] == "observation" and frame["data"]["observation"]["db_id"] == q.db_id
            log.append(took)
            step = {"action_type": "QUERY", "argument": q.gold_sql}
            frame, took = await _ask(ws, {"type": "step", "data": step})
            obs = frame["data"]["observation"]
            assert obs["error"] == "", (q.id, obs["error"])
            assert obs["table"]["total_rows"] == len(q.gold_rows), q.id
            log.append(took)
            step = {"action_type": "ANSWER", "argument": format_answer(q.gold_rows)}
            frame, took = await _ask(ws, {"type": "step", "data": step})
            assert frame["data"]["reward"] == 1.0 and frame["data"]["done"] is True, q.id
            log.append(took)
            played += 1
    return played


def test_every_entry_through_the_server_while_another_session_plays(
    big_data: Path, tmp_path: Path
) -> None:
    questions = fast_questions(big_data, ("formula_1", "sakila_1"))[:40]
    assert len(questions) >= 10
    with Server(big_data, tmp_path / "server.log", "--query-timeout", str(DEADLINE)) as server:
        health: list[int] = []
        stop_health = threading.Event()

        def watch_health() -> None:
            while not stop_health.is_set():
                health.append(server.health())
                time.sleep(0.2)

        watcher = threading.Thread(target=watch_health)
        watcher.start()

        async def main() -> tuple[list[str], int, list[float]]:
            stop = asyncio.Event()
            latencies: list[float] = []
            player = asyncio.create_task(play_correctly(server.ws_url, questions, stop, latencies))
            failures = []
            async with connect(server.ws_url, max_size=None) as ws:
                frame, _ = await _ask(ws, {"type": "reset", "data": {"db_id": "flight_4", "seed": 0, "budget": 10_000}})
                assert frame["type"] == "observation"
                big, t2 = BIG_TABLES["flight_4"]
                for item in CORPUS:
                    sql = item.render(big, t2, str(big_data / "databases" / "flight_4" / "flight_4.sqlite"))
                    message = {"type": "step", "data": {"action_type": item.action, "argument": sql}}
                    frame, elapsed = await _ask(ws, message)
                    for _ in range(RETRIES):  # see SERVER_ALLOWANCE
                        if elapsed <= DEADLINE * 1.1 + SERVER_ALLOWANCE:
                            break
                        await asyncio.sleep(0.5)
                        frame, elapsed = await _ask(ws, message)
                    if frame["type"] == "error":  # a protocol-level refusal (too large)
                        got = "rejected" if frame["data"]["code"] == "VALIDATION_ERROR" else "?"
                    else:
                        got = classify(frame["data"]["observation"]["error"])
                    if got != item.expect:
                        failures.append(f"{item.id}: expected {item.expect}, got {got}: {str(frame)[:200]}")
                    if elapsed > DEADLINE * 1.1 + SERVER_ALLOWANCE:
                        failures.append(f"{item.id}: took {elapsed:.3f} s")
            stop.set()
            played = await player
            return failures, played, latencies

        try:
            failures, played, latencies = asyncio.run(main())
        finally:  # before the server stops, even when a check in main() failed
            stop_health.set()
            watcher.join()
        assert not failures, "\n".join(failures)
        assert played >= 3
        latencies.sort()
        # the normal session's cheap steps stay fast while hostile queries run
        assert latencies[len(latencies) // 2] < 0.1, latencies
        assert latencies[-1] < DEADLINE, latencies[-5:]
        assert health and all(code == 200 for code in health)
        stats = server.stats()
        assert stats["active_sessions"] == 0 and stats["busy_sessions"] == 0
        assert "Traceback" not in server.log(), server.log()[-3000:]


def test_the_recorded_results_are_of_this_corpus() -> None:
    """benchmarks/results/hostile_sql.json, which the README and docs/reliability.md
    quote, was made from the corpus as it is: re-run hostile_sql.py --out after a change."""
    from hostile_sql import corpus_summary

    root = Path(__file__).resolve().parents[2]
    recorded = json.loads((root / "benchmarks" / "results" / "hostile_sql.json").read_text())
    assert recorded["results"]["entries"] == len(CORPUS)
    assert recorded["results"]["by_outcome"] == dict(sorted(corpus_summary()["by_expect"].items()))
    assert recorded["results"]["mismatches"] == []
    assert recorded["results"]["databases_byte_identical"] is True
