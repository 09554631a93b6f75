"""Soak: N WebSocket sessions play full episodes against a real server for a while.

Each session loops: reset to a known question, DESCRIBE one of its tables, QUERY the
gold SQL, ANSWER — right for most episodes, deliberately wrong for some — and every
reply is checked (the question and database of the reset, the row count and rows of
the QUERY, reward 1.0 and ``done`` for a right answer, 0.0 for a wrong one, the state's
step count now and then). Some episodes end early with the client vanishing (TCP
reset, no close frame): after the reset, mid-episode, or while a slow query runs.

Reported: throughput, p50/p99 latency per request, the server's RSS over time, its
threads and file descriptors at start / after warm-up / after every client left, and
the sessions still open then (``GET /stats``).

    uv run python tests/reliability/soak.py --sessions 256 --duration 120   # full run
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

SLOW_SQL = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
)
WRONG = '"certainly not the answer"'


class WrongReply(AssertionError):
    pass


@dataclass
class Report:
    sessions: int = 0
    duration_s: float = 0.0
    requests: int = 0
    episodes: int = 0
    right_answers: int = 0
    wrong_answers: int = 0
    vanished: dict[str, int] = field(default_factory=lambda: {"after-reset": 0, "mid-episode": 0, "mid-query": 0})
    wrong_replies: list[str] = field(default_factory=list)
    lost_replies: int = 0
    latencies: list[float] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    at_start: dict[str, int] = field(default_factory=dict)
    after_warmup: dict[str, int] = field(default_factory=dict)
    at_end: dict[str, int] = field(default_factory=dict)
    sessions_after: int = -1
    busy_after: int = -1
    idle_connections_after: int = -1
    drained_in_s: float = 0.0

    def percentile(self, p: float) -> float:
        data = sorted(self.latencies)
        return data[min(len(data) - 1, int(p * len(data)))] if data else float("nan")

    def summary(self) -> dict[str, Any]:
        warm = self.after_warmup.get("rss_kb", 0)
        later = [s["rss_kb"] for s in self.samples]
        steady = [s["rss_kb"] for s in self.samples if s.get("warm")]
        growth = (max(steady) - warm) / warm if steady and warm else float("nan")
        return {
            "sessions": self.sessions,
            "duration_s": round(self.duration_s, 1),
            "requests": self.requests,
            "throughput_rps": round(self.requests / self.duration_s, 1) if self.duration_s else 0,
            "episodes": self.episodes,
            "episodes_per_s": round(self.episodes / self.duration_s, 1) if self.duration_s else 0,
            "right_answers_checked": self.right_answers,
            "wrong_answers_checked": self.wrong_answers,
            "vanished": self.vanished,
            "p50_ms": round(self.percentile(0.50) * 1000, 2),
            "p99_ms": round(self.percentile(0.99) * 1000, 2),
            "max_ms": round(max(self.latencies, default=0) * 1000, 1),
            "by_request_ms": {
                kind: {
                    "n": len(v),
                    "p50": round(sorted(v)[len(v) // 2] * 1000, 1),
                    "p99": round(sorted(v)[min(len(v) - 1, int(0.99 * len(v)))] * 1000, 1),
                    "max": round(max(v) * 1000, 1),
                }
                for kind, v in sorted(self.by_kind.items())
            },
            "wrong_replies": len(self.wrong_replies),
            "lost_replies": self.lost_replies,
            "rss_mib": {
                "start": self.at_start.get("rss_kb", 0) // 1024,
                "after_warmup": warm // 1024,
                "max_after_warmup": max(steady, default=0) // 1024,
                "end": self.at_end.get("rss_kb", 0) // 1024,
                "peak": max(later, default=0) // 1024,
            },
            "rss_growth_after_warmup": round(growth, 4),
            "threads": [self.at_start.get("threads"), self.after_warmup.get("threads"), self.at_end.get("threads")],
            "fds": [self.at_start.get("fds"), self.after_warmup.get("fds"), self.at_end.get("fds")],
            "idle_db_connections_at_end": self.idle_connections_after,
            "sessions_after_clients_left": self.sessions_after,
            "busy_after_clients_left": self.busy_after,
            "drained_in_s": round(self.drained_in_s, 2),
        }


class Client:
    """One simulated agent: plays episodes on one connection, reconnecting after vanishing."""

    def __init__(self, url: str, questions: list[Any], rng: random.Random, report: Report,
                 *, vanish_rate: float, slow_rate: float, right_rate: float) -> None:  # fmt: skip
        self.url = url
        self.questions = questions
        self.rng = rng
        self.report = report
        self.vanish_rate = vanish_rate
        self.slow_rate = slow_rate
        self.right_rate = right_rate
        self.ws: ClientConnection | None = None

    async def ask(self, message: dict[str, Any], kind: str = "") -> dict[str, Any]:
        assert self.ws is not None
        start = time.monotonic()
        await self.ws.send(json.dumps(message))
        try:  # asyncio.timeout: 3.11's wait_for can swallow a cancellation of the caller
            async with asyncio.timeout(30):
                raw = await self.ws.recv()
        except TimeoutError:
            self.report.lost_replies += 1
            raise
        took = time.monotonic() - start
        self.report.latencies.append(took)
        self.report.by_kind.setdefault(kind or str(message["type"]), []).append(took)
        self.report.requests += 1
        return dict(json.loads(raw))

    def vanish(self, where: str) -> None:
        assert self.ws is not None
        self.ws.transport.abort()  # no close frame: the client just disappears
        self.ws = None
        self.report.vanished[where] += 1

    def expect(self, ok: bool, what: str, frame: Any) -> None:
        if not ok:
            raise WrongReply(f"{what}: {str(frame)[:300]}")

    async def episode(self) -> None:
        from sqlenv_core.checker import format_answer

        if self.ws is None:
            self.ws = await connect(self.url, max_size=None, open_timeout=30)
        q = self.rng.choice(self.questions)
        roll = self.rng.random()
        frame = await self.ask({"type": "reset", "data": {"question_id": q.id}})
        obs = frame.get("data", {}).get("observation", {})
        self.expect(frame["type"] == "observation" and obs.get("question") == q.question
                    and obs.get("db_id") == q.db_id and frame["data"]["done"] is False, "reset", frame)
        if roll < self.vanish_rate / 3:
            self.vanish("after-reset")
            return
        table = self.rng.choice(obs["tables"])
        frame = await self.ask({"type": "step", "data": {"action_type": "DESCRIBE", "argument": table}}, "describe")
        obs = frame["data"]["observation"]
        self.expect(obs["error"] == "" and obs["result"].startswith(f"Table {table} ")
                    and obs["step_count"] == 1, "describe", frame)  # fmt: skip
        if roll < 2 * self.vanish_rate / 3:
            self.vanish("mid-episode")
            return
        if roll < self.vanish_rate:  # vanish while a slow query runs in a worker thread
            assert self.ws is not None
            step = {"action_type": "QUERY", "argument": SLOW_SQL}
            await self.ws.send(json.dumps({"type": "step", "data": step}))
            await asyncio.sleep(self.rng.uniform(0.05, 0.3))
            self.vanish("mid-query")
            return
        steps = 1
        if self.rng.random() < self.slow_rate:  # a query that runs to its deadline
            frame = await self.ask({"type": "step", "data": {"action_type": "QUERY", "argument": SLOW_SQL}}, "slow query")
            self.expect("deadline" in frame["data"]["observation"]["error"], "slow query", frame)
            steps += 1
        frame = await self.ask({"type": "step", "data": {"action_type": "QUERY", "argument": q.gold_sql}}, "gold query")
        obs = frame["data"]["observation"]
        steps += 1
        rows = (obs.get("table") or {}).get("rows")
        same = rows is not None and sorted(map(json.dumps, rows)) == sorted(map(json.dumps, q.gold_rows))
        self.expect(obs["error"] == "" and obs["table"]["total_rows"] == len(q.gold_rows) and same
                    and obs["step_count"] == steps, "gold query", frame)  # fmt: skip
        right = self.rng.random() < self.right_rate
        answer = format_answer(q.gold_rows) if right else WRONG
        frame = await self.ask({"type": "step", "data": {"action_type": "ANSWER", "argument": answer}}, "answer")
        data = frame["data"]
        if right:
            self.expect(data["done"] is True and data["reward"] == 1.0, "right answer", frame)
            self.report.right_answers += 1
        else:
            self.expect(data["done"] is True and data["reward"] == 0.0, "wrong answer", frame)
            self.report.wrong_answers += 1
        if self.rng.random() < 0.2:
            frame = await self.ask({"type": "state"})
            state = frame["data"]
            self.expect(state["question_id"] == q.id and state["step_count"] == steps + 1
                        and state["correct"] is right, "state", frame)
        self.report.episodes += 1

    async def run(self, until: float) -> None:
        while time.monotonic() < until:
            try:
                await self.episode()
            except WrongReply as exc:
                self.report.wrong_replies.append(str(exc))
                await self.close()
            except TimeoutError:
                await self.close()
        await self.close()

    async def close(self) -> None:
        if self.ws is not None:
            ws, self.ws = self.ws, None
            try:
                await asyncio.wait_for(ws.close(), 10)
            except Exception:
                ws.transport.abort()


async def _monitor(pid: int, stats: Any, report: Report, stop: asyncio.Event, warm_at: float,
                   interval: float) -> None:  # fmt: skip
    from support import proc_stats

    start = time.monotonic()
    while not stop.is_set():
        sample = proc_stats(pid)
        now = time.monotonic()
        sample["t"] = round(now - start, 1)
        sample["warm"] = now >= warm_at
        sample["requests"] = report.requests
        try:  # on a saturated machine /stats can wait behind 256 sessions' messages
            sample["active_sessions"] = (await asyncio.to_thread(stats))["active_sessions"]
        except OSError:
            sample["active_sessions"] = None
        report.samples.append(sample)
        if sample["warm"] and not report.after_warmup:
            report.after_warmup = {k: sample[k] for k in ("rss_kb", "threads", "fds")}
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


async def soak(url: str, questions: list[Any], *, pid: int, stats: Any, sessions: int,
               duration: float, seed: int = 0, vanish_rate: float = 0.06, slow_rate: float = 0.02,
               right_rate: float = 0.8, warmup: float | None = None) -> Report:  # fmt: skip
    """Run the soak; ``stats()`` returns the server's ``GET /stats``."""
    from support import proc_stats

    report = Report(sessions=sessions)
    report.at_start = proc_stats(pid)
    rng = random.Random(seed)
    start = time.monotonic()
    until = start + duration
    warm = warmup if warmup is not None else min(30.0, duration / 4)
    stop = asyncio.Event()
    monitor = asyncio.create_task(_monitor(pid, stats, report, stop, start + warm, max(0.5, duration / 60)))
    clients = [
        Client(url, questions, random.Random(rng.random()), report,
               vanish_rate=vanish_rate, slow_rate=slow_rate, right_rate=right_rate)
        for _ in range(sessions)
    ]
    await asyncio.gather(*(c.run(until) for c in clients))
    report.duration_s = time.monotonic() - start
    stop.set()
    await monitor
    drained = time.monotonic()
    while True:  # every client has left: the sessions must all be gone, the threads idle
        current = await asyncio.to_thread(stats)
        if current["active_sessions"] == 0 and current["busy_sessions"] == 0:
            break
        if time.monotonic() - drained > 10:
            break
        await asyncio.sleep(0.05)
    report.drained_in_s = time.monotonic() - drained
    report.sessions_after = current["active_sessions"]
    report.busy_after = current["busy_sessions"]
    await asyncio.sleep(0.5)
    report.at_end = proc_stats(pid)
    report.idle_connections_after = (await asyncio.to_thread(stats))["idle_connections"]
    return report


def main() -> None:  # pragma: no cover - the full run for docs/reliability.md
    import argparse
    import os
    import sys
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from support import DATA, Server, fast_questions

    parser = argparse.ArgumentParser(description="Soak a real sqlenv-server over WebSockets.")
    parser.add_argument("--sessions", type=int, default=256)
    parser.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--query-timeout", default="1")
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--warmup", type=float, help="seconds (default: a quarter, at most 30)")
    parser.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                        help="environment of the server process, e.g. MALLOC_ARENA_MAX=2")
    args = parser.parse_args()
    questions = fast_questions(DATA, None)
    flags = ("--max-sessions", str(2 * args.sessions), "--query-timeout", args.query_timeout)
    load = os.getloadavg()
    env = dict(item.split("=", 1) for item in args.server_env)
    with tempfile.TemporaryDirectory() as tmp, Server(DATA, Path(tmp) / "server.log", *flags, env=env) as server:
        report = asyncio.run(
            soak(server.ws_url, questions, pid=server.pid, stats=server.stats,
                 sessions=args.sessions, duration=args.duration, seed=args.seed,
                 warmup=args.warmup)
        )
        tracebacks = server.log().count("Traceback")
    summary = report.summary()
    summary["questions"] = len(questions)
    summary["load_average_before"] = [round(x, 2) for x in load]
    summary["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    summary["cpus"] = os.cpu_count()
    summary["server_tracebacks"] = tracebacks
    summary["server_env"] = env
    summary["rss_mib_over_time"] = [(s["t"], s["rss_kb"] // 1024) for s in report.samples]
    print(json.dumps(summary, indent=1))
    for line in report.wrong_replies[:10]:
        print("WRONG:", line)
    if args.json:
        args.json.write_text(json.dumps({**summary, "samples": report.samples}, indent=1))


if __name__ == "__main__":  # pragma: no cover
    main()
