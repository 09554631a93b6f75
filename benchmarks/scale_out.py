"""Scale-out proof: SQLEnv on a local multi-node Ray cluster, a replica killed mid-run.

Run (needs the ``ray`` dependency group)::

    uv run --group ray python benchmarks/scale_out.py --nodes 2 --replicas 2 \\
        --sessions 64 --episodes 256 --kill-replica --out scale_out.json

What it does:

1. starts a local Ray cluster of ``--nodes`` nodes (a head and workers, each its own
   raylet with ``--node-cpus`` CPUs and a small object store: ``ray.cluster_utils``);
2. deploys ``deploy/ray/sqlenv_serve.py`` with ``--replicas`` replicas, at most one per
   node, behind one Serve proxy on the head node, and checks that the replicas sit on
   different nodes;
3. plays ``--episodes`` oracle episodes (eval questions, round robin) through
   ``sqlenv_client.AsyncEnvPool`` with ``--sessions`` concurrent WebSocket sessions;
4. with ``--kill-replica``, once ``--kill-after`` of the episodes are done, kills one
   replica with ``ray.kill`` (no restart of that actor: Serve starts a new replica); the
   pool replays the interrupted episodes on a live replica;
5. writes JSON: nodes, replicas, sessions, episodes_requested, episodes_completed,
   episodes_restarted, episodes_lost, replica_killed, steps_per_s, p50_ms, p99_ms, plus
   the placement, the killed replica, restarts and errors.

An episode counts as completed when it ended with ``done`` and the oracle's answer was
judged correct (every eval question is solvable: a wrong answer after a replay would
show a replay that went wrong). Step latency is client side, per ``step`` call, and
includes the replays of the steps a restart interrupted. The exit status is 1 when an
episode was lost or failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "deploy" / "ray"))
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")  # see deploy/ray/sqlenv_serve.py
# One proxy (on the head) serves every session here. Serve's router prefers replicas on the
# proxy's own node, which would put every WebSocket on the head's replica; spread them
# (power of two choices over all replicas), as a balancer over per-node proxies would.
os.environ.setdefault("RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING", "0")

DEFAULT_OBJECT_STORE = 80 * 1024 * 1024  # bytes per node: Ray's minimum is about 75 MB


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=2, help="Ray nodes: a head and N-1 workers")
    p.add_argument("--replicas", type=int, default=2, help="SQLEnv replicas (<= nodes)")
    p.add_argument("--sessions", type=int, default=64, help="concurrent WebSocket sessions")
    p.add_argument("--episodes", type=int, default=256, help="episodes to play")
    p.add_argument("--kill-replica", action="store_true", help="kill one replica mid-run")
    p.add_argument(
        "--kill-after", type=float, default=0.3, help="share of episodes done before the kill"
    )
    p.add_argument("--node-cpus", type=float, default=1.0, help="CPUs each node offers Ray")
    p.add_argument("--replica-cpus", type=float, default=0.5, help="CPUs per replica")
    p.add_argument("--port", type=int, default=0, help="Serve proxy port (0: a free one)")
    p.add_argument("--split", default="eval", help="question split (default eval)")
    p.add_argument(
        "--baseline",
        action="store_true",
        help="also play the same episodes on one plain sqlenv-server (no Ray) for a ratio",
    )
    p.add_argument("--out", help="write the JSON report here (also printed)")
    args = p.parse_args(argv)
    if args.replicas > args.nodes:
        p.error("--replicas must not exceed --nodes: the replicas are spread one per node")
    for name in ("nodes", "replicas", "sessions", "episodes"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if not 0 < args.kill_after < 1:
        p.error("--kill-after must lie between 0 and 1")
    return args


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_cluster(nodes: int, node_cpus: float) -> Any:
    """A head and ``nodes - 1`` worker raylets on this machine, with small object stores."""
    from ray.cluster_utils import Cluster

    common = {"num_cpus": node_cpus, "object_store_memory": DEFAULT_OBJECT_STORE}
    cluster = Cluster(
        initialize_head=True,
        head_node_args={**common, "include_dashboard": False},
    )
    for _ in range(nodes - 1):
        cluster.add_node(**common)
    cluster.wait_for_nodes()
    return cluster


def replica_actors() -> list[dict[str, Any]]:
    """Live replica actors of the SQLEnv deployment: name, actor id and node id."""
    import ray
    from sqlenv_serve import APP_NAME, DEPLOYMENT_NAME

    prefix = f"SERVE_REPLICA::{APP_NAME}#{DEPLOYMENT_NAME}#"
    found = []
    for actor in ray._private.state.actors().values():  # GCS table: no dashboard needed
        name = actor.get("Name") or ""
        if name.startswith(prefix) and actor.get("State") == "ALIVE":
            found.append({"name": name, "node_id": actor["Address"]["NodeID"]})
    return sorted(found, key=lambda a: a["name"])


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run_episodes(
    url: str, args: argparse.Namespace, on_progress: Any
) -> tuple[list[Any], dict[str, int], list[float], float]:
    from sqlenv_client import AsyncEnvPool, AsyncPooledSession
    from sqlenv_core.dataset import load_dataset
    from sqlenv_core.policies import OraclePolicy

    dataset = load_dataset()
    questions = list(dataset.select(split=args.split))
    items = [questions[i % len(questions)].id for i in range(args.episodes)]
    latencies: list[float] = []
    done_count = 0

    async def play(env: AsyncPooledSession, question_id: str) -> bool:
        nonlocal done_count
        policy = OraclePolicy(dataset)
        obs = await env.reset(question_id=question_id)
        policy.begin(obs, question_id)
        while not obs.done:
            action = policy.act(obs)
            start = time.perf_counter()
            obs = await env.step(action)
            latencies.append(time.perf_counter() - start)
        correct = obs.reward_breakdown is not None and obs.reward_breakdown.terminal > 0
        done_count += 1
        await on_progress(done_count)
        return correct

    pool = AsyncEnvPool(url, size=args.sessions, client_options={"reply_timeout_s": 30.0})
    start = time.perf_counter()
    outcomes = await pool.run(items, play)
    return outcomes, pool.stats.as_dict(), latencies, time.perf_counter() - start


def baseline(args: argparse.Namespace) -> dict[str, float]:
    """The same episodes through the same pool on one plain ``python -m sqlenv_server``."""
    import subprocess
    import urllib.request

    port = _free_port()
    cmd = [sys.executable, "-m", "sqlenv_server", "--port", str(port), "--log-level", "warning"]
    cmd += ["--max-sessions", str(args.sessions * 2)]
    proc = subprocess.Popen(cmd)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("the baseline server did not start") from None
                time.sleep(0.05)

        async def noop(_: int) -> None:
            return None

        outcomes, _, latencies, wall = asyncio.run(
            run_episodes(f"http://127.0.0.1:{port}", args, noop)
        )
    finally:
        proc.terminate()
        proc.wait(10)
    return {
        "episodes_completed": sum(1 for o in outcomes if o.ok and o.result),
        "steps_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 2),
        "p99_ms": round(1000 * _percentile(latencies, 0.99), 2),
    }


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    import ray
    from ray import serve
    from sqlenv_serve import APP_NAME, deployment

    port = args.port or _free_port()
    t0 = time.perf_counter()
    cluster = start_cluster(args.nodes, args.node_cpus)
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        serve.start(http_options={"host": "127.0.0.1", "port": port}, proxy_location="HeadOnly")
        app = deployment(args.replicas, num_cpus=args.replica_cpus, max_sessions=args.sessions * 2)
        serve.run(app, name=APP_NAME, route_prefix="/")
        ready_s = time.perf_counter() - t0
        placement = replica_actors()
        nodes_used = sorted({a["node_id"] for a in placement})
        print(
            f"cluster of {args.nodes} nodes and {len(placement)} replicas ready in "
            f"{ready_s:.1f} s; replicas on {len(nodes_used)} distinct nodes",
            file=sys.stderr,
        )
        if len(nodes_used) != args.replicas:
            raise SystemExit(f"replicas are not on distinct nodes: {placement}")

        killed: dict[str, Any] = {}
        kill_at = max(1, int(args.episodes * args.kill_after))

        async def on_progress(done: int) -> None:
            if args.kill_replica and not killed and done >= kill_at:
                victim = placement[-1]  # the last by name: on either node, by chance
                handle = ray.get_actor(victim["name"], namespace="serve")
                ray.kill(handle, no_restart=True)
                killed.update(victim, after_episodes=done, at_s=time.perf_counter() - t0)
                print(f"killed {victim['name']} after {done} episodes", file=sys.stderr)

        outcomes, stats, latencies, wall = asyncio.run(
            run_episodes(f"http://127.0.0.1:{port}", args, on_progress)
        )
        after = replica_actors()
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
            cluster.shutdown()

    plain = baseline(args) if args.baseline else None
    completed = sum(1 for o in outcomes if o.ok and o.result)
    wrong = sum(1 for o in outcomes if o.ok and not o.result)
    errors = [f"{type(o.error).__name__}: {o.error}" for o in outcomes if not o.ok]
    report = {
        "nodes": args.nodes,
        "replicas": args.replicas,
        "sessions": args.sessions,
        "episodes_requested": args.episodes,
        "episodes_completed": completed,
        "episodes_restarted": stats["episodes_restarted"],
        "episodes_lost": args.episodes - completed,
        "replica_killed": bool(killed),
        "steps_per_s": round(len(latencies) / wall, 1) if wall else 0.0,
        "p50_ms": round(1000 * statistics.median(latencies), 2) if latencies else 0.0,
        "p99_ms": round(1000 * _percentile(latencies, 0.99), 2),
        "steps": len(latencies),
        "restarts": stats["restarts"],
        "episodes_wrong": wrong,
        "errors": errors[:10],
        "seconds": round(wall, 2),
        "cluster_ready_s": round(ready_s, 1),
        "placement": placement,
        "killed": killed or None,
        "replicas_after": after,
        "baseline_one_plain_server": plain,
        "ratio_to_baseline": round(len(latencies) / wall / plain["steps_per_s"], 3)
        if plain
        else None,
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg": os.getloadavg(),
            "python": platform.python_version(),
        },
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0 if report["episodes_lost"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
