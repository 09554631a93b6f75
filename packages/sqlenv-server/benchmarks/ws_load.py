"""A quick WebSocket load test: N sessions sending back-to-back cheap QUERY steps.

Starts the server as a subprocess (unless ``--url`` is given), opens N sessions from
one asyncio client process (the ``websockets`` library, compression offered as
OpenEnv's client does), and has each play episodes of the eval split: reset on a
question with a cheap gold query, then QUERY that gold SQL until the episode's
budget runs out, then reset again. It prints steps/s, step latency p50/p99, the
server's CPU time per step (from /proc) and its memory per open session.

    uv run python packages/sqlenv-server/benchmarks/ws_load.py --sessions 1 16 64

This is the methodology of ``shared/docs/performance-anchors.md`` (OpenEnv: 1680
steps/s, p99 196 ms at 64 sessions); the machine is shared, so compare numbers only
within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cheap_questions(data_dir: Path, limit_us: float = 100.0, n: int = 64) -> list[dict[str, Any]]:
    """Eval questions whose gold SQL runs in under ``limit_us`` on raw SQLite."""
    found = []
    with (data_dir / "questions" / "eval.jsonl").open() as fh:
        for line in fh:
            q = json.loads(line)
            db = data_dir / "databases" / q["db_id"] / f"{q['db_id']}.sqlite"
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            conn.execute(q["gold_sql"]).fetchall()
            started = time.perf_counter()
            conn.execute(q["gold_sql"]).fetchall()
            took = (time.perf_counter() - started) * 1e6
            conn.close()
            if took < limit_us and len(q["gold_rows"]) <= 20:
                found.append(q)
            if len(found) >= n:
                break
    return found


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def session(
    url: str, question: dict[str, Any], stop: asyncio.Event, latencies: list[float],
    ready: asyncio.Barrier, budget: int, compression: str | None,
) -> None:  # fmt: skip
    reset = json.dumps({"type": "reset", "data": {"question_id": question["id"], "budget": budget}})
    step = json.dumps(
        {"type": "step", "data": {"action_type": "QUERY", "argument": question["gold_sql"]}}
    )
    async with connect(url, compression=compression, max_size=None) as ws:
        await ws.send(reset)
        await ws.recv()
        await ready.wait()
        while not stop.is_set():
            started = time.perf_counter()
            await ws.send(step)
            frame = json.loads(await ws.recv())
            latencies.append(time.perf_counter() - started)
            if frame["type"] != "observation":
                raise RuntimeError(frame)
            if frame["data"]["done"]:
                await ws.send(reset)
                await ws.recv()


async def measure(
    url: str, pid: int | None, questions: list[dict[str, Any]], n: int, seconds: float,
    budget: int, compression: str | None,
) -> dict[str, Any]:  # fmt: skip
    stop = asyncio.Event()
    latencies: list[float] = []
    ready = asyncio.Barrier(n + 1)
    rss_before = rss_kib(pid) if pid else 0
    tasks = [
        asyncio.create_task(
            session(url, questions[i % len(questions)], stop, latencies, ready, budget, compression)
        )
        for i in range(n)
    ]
    await ready.wait()
    rss_open = rss_kib(pid) if pid else 0
    await asyncio.sleep(min(1.0, seconds / 4))  # warm up
    latencies.clear()
    cpu0 = cpu_seconds(pid) if pid else 0.0
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - t0
    cpu1 = cpu_seconds(pid) if pid else 0.0
    count = len(latencies)
    done = sorted(latencies[:count])
    stop.set()
    await asyncio.gather(*tasks)
    return {
        "sessions": n,
        "steps_per_s": round(count / elapsed),
        "p50_ms": round(statistics.median(done) * 1000, 2),
        "p99_ms": round(done[min(len(done) - 1, int(len(done) * 0.99))] * 1000, 2),
        "server_cpu_us_per_step": round((cpu1 - cpu0) / count * 1e6) if pid else None,
        "rss_kib_per_open_session": round((rss_open - rss_before) / n) if pid else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--budget", type=int, default=15, help="steps per episode")
    parser.add_argument("--url", help="a running server (default: start one)")
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--no-compression", action="store_true", help="client offers none")
    parser.add_argument("server_args", nargs="*", help="extra flags for the server (after --)")
    args = parser.parse_args()

    questions = cheap_questions(args.data_dir)
    proc = None
    pid = None
    url = args.url
    if url is None:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "sqlenv_server", "--port", str(port), "--log-level", "warning",
             "--data-dir", str(args.data_dir), "--max-sessions", "1024", *args.server_args],
        )  # fmt: skip
        pid = proc.pid
        base = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.01)
        print(f"server healthy after {time.monotonic() - started:.2f} s", file=sys.stderr)
        url = f"ws://127.0.0.1:{port}/ws"
    compression = None if args.no_compression else "deflate"
    try:
        for n in args.sessions:
            result = asyncio.run(
                measure(url, pid, questions, n, args.seconds, args.budget, compression)
            )
            print(json.dumps(result), flush=True)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
