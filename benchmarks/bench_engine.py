"""Engine benchmark: QUERY steps through SQLEnvironment vs raw sqlite3, reset latency, oracle time.

Run: ``uv run python benchmarks/bench_engine.py [--split eval] [--repeat 3]``

Both sides run the same gold queries of the split in the same process, interleaved
per round, so machine drift affects them alike. The raw side is the floor: a
read-only connection per database, ``execute`` + ``fetchall``, statement cache on.
The engine side is ``env.step(QUERY)`` in episodes of the default budget on the same
database: validation, sandbox, fetch bounds, reward and the observation model (reset
time is measured separately). Every engine step runs its SQL in SQLite; what differs
between the three engine rounds is what the engine's caches have seen:

* cold: nothing (the SQL-check cache and the reward/rendering memos are cleared):
  the first sight of every query, sqlglot parse included;
* new results: the SQL checks are cached but the memos are cleared: a query text seen
  before whose result is new to the engine (the per-step work in full);
* warm: everything cached, as when the G rollouts of a GRPO group or later epochs
  repeat a query (an RL loop repeats queries a lot).

The goal's baseline is that plain read-only connection. The engine's sandboxes open their
file ``immutable`` (no file locking or change check around each statement, which is
about 4 µs of SQLite's own time per query), so a second raw round opens the databases
the same way: the engine against it shows the engine's own overhead alone.

Two "floor" rounds show what any step of this design costs before the environment's
own logic (reward, rendering, history, checks): the pool lease plus the checked,
bounded execution, and that plus the typed observation of the result.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import time
from collections import defaultdict
from pathlib import Path

import machine  # benchmarks/machine.py: this script's folder is on sys.path
from sqlenv_core import env as env_module
from sqlenv_core import reward as reward_module
from sqlenv_core import sandbox as sandbox_module
from sqlenv_core.config import EnvConfig
from sqlenv_core.dataset import load_dataset
from sqlenv_core.env import SQLEnvironment
from sqlenv_core.evaluation import evaluate
from sqlenv_core.policies import OraclePolicy
from sqlenv_core.pool import SandboxPool
from sqlenv_core.schemas import (
    ActionType,
    ResultTable,
    RewardBreakdown,
    SQLAction,
    SQLObservation,
)


def raw_round(conns: dict[str, sqlite3.Connection], work: list[tuple[str, str]]) -> list[float]:
    times = []
    for db_id, sql in work:
        conn = conns[db_id]
        t = time.perf_counter()
        conn.execute(sql).fetchall()
        times.append(time.perf_counter() - t)
    return times


def engine_round(
    env: SQLEnvironment, work: list[tuple[str, str]], first_qid: dict[str, str]
) -> list[float]:
    """Time each QUERY step; episodes last the default budget, as in training."""
    times = []
    current = None
    left = 0
    for db_id, sql in work:
        if db_id != current or left == 0:
            obs = env.reset(question_id=first_qid[db_id])
            current, left = db_id, obs.budget_remaining - 1  # keep one step for ANSWER
        action = SQLAction(action_type=ActionType.QUERY, argument=sql)
        t = time.perf_counter()
        env.step(action)
        times.append(time.perf_counter() - t)
        left -= 1
    return times


def floor_round(pool: SandboxPool, work: list[tuple[str, str]], observe: bool) -> list[float]:
    """The engine's unavoidable parts alone: lease a sandbox, run the checked SQL with its
    bounds, give it back, and (``observe``) build the typed observation of the result.
    No reward, rendering, history or step checks: what any step through this design
    costs before the environment does anything."""
    times = []
    for db_id, sql in work:
        t = time.perf_counter()
        sandbox = pool.acquire(db_id)
        outcome = sandbox.execute(sql)
        pool.release(db_id, sandbox)
        if observe:
            SQLObservation(
                reward=0.0,
                db_id=db_id,
                tables=("a", "b"),
                result="",
                table=ResultTable(
                    columns=outcome.columns,
                    rows=outcome.rows[:200],
                    total_rows=outcome.total_rows,
                    total_is_lower_bound=outcome.total_is_lower_bound,
                ),
                step_count=1,
                budget_remaining=14,
                action_history=["QUERY ..."],
                reward_breakdown=RewardBreakdown.of(operational=0.01),
            )
        times.append(time.perf_counter() - t)
    return times


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--split", default="eval")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--out",
        type=Path,
        help="also write the results, command and machine here "
        "(benchmarks/results/engine.json is what the docs quote)",
    )
    args = ap.parse_args()
    before = machine.describe()

    ds = load_dataset()
    questions = list(ds.select(split=args.split))
    # group by database so the engine resets only when the database changes
    by_db: dict[str, list[str]] = defaultdict(list)
    first_qid: dict[str, str] = {}
    for q in questions:
        by_db[q.db_id].append(q.gold_sql)
        first_qid.setdefault(q.db_id, q.id)
    work = [(db, sql) for db, sqls in by_db.items() for sql in sqls]
    conns = {db: sqlite3.connect(f"file:{ds.db_path(db)}?mode=ro", uri=True) for db in by_db}
    same_as_engine = {
        db: sqlite3.connect(f"file:{ds.db_path(db)}?mode=ro&immutable=1", uri=True) for db in by_db
    }
    env = SQLEnvironment(ds, EnvConfig())

    def clear_memos() -> None:
        env_module._render_memo.clear()
        reward_module._phi_memo.clear()
        reward_module._gold_profiles.clear()

    pool = SandboxPool(ds.db_path, EnvConfig().sandbox)
    raw_all, cold_all, fresh_all, warm_all, lease_all, typed_all = [], [], [], [], [], []
    immutable_all = []
    for _ in range(args.repeat):
        raw_all.append(raw_round(conns, work))
        immutable_all.append(raw_round(same_as_engine, work))
        lease_all.append(floor_round(pool, work, observe=False))
        typed_all.append(floor_round(pool, work, observe=True))
        sandbox_module._cached_verdict.cache_clear()
        clear_memos()
        cold_all.append(engine_round(env, work, first_qid))
        clear_memos()
        fresh_all.append(engine_round(env, work, first_qid))
        warm_all.append(engine_round(env, work, first_qid))
    raw = min(raw_all, key=sum)
    immutable = min(immutable_all, key=sum)
    cold = min(cold_all, key=sum)
    fresh = min(fresh_all, key=sum)
    warm = min(warm_all, key=sum)
    lease = min(lease_all, key=sum)
    typed = min(typed_all, key=sum)

    # reset latency over many seeds on the split
    reset_times = []
    for seed in range(2000):
        t = time.perf_counter()
        env.reset(seed=seed, split=args.split)
        reset_times.append(time.perf_counter() - t)

    t = time.perf_counter()
    report = evaluate(env, OraclePolicy(ds), questions)
    oracle_s = time.perf_counter() - t

    result = {
        "split": args.split,
        "queries": len(work),
        "raw_total_ms": sum(raw) * 1e3,
        "raw_immutable_total_ms": sum(immutable) * 1e3,
        "ratio_warm_to_raw_immutable": sum(warm) / sum(immutable),
        "engine_cold_total_ms": sum(cold) * 1e3,
        "engine_warm_total_ms": sum(warm) * 1e3,
        "engine_new_results_total_ms": sum(fresh) * 1e3,
        "ratio_new_results": sum(fresh) / sum(raw),
        "engine_new_results_p50_us": statistics.median(fresh) * 1e6,
        "ratio_cold": sum(cold) / sum(raw),
        "floor_sandbox_total_ms": sum(lease) * 1e3,
        "ratio_floor_sandbox": sum(lease) / sum(raw),
        "floor_typed_total_ms": sum(typed) * 1e3,
        "ratio_floor_typed": sum(typed) / sum(raw),
        "ratio_warm": sum(warm) / sum(raw),
        "raw_p50_us": statistics.median(raw) * 1e6,
        "engine_warm_p50_us": statistics.median(warm) * 1e6,
        "engine_cold_p50_us": statistics.median(cold) * 1e6,
        "engine_warm_steps_per_s": len(warm) / sum(warm),
        "raw_queries_per_s": len(raw) / sum(raw),
        "reset_p50_us": statistics.median(reset_times) * 1e6,
        "reset_p99_us": pct(reset_times, 0.99) * 1e6,
        "oracle_seconds": oracle_s,
        "oracle_success_rate": report.success_rate,
        "oracle_episodes": report.n,
    }
    if args.out is not None:
        machine.record(args.out, "engine", result, before)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"split {args.split}: {len(work)} gold queries, best of {args.repeat} rounds")
    print(
        f"  raw sqlite3      total {result['raw_total_ms']:8.1f} ms   p50 {result['raw_p50_us']:7.1f} µs"
        f"   {result['raw_queries_per_s']:9.0f} q/s"
    )
    print(
        f"  raw, immutable   total {result['raw_immutable_total_ms']:8.1f} ms"
        "   (opened as the engine opens them; engine warm against it:"
        f" {result['ratio_warm_to_raw_immutable']:.2f}x)"
    )
    print(
        f"  engine (warm)    total {result['engine_warm_total_ms']:8.1f} ms   p50 {result['engine_warm_p50_us']:7.1f} µs"
        f"   {result['engine_warm_steps_per_s']:9.0f} steps/s   ratio {result['ratio_warm']:.2f}x"
    )
    print(
        f"  engine (new res) total {result['engine_new_results_total_ms']:8.1f} ms   p50 {result['engine_new_results_p50_us']:7.1f} µs"
        f"   ratio {result['ratio_new_results']:.2f}x"
    )
    print(
        f"  engine (cold)    total {result['engine_cold_total_ms']:8.1f} ms   p50 {result['engine_cold_p50_us']:7.1f} µs"
        f"   ratio {result['ratio_cold']:.2f}x"
    )
    print(
        f"  floor: sandbox   total {result['floor_sandbox_total_ms']:8.1f} ms   ratio {result['ratio_floor_sandbox']:.2f}x"
        "   (pool lease + checked, bounded execution only)"
    )
    print(
        f"  floor: + typed   total {result['floor_typed_total_ms']:8.1f} ms   ratio {result['ratio_floor_typed']:.2f}x"
        "   (and the pydantic observation of the result)"
    )
    print(
        f"  reset            p50 {result['reset_p50_us']:.1f} µs   p99 {result['reset_p99_us']:.1f} µs"
    )
    print(
        f"  oracle           {report.n} episodes in {oracle_s:.2f} s, success {report.success_rate:.3f}"
    )


if __name__ == "__main__":
    main()
