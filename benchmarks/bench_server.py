"""Server benchmark: sqlenv-server against the same engine under OpenEnv's stock ``create_app``.

Run (the OpenEnv side needs the ``openenv`` package, in the server's ``compat`` group)::

    uv run --isolated --package sqlenv-server --group compat python benchmarks/bench_server.py
    ... --quick                      # about 2 minutes instead of about 7
    ... --json server.json           # every raw measurement too
    ... --out benchmarks/results/server.json   # the summary the docs quote, with the
                                               # command and the machine (machine.py)
    uv run python benchmarks/bench_server.py --no-openenv   # ours alone, no openenv needed

Both servers run as subprocesses on 127.0.0.1 (ours: ``python -m sqlenv_server``; the
peer: ``benchmarks/openenv_app.py``). Every measurement drives them from a load
generator **in its own process** (this file with ``--worker``): an asyncio client on the
``websockets`` library that offers permessage-deflate, as OpenEnv's ``EnvClient`` does
(``--no-compression`` offers none). Each session resets to an eval question whose gold
SQL is cheap, then sends that SQL as back-to-back QUERY steps, resetting again when the
episode's budget (15) runs out; only QUERY steps are counted and timed.

Measured, ours and OpenEnv's interleaved (A, B, B, A, ...) so that machine drift hits both:

* start to healthy: process spawn to the first 200 from ``GET /health`` (median of a few);
* memory per open session: on a fresh server, after a short warm-up, (RSS with N sessions
  open and reset, idle - RSS with none) / N;
* for 1, 16, 64 and 256 sessions: steps/s, step latency p50/p99 (client side), server
  CPU per step (``utime + stime`` of the server process from ``/proc`` over the measured
  window, divided by the steps in it), and the load generator's own CPU per step;
* the slow-query test: the p99 of 64 cheap sessions with and without one extra session
  that runs a recursive CTE calibrated to about 1.5 s (the query deadline is 2 s) again
  and again; and, as a cross-check that machine drift cannot fake, one run where the
  slow session pauses 2 s between queries, comparing the p99 of the cheap steps that
  overlapped a slow query with that of the steps in between.

The machine is shared: the load average and the CPU time that other processes took
during each window are recorded next to every number. Prefer server CPU per step as
the portable figure, and compare ours with OpenEnv's only within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import platform
import shlex
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import machine  # benchmarks/machine.py: this script's folder is on sys.path

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
OURS, PEER = "sqlenv-server", "openenv"

ANCHORS = {  # ../shared/docs/performance-anchors.md, OpenEnv 0.10 on this kind of machine
    "steps_per_s_64": 1680,
    "p99_ms_64": 196,
    "cpu_us_per_step_64": 638,
    "kib_per_session": 223,
    "healthy_s": 4.2,
}


# ------------------------------------------------------------------ /proc helpers
def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def machine_busy_s() -> float:
    """CPU seconds spent not idle by the whole machine, all cores (nice time included)."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / CLK_TCK


def loadavg() -> float:
    with open("/proc/loadavg") as fh:
        return float(fh.read().split()[0])


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[index]


# ------------------------------------------------------------------ the load generator
async def _open(url: str, compression: str | None) -> Any:
    from websockets.asyncio.client import connect

    return await connect(url, compression=compression, max_size=None, open_timeout=60)


async def _call(ws: Any, message: str) -> dict[str, Any]:
    await ws.send(message)
    frame = json.loads(await ws.recv())
    if frame.get("type") != "observation":
        raise RuntimeError(f"unexpected frame: {str(frame)[:300]}")
    return frame["data"]


def _reset_msg(question_id: str, budget: int) -> str:
    return json.dumps({"type": "reset", "data": {"question_id": question_id, "budget": budget}})


def _query_msg(sql: str) -> str:
    return json.dumps({"type": "step", "data": {"action_type": "QUERY", "argument": sql}})


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    """N cheap sessions (and optionally one slow one) for warm-up + a measured window."""
    url, pid, n = spec["url"], spec["pid"], spec["sessions"]
    questions, budget = spec["questions"], spec["budget"]
    compression = spec["compression"]
    stop = asyncio.Event()
    measuring = False
    latencies: list[float] = []
    # with a slow session pausing between its queries: steps that overlapped one, or not
    overlapped: list[float] = []
    clear: list[float] = []
    slow_state = {"busy": False, "epoch": 0}
    slow_gap = spec.get("slow_gap_s", 0.0)
    slow_latencies: list[float] = []
    slow_errors: list[str] = []
    extensions: set[str] = set()
    ready = asyncio.Barrier(n + 1 + (1 if spec.get("slow_sql") else 0))

    async def cheap(i: int) -> None:
        q = questions[i % len(questions)]
        reset, step = _reset_msg(q["id"], budget), _query_msg(q["sql"])
        async with await _open(url, compression) as ws:
            extensions.add(ws.response.headers.get("Sec-WebSocket-Extensions") or "none")
            await _call(ws, reset)
            await ready.wait()
            while not stop.is_set():
                busy, epoch = slow_state["busy"], slow_state["epoch"]
                started = time.perf_counter()
                data = await _call(ws, step)
                if measuring:
                    took = time.perf_counter() - started
                    latencies.append(took)
                    if slow_gap:
                        hit = busy or epoch != slow_state["epoch"]
                        (overlapped if hit else clear).append(took)
                if data["observation"].get("error"):
                    raise RuntimeError(f"cheap query failed: {data['observation']['error']}")
                if data["done"]:
                    await _call(ws, reset)

    async def slow() -> None:
        q = questions[0]
        reset, step = _reset_msg(q["id"], 10_000), _query_msg(spec["slow_sql"])
        async with await _open(url, compression) as ws:
            await _call(ws, reset)
            await ready.wait()
            while not stop.is_set():
                slow_state["busy"] = True
                slow_state["epoch"] += 1
                started = time.perf_counter()
                data = await _call(ws, step)
                if measuring:
                    slow_latencies.append(time.perf_counter() - started)
                    slow_errors.append(data["observation"].get("error", "")[:80])
                slow_state["busy"] = False
                slow_state["epoch"] += 1
                if data["done"]:
                    await _call(ws, reset)
                if slow_gap:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), slow_gap)

    tasks = [asyncio.create_task(cheap(i)) for i in range(n)]
    if spec.get("slow_sql"):
        tasks.append(asyncio.create_task(slow()))
    waiter = asyncio.create_task(ready.wait())
    done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    if waiter not in done:  # a session failed before the start
        for task in done:
            task.result()
    await asyncio.sleep(spec["warmup_s"])

    measuring = True
    load0, busy0, own0 = loadavg(), machine_busy_s(), sum(os.times()[:2])
    cpu0 = cpu_seconds(pid)
    t0 = time.perf_counter()
    await asyncio.sleep(spec["seconds"])
    measuring = False
    elapsed = time.perf_counter() - t0
    cpu1 = cpu_seconds(pid)
    busy1, own1 = machine_busy_s(), sum(os.times()[:2])
    count = len(latencies)
    stop.set()
    finished, pending = await asyncio.wait(tasks, timeout=10)
    for task in pending:
        task.cancel()
    for task in finished:
        if task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    lat = sorted(latencies)
    overlapped.sort()
    clear.sort()
    server_cpu = cpu1 - cpu0
    client_cpu = own1 - own0
    return {
        "sessions": n,
        "slow": bool(spec.get("slow_sql")),
        "seconds": round(elapsed, 3),
        "steps": count,
        "steps_per_s": count / elapsed,
        "p50_ms": percentile(lat, 0.50) * 1e3,
        "p90_ms": percentile(lat, 0.90) * 1e3,
        "p99_ms": percentile(lat, 0.99) * 1e3,
        "max_ms": lat[-1] * 1e3 if lat else float("nan"),
        "server_cpu_us_per_step": server_cpu / count * 1e6 if count else float("nan"),
        "server_cores": server_cpu / elapsed,
        "client_cpu_us_per_step": client_cpu / count * 1e6 if count else float("nan"),
        "other_cores": max(0.0, (busy1 - busy0) - server_cpu - client_cpu) / elapsed,
        "loadavg": round(load0, 2),
        "extensions": sorted(extensions),
        "slow_gap_s": slow_gap,
        "steps_overlapping_slow": len(overlapped),
        "p99_overlapping_slow_ms": percentile(overlapped, 0.99) * 1e3,
        "steps_clear_of_slow": len(clear),
        "p99_clear_of_slow_ms": percentile(clear, 0.99) * 1e3,
        "slow_steps_s": [round(x, 3) for x in slow_latencies],
        "slow_errors": slow_errors,
    }


async def _memory(spec: dict[str, Any]) -> dict[str, Any]:
    """RSS per open (reset, idle) session on a fresh server, after a short warm-up."""
    url, pid, n, questions = spec["url"], spec["pid"], spec["sessions"], spec["questions"]
    compression = spec["compression"]
    for q in questions[:4]:  # warm-up: first connection, first reset and steps
        async with await _open(url, compression) as ws:
            await _call(ws, _reset_msg(q["id"], 15))
            for _ in range(3):
                await _call(ws, _query_msg(q["sql"]))
    await asyncio.sleep(1.0)
    rss0 = rss_kib(pid)
    sockets = []
    try:
        for i in range(n):  # one at a time: no burst of threads or buffers
            ws = await _open(url, compression)
            sockets.append(ws)
            q = questions[i % len(questions)]
            await _call(ws, _reset_msg(q["id"], 15))
        await asyncio.sleep(1.5)
        rss1 = rss_kib(pid)
    finally:
        for ws in sockets:
            with contextlib.suppress(Exception):
                await ws.close()
    await asyncio.sleep(2.0)
    rss2 = rss_kib(pid)
    return {
        "sessions": n,
        "rss_idle_kib": rss0,
        "rss_open_kib": rss1,
        "rss_after_close_kib": rss2,
        "kib_per_session": (rss1 - rss0) / n,
    }


async def _probe(spec: dict[str, Any]) -> dict[str, Any]:
    """One session alone sending one query a few times: its latency and outcome."""
    q = spec["questions"][0]
    times, errors = [], []
    async with await _open(spec["url"], spec["compression"]) as ws:
        await _call(ws, _reset_msg(q["id"], 1000))
        for _ in range(spec["repeat"]):
            started = time.perf_counter()
            data = await _call(ws, _query_msg(spec["sql"]))
            times.append(time.perf_counter() - started)
            errors.append(data["observation"].get("error", "")[:80])
    return {"seconds": times, "errors": errors}


def worker_main() -> int:
    """``--worker``: read a spec from stdin, print one JSON result line."""
    spec = json.load(sys.stdin)
    job = {"load": _load, "memory": _memory, "probe": _probe}[spec["job"]]
    print(json.dumps(asyncio.run(job(spec))), flush=True)
    return 0


def run_worker(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one load-generator job in its own process."""
    proc = subprocess.run(
        [sys.executable, __file__, "--worker"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ servers
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    healthy_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def server_command(
    name: str, port: int, data_dir: Path, max_sessions: int, extra: dict[str, list[str]]
) -> list[str]:
    common = ["--port", str(port), "--data-dir", str(data_dir)]
    common += ["--max-sessions", str(max_sessions), "--log-level", "warning", *extra[name]]
    if name == OURS:
        return [sys.executable, "-m", "sqlenv_server", *common]
    return [sys.executable, str(ROOT / "benchmarks" / "openenv_app.py"), *common]


# Python's normal bytecode cache for both servers: with PYTHONDONTWRITEBYTECODE set (as
# on this project's machines) no start ever writes .pyc files, so every start would
# recompile every module it imports, which no installed server does (pip and the
# Docker image compile them once). The first, uncounted start of each fills the cache.
SERVER_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def start_server(
    name: str, data_dir: Path, max_sessions: int, extra: dict[str, list[str]], timeout: float = 60
) -> Server:
    """Spawn a server and wait for the first 200 on /health; the wait is start-to-healthy."""
    port = free_port()
    cmd = server_command(name, port, data_dir, max_sessions, extra)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, env=SERVER_ENV)
    deadline = started + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}: {' '.join(cmd)}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                break
        except OSError:
            pass
        finally:
            conn.close()
        if time.perf_counter() > deadline:
            proc.kill()
            raise RuntimeError(f"{name} not healthy after {timeout} s")
        time.sleep(0.005)
    return Server(name, proc, port, time.perf_counter() - started)


# ------------------------------------------------------------------ workload
def cheap_questions(data_dir: Path, limit_us: float = 100.0, n: int = 64) -> list[dict[str, str]]:
    """Eval questions whose gold SQL runs in under ``limit_us`` on raw SQLite (<= 20 rows)."""
    found = []
    with (data_dir / "questions" / "eval.jsonl").open() as fh:
        for line in fh:
            q = json.loads(line)
            db = data_dir / "databases" / q["db_id"] / f"{q['db_id']}.sqlite"
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                conn.execute(q["gold_sql"]).fetchall()
                started = time.perf_counter()
                conn.execute(q["gold_sql"]).fetchall()
                took = (time.perf_counter() - started) * 1e6
            finally:
                conn.close()
            if took < limit_us and len(q["gold_rows"]) <= 20:
                found.append({"id": q["id"], "sql": q["gold_sql"]})
            if len(found) >= n:
                break
    return found


SLOW_SQL = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) "
    "SELECT count(*) FROM c"
)


def calibrate_slow_sql(data_dir: Path, question_id: str, target_s: float) -> tuple[str, float]:
    """A recursive CTE sized to take about ``target_s`` through the engine, in process."""
    from sqlenv_core.config import EnvConfig, SandboxConfig
    from sqlenv_core.dataset import load_dataset
    from sqlenv_core.env import SQLEnvironment
    from sqlenv_core.schemas import SQLAction

    env = SQLEnvironment(
        load_dataset(data_dir),
        EnvConfig(sandbox=SandboxConfig(timeout_s=10.0, progress_interval=20_000)),
    )
    env.reset(question_id=question_id, budget=1000)

    def run(n: int) -> float:
        started = time.perf_counter()
        obs = env.step(SQLAction(action_type="QUERY", argument=SLOW_SQL.format(n=n)))
        if obs.error:
            raise RuntimeError(f"slow query failed: {obs.error}")
        return time.perf_counter() - started

    n = 1_000_000
    took = min(run(n) for _ in range(5))  # the least disturbed of a few short runs
    n = int(n * target_s / took)
    took = run(n)
    env.close()
    return SLOW_SQL.format(n=n), took


# ------------------------------------------------------------------ the run
def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for pkg in ("uvicorn", "websockets", "fastapi", "pydantic", "uvloop", "httptools", "openenv"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "-"
    out["cores"] = str(os.cpu_count())
    git = ["git", "-C", str(ROOT)]
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out["commit"] = subprocess.check_output([*git, "rev-parse", "--short", "HEAD"], text=True)
        out["commit"] = out["commit"].strip()
        dirty = subprocess.check_output(
            [*git, "status", "--porcelain", "--", "packages"], text=True
        )
        out["packages_dirty"] = str(bool(dirty.strip()))
    return out


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="shorter windows, one repeat")
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--seconds", type=float, help="measured window per point (8; quick 4)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before each window")
    parser.add_argument("--repeats", type=int, help="repeats of each point (2; quick 1)")
    parser.add_argument("--slow-repeats", type=int, help="repeats of the slow test (3; quick 1)")
    parser.add_argument("--memory-sessions", type=int, default=256)
    parser.add_argument("--slow-target", type=float, default=1.5, help="slow query, seconds")
    parser.add_argument("--budget", type=int, default=15, help="steps per episode")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--max-sessions", type=int, default=300)
    parser.add_argument("--no-openenv", action="store_true", help="measure ours alone")
    parser.add_argument("--no-compression", action="store_true", help="client offers none")
    parser.add_argument("--json", type=Path, help="write every measurement here")
    parser.add_argument(
        "--out",
        type=Path,
        help="also write the summary, command and machine here "
        "(benchmarks/results/server.json is what the docs quote)",
    )
    parser.add_argument(
        "--server-args",
        default="",
        help="extra flags for sqlenv-server, e.g. '--inline-budget-ms 0' (a thread per query)",
    )
    parser.add_argument(
        "--openenv-args",
        default="",
        help="extra flags for benchmarks/openenv_app.py: '--plain' (asyncio and h11, as a bare "
        "openenv install), '--shared-pool'",
    )
    args = parser.parse_args()
    if args.worker:
        return worker_main()
    before = machine.describe()

    seconds = args.seconds or (4.0 if args.quick else 8.0)
    repeats = args.repeats or (1 if args.quick else 2)
    slow_repeats = args.slow_repeats or (1 if args.quick else 3)
    starts = 1 if args.quick else 3
    names = [OURS] if args.no_openenv else [OURS, PEER]
    compression = None if args.no_compression else "deflate"
    extra = {OURS: shlex.split(args.server_args), PEER: shlex.split(args.openenv_args)}
    began = time.monotonic()

    def log(text: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s load {loadavg():.2f}] {text}", file=sys.stderr)

    info = versions()
    log(f"machine: {info}")
    questions = cheap_questions(args.data_dir)
    log(f"{len(questions)} cheap questions")
    slow_sql, slow_in_process = calibrate_slow_sql(
        args.data_dir, questions[0]["id"], args.slow_target
    )
    log(f"slow query: {slow_in_process:.2f} s in process: {slow_sql}")
    result: dict[str, Any] = {
        "versions": info,
        "settings": {
            "seconds": seconds,
            "warmup_s": args.warmup,
            "repeats": repeats,
            "slow_repeats": slow_repeats,
            "budget": args.budget,
            "client_compression": compression or "none",
            "server_args": extra,
            "slow_sql": slow_sql,
            "slow_in_process_s": slow_in_process,
        },
        "healthy_s": {n: [] for n in names},
    }

    servers: dict[str, Server] = {}
    try:
        # A first start, not counted: in a fresh environment (uv run --isolated) it also
        # compiles every module's bytecode, which an installed image has done already.
        for name in names:
            server = start_server(name, args.data_dir, args.max_sessions, extra)
            log(f"{name} first start (compiles bytecode; not counted): {server.healthy_s:.2f} s")
            server.stop()
        # start to healthy, interleaved; the last start of each stays up for the rest
        for i in range(starts):
            for name in names if i % 2 == 0 else names[::-1]:
                server = start_server(name, args.data_dir, args.max_sessions, extra)
                result["healthy_s"][name].append(server.healthy_s)
                log(f"{name} healthy after {server.healthy_s:.2f} s")
                if i < starts - 1:
                    server.stop()
                else:
                    servers[name] = server

        def spec(server: Server, job: str, **kw: Any) -> dict[str, Any]:
            base = {"job": job, "url": server.url, "pid": server.pid, "questions": questions}
            base.update(compression=compression, budget=args.budget)
            base.update(kw)
            return base

        # memory per open session, on the fresh servers
        result["memory"] = {}
        for name in names:
            mem = run_worker(spec(servers[name], "memory", sessions=args.memory_sessions), 300)
            result["memory"][name] = mem
            log(f"{name} memory: {mem}")

        # the slow query alone on each server (confirms its timing)
        result["slow_alone"] = {}
        for name in names:
            probe = run_worker(spec(servers[name], "probe", sql=slow_sql, repeat=2), 60)
            result["slow_alone"][name] = probe
            log(f"{name} slow query alone: {probe}")

        timeout = args.warmup + seconds + 90
        result["load"] = {name: {} for name in names}
        for n in args.sessions:
            for r in range(repeats):
                for name in names if r % 2 == 0 else names[::-1]:
                    point = spec(servers[name], "load", sessions=n)
                    point.update(warmup_s=args.warmup, seconds=seconds)
                    out = run_worker(point, timeout)
                    result["load"][name].setdefault(str(n), []).append(out)
                    log(
                        f"{name:13s} n={n:3d}: {out['steps_per_s']:7.0f} steps/s  "
                        f"p50 {out['p50_ms']:6.2f} ms  p99 {out['p99_ms']:7.2f} ms  "
                        f"server {out['server_cpu_us_per_step']:4.0f} µs/step  "
                        f"client {out['client_cpu_us_per_step']:4.0f} µs/step  "
                        f"others {out['other_cores']:.2f} cores  {out['extensions']}"
                    )

        # The slow-query test: 64 cheap sessions without and with one more session that
        # sends the slow query back to back; then, as a cross-check immune to drift, the
        # slow session pausing 2 s between queries, comparing the cheap steps that
        # overlapped a slow query with those that did not, in the same seconds.
        kinds = ("without", "with", "alternating")
        result["slow_test"] = {name: {kind: [] for kind in kinds} for name in names}
        for r in range(slow_repeats):
            for kind in kinds:
                for name in names if r % 2 == 0 else names[::-1]:
                    point = spec(servers[name], "load", sessions=64)
                    point.update(warmup_s=args.warmup + 1.0, seconds=seconds)
                    if kind != "without":
                        point["slow_sql"] = slow_sql
                    if kind == "alternating":
                        point["slow_gap_s"] = 2.0
                    out = run_worker(point, timeout)
                    result["slow_test"][name][kind].append(out)
                    paired = (
                        f"p99 overlapping {out['p99_overlapping_slow_ms']:.2f} / clear "
                        f"{out['p99_clear_of_slow_ms']:.2f} ms  "
                        if kind == "alternating"
                        else ""
                    )
                    log(
                        f"{name:13s} 64 {kind:11s} slow: {out['steps_per_s']:7.0f} steps/s  "
                        f"p99 {out['p99_ms']:7.2f} ms  {paired}slow steps {out['slow_steps_s']} "
                        f"{set(out['slow_errors']) - {''} or ''}"
                    )
            time.sleep(2.5)  # let a query cut off at the window's end finish
    finally:
        for server in servers.values():
            server.stop()

    result["summary"] = summarize(result, names, args.sessions)
    result["goals"] = [
        {"goal": g, "measured": m, "pass": ok} for g, m, ok in goals(result["summary"], names)
    ]
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
        log(f"wrote {args.json}")
    if args.out:
        machine.record(
            args.out, "server", results_file(result, names, args.sessions), before, RUNNER
        )
        log(f"wrote {args.out}")
    report(result, names, args.sessions)
    log("done")
    return 0


# ------------------------------------------------------------------ summary and report
def summarize(result: dict[str, Any], names: list[str], sessions: list[int]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name in names:
        s: dict[str, Any] = {
            "healthy_s": statistics.median(result["healthy_s"][name]),
            "kib_per_session": result["memory"][name]["kib_per_session"],
            "rss_idle_mib": result["memory"][name]["rss_idle_kib"] / 1024,
            "slow_alone_s": statistics.median(result["slow_alone"][name]["seconds"]),
        }
        for n in sessions:
            runs = result["load"][name][str(n)]
            for key in ("steps_per_s", "p50_ms", "p99_ms", "server_cpu_us_per_step",
                        "client_cpu_us_per_step", "other_cores", "loadavg"):  # fmt: skip
                s[f"{key}@{n}"] = median_of(runs, key)
        test = result["slow_test"][name]
        s["p99_without_slow_ms"] = median_of(test["without"], "p99_ms")
        s["p99_with_slow_ms"] = median_of(test["with"], "p99_ms")
        s["steps_per_s_without_slow"] = median_of(test["without"], "steps_per_s")
        s["steps_per_s_with_slow"] = median_of(test["with"], "steps_per_s")
        s["added_p99_ms"] = s["p99_with_slow_ms"] - s["p99_without_slow_ms"]
        s["paired_added_p99_ms"] = statistics.median(
            run["p99_overlapping_slow_ms"] - run["p99_clear_of_slow_ms"]
            for run in test["alternating"]
        )
        slow_steps = [x for run in test["with"] for x in run["slow_steps_s"]]
        s["slow_steps_median_s"] = statistics.median(slow_steps) if slow_steps else float("nan")
        s["slow_steps_timed_out"] = sum(1 for run in test["with"] for e in run["slow_errors"] if e)
        s["slow_steps_count"] = len(slow_steps)
        summary[name] = s
    return summary


RUNNER = "uv run --isolated --package sqlenv-server --group compat python"
_PER_POINT = ("steps_per_s", "p50_ms", "p99_ms", "server_cpu_us_per_step",
              "client_cpu_us_per_step", "other_cores", "loadavg")  # fmt: skip
_PER_SERVER = ("healthy_s", "kib_per_session", "rss_idle_mib", "slow_alone_s",
               "p99_without_slow_ms", "p99_with_slow_ms", "added_p99_ms",
               "paired_added_p99_ms", "steps_per_s_with_slow", "slow_steps_timed_out")  # fmt: skip


def results_file(result: dict[str, Any], names: list[str], sessions: list[int]) -> dict[str, Any]:
    """The summary ``--out`` writes (benchmarks/results/server.json): per session count,
    each server's medians and ours over OpenEnv's throughput; per server, start, memory
    and the slow-query test; the goals as judged. Raw runs stay in ``--json``."""
    summary = result["summary"]
    points: dict[str, Any] = {}
    for n in sessions:
        point: dict[str, Any] = {
            name: {key: summary[name][f"{key}@{n}"] for key in _PER_POINT} for name in names
        }
        if PEER in names:
            point["throughput_ratio"] = (
                summary[OURS][f"steps_per_s@{n}"] / summary[PEER][f"steps_per_s@{n}"]
            )
        points[str(n)] = point
    return {
        "versions": result["versions"],
        "settings": result["settings"],
        "sessions": points,
        "servers": {name: {key: summary[name][key] for key in _PER_SERVER} for name in names},
        "goals": result["goals"],
    }


def _fmt(value: float, digits: int = 0) -> str:
    if value != value:  # NaN
        return "-"
    return f"{value:,.{digits}f}"


def goals(summary: dict[str, Any], names: list[str]) -> list[tuple[str, str, bool]]:
    ours = summary[OURS]
    peer = summary.get(PEER)
    out: list[tuple[str, str, bool]] = []
    if "steps_per_s@64" in ours:
        mine = ours["steps_per_s@64"]
        if peer is not None:
            ratio = mine / peer["steps_per_s@64"]
            measured = (
                f"{ratio:.2f}x ({_fmt(mine)} vs {_fmt(peer['steps_per_s@64'])} steps/s; "
                f"{mine / ANCHORS['steps_per_s_64']:.2f}x the anchor's 1680)"
            )
        else:
            ratio = mine / ANCHORS["steps_per_s_64"]
            measured = f"{_fmt(mine)} steps/s = {ratio:.2f}x the anchor's 1680 (no OpenEnv run)"
        out.append(("throughput at 64 sessions >= 3x OpenEnv's", measured, ratio >= 3.0))
        p99 = ours["p99_ms@64"]
        out.append(("p99 at 64 sessions < 20 ms", f"{p99:.1f} ms", p99 < 20))
        cpu = ours["server_cpu_us_per_step@64"]
        every = [v for k, v in ours.items() if k.startswith("server_cpu_us_per_step@")]
        out.append((
            "server CPU per QUERY step < 200 µs (64 sessions)",
            f"{cpu:.0f} µs (all session counts: {min(every):.0f}-{max(every):.0f} µs)",
            cpu < 200,
        ))  # fmt: skip
    kib = ours["kib_per_session"]
    out.append(("memory per open session < 150 KiB", f"{kib:.0f} KiB", kib < 150))
    healthy = ours["healthy_s"]
    out.append(("healthy within 1 s of start", f"{healthy:.2f} s", healthy < 1.0))
    added = ours["added_p99_ms"]
    out.append((
        "a 2-s query adds < 10 ms to the other sessions' p99 (64 sessions)",
        f"{added:+.1f} ms ({ours['p99_without_slow_ms']:.1f} -> {ours['p99_with_slow_ms']:.1f}; "
        f"same-run cross-check {ours['paired_added_p99_ms']:+.1f} ms)",
        added < 10,
    ))  # fmt: skip
    return out


def report(result: dict[str, Any], names: list[str], sessions: list[int]) -> None:
    summary = result["summary"]
    ours = summary[OURS]
    peer = summary.get(PEER)
    info = result["versions"]
    print()
    print(
        f"SQLEnv server benchmark — {info['cores']} cores, Python {info['python']}, "
        f"uvicorn {info['uvicorn']}, websockets {info['websockets']}, fastapi {info['fastapi']}, "
        f"openenv {info['openenv']}; client compression offered: "
        f"{result['settings']['client_compression']}"
    )
    rows: list[tuple[str, str, str, str]] = []  # metric, ours, peer, ratio

    def add(metric: str, a: float, b: float | None, digits: int, higher_better: bool) -> None:
        if b is None:
            rows.append((metric, _fmt(a, digits), "", ""))
            return
        ratio = a / b if higher_better else b / a
        rows.append((metric, _fmt(a, digits), _fmt(b, digits), f"{ratio:.2f}x"))

    for n in sessions:

        def g(key: str, n: int = n) -> float | None:
            return peer[f"{key}@{n}"] if peer else None

        add(f"steps/s @{n}", ours[f"steps_per_s@{n}"], g("steps_per_s"), 0, True)
        add(f"p50 ms @{n}", ours[f"p50_ms@{n}"], g("p50_ms"), 2, False)
        add(f"p99 ms @{n}", ours[f"p99_ms@{n}"], g("p99_ms"), 2, False)
        add(f"server CPU µs/step @{n}", ours[f"server_cpu_us_per_step@{n}"],
            g("server_cpu_us_per_step"), 0, False)  # fmt: skip
    p = peer or {}
    add("KiB per open session", ours["kib_per_session"], p.get("kib_per_session"), 0, False)
    add("idle RSS MiB", ours["rss_idle_mib"], p.get("rss_idle_mib"), 0, False)
    add("start to healthy s", ours["healthy_s"], p.get("healthy_s"), 2, False)
    add("slow query alone s", ours["slow_alone_s"], p.get("slow_alone_s"), 2, False)
    add("p99 ms @64 without slow", ours["p99_without_slow_ms"], p.get("p99_without_slow_ms"), 2,
        False)  # fmt: skip
    add("p99 ms @64 with slow", ours["p99_with_slow_ms"], p.get("p99_with_slow_ms"), 2, False)
    for label, key in (
        ("added p99 ms (slow query)", "added_p99_ms"),
        ("  same run, during vs between", "paired_added_p99_ms"),
    ):
        rows.append((label, f"{ours[key]:+.2f}", f"{peer[key]:+.2f}" if peer else "", ""))
    add("steps/s @64 with slow", ours["steps_per_s_with_slow"],
        p.get("steps_per_s_with_slow"), 0, True)  # fmt: skip

    width = max(len(r[0]) for r in rows)
    print(f"{'metric':{width}s} {'ours':>10s} {'OpenEnv':>10s} {'ratio':>8s}")
    for metric, a, b, ratio in rows:
        print(f"{metric:{width}s} {a:>10s} {b:>10s} {ratio:>8s}")
    loads = [ours[f"loadavg@{n}"] for n in sessions]
    others = [ours[f"other_cores@{n}"] for n in sessions]
    print(
        f"load average during the points {min(loads):.1f}-{max(loads):.1f}; other processes "
        f"took {min(others):.2f}-{max(others):.2f} cores during our windows; client CPU "
        + ", ".join(f"{ours[f'client_cpu_us_per_step@{n}']:.0f}" for n in sessions)
        + " µs/step (ours)"
    )
    print()
    for item in result["goals"]:
        print(f"{'PASS' if item['pass'] else 'MISS'}  {item['goal']}: {item['measured']}")


if __name__ == "__main__":
    sys.exit(main())
