"""SQLEnv on Ray Serve: the unchanged FastAPI app as one deployment of N replicas.

Start it (on a running Ray cluster, or a local one started here)::

    uv run --group ray python deploy/ray/sqlenv_serve.py --replicas 4
    uv run --group ray python deploy/ray/sqlenv_serve.py --replicas 8 --address auto --port 8000

Each replica is a Ray actor running ``sqlenv_server.app.create_app()`` behind
``@serve.ingress``: HTTP, the ``/ws`` WebSocket, MCP and the web page, with the app's own
lifespan (dataset loaded once per replica, the idle reaper). Ray Serve's proxy (one per
node, or only on the head) takes the connections and hands each request, or each
WebSocket for its whole life, to one replica (docs/scaling.md).

Sessions: a WebSocket's episode lives on the replica that accepted it. HTTP sessions
(``X-SQLEnv-Session``) and MCP sessions (``Mcp-Session-Id`` or ``params.session_id``)
are not routed back to the replica that opened them: Serve picks a replica per request.
A request naming a session that this replica does not hold is answered before the app,
with an error that says so and points to ``/ws`` (``affinity.SessionAffinityGuard``). With
one replica they work as on a single server.

Settings: every ``SQLENV_*`` variable of the starting shell reaches the replicas; the
flags below set the ones that matter per replica. Ray Serve counts an open WebSocket as an
ongoing request, so ``max_ongoing_requests`` is set to the session cap: a lower value
would queue the connections past it instead of serving them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

# Replicas run the Python environment the cluster's nodes were started with (this
# repository's .venv on a local cluster, the image on Kubernetes), not a copy of the
# working directory that Ray's `uv run` hook would upload and re-sync on every worker.
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")

from ray import cloudpickle, serve

sys.path.insert(0, str(Path(__file__).resolve().parent))  # deploy/ is not a package
import affinity
from affinity import SessionAffinityGuard

__all__ = [
    "APP_NAME",
    "DEPLOYMENT_NAME",
    "SessionAffinityGuard",
    "build_app",
    "deployment",
    "main",
    "replica_settings",
]

APP_NAME = "sqlenv"
DEPLOYMENT_NAME = "SQLEnv"
DEFAULT_REPLICA_CPUS = 1.0
DEFAULT_MAX_SESSIONS = 256  # per replica; the server's own default
DEFAULT_QUERY_THREADS = 4
REPO = Path(__file__).resolve().parents[2]

# Imported as modules (the benchmark, the tests) these files are not importable on the
# replicas, which run in other processes: ship their code by value.
cloudpickle.register_pickle_by_value(affinity)
if __name__ != "__main__":
    cloudpickle.register_pickle_by_value(sys.modules[__name__])


def build_app() -> SessionAffinityGuard:
    """The ASGI app of one replica (built on the replica): the server's, guarded."""
    from sqlenv_server.app import create_app

    return SessionAffinityGuard(create_app())


@serve.deployment(name=DEPLOYMENT_NAME)
@serve.ingress(build_app)
class SQLEnvReplica:
    """One replica: the FastAPI app of ``sqlenv_server`` (routes come from ``build_app``)."""


def replica_settings(
    *, max_sessions: int = DEFAULT_MAX_SESSIONS, query_threads: int = DEFAULT_QUERY_THREADS
) -> dict[str, str]:
    """The environment of every replica: the shell's ``SQLENV_*`` and explicit settings.

    The data directory is made absolute (replicas run in other working directories).
    """
    env = {k: v for k, v in os.environ.items() if k.startswith("SQLENV_")}
    env["SQLENV_MAX_SESSIONS"] = str(max_sessions)
    env["SQLENV_QUERY_THREADS"] = str(query_threads)
    env["SQLENV_DATA_DIR"] = str(Path(env.get("SQLENV_DATA_DIR", REPO / "data")).resolve())
    env.setdefault("SQLENV_LOG_LEVEL", "warning")
    # A trainer's many rollouts come from one address (and through Serve's proxy): the
    # per-address cap would refuse all but the first 32 sessions. Capacity is per replica.
    env.setdefault("SQLENV_MAX_SESSIONS_PER_CLIENT", "0")
    return env


def deployment(
    replicas: int,
    *,
    num_cpus: float = DEFAULT_REPLICA_CPUS,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    query_threads: int = DEFAULT_QUERY_THREADS,
    spread: bool = True,
) -> Any:
    """The bound application: ``replicas`` replicas of ``num_cpus`` CPUs each.

    ``spread`` puts at most one replica on a node (``max_replicas_per_node=1``), so a
    node's loss takes one replica; the cluster then needs as many nodes as replicas.
    """
    if replicas < 1:
        raise ValueError(f"replicas must be at least 1, got {replicas}")
    if num_cpus <= 0:
        raise ValueError(f"num_cpus must be positive, got {num_cpus}")
    from ray.serve.schema import LoggingConfig

    options: dict[str, Any] = {
        "num_replicas": replicas,
        # no access-log line per HTTP request (the server logs what matters at its level)
        "logging_config": LoggingConfig(enable_access_log=False, log_level="WARNING"),
        "max_ongoing_requests": max_sessions,  # an open WebSocket is one ongoing request
        "ray_actor_options": {
            "num_cpus": num_cpus,
            "runtime_env": {
                "env_vars": replica_settings(max_sessions=max_sessions, query_threads=query_threads)
            },
        },
    }
    if spread:
        options["max_replicas_per_node"] = 1
    return SQLEnvReplica.options(**options).bind()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sqlenv_serve.py", description="Serve SQLEnv on Ray Serve with N replicas."
    )
    parser.add_argument("--replicas", type=int, required=True, help="number of replicas")
    parser.add_argument(
        "--address",
        help="Ray cluster to join ('auto' for the one `ray start` began here, or ray://...); "
        "default: start a local one in this process",
    )
    parser.add_argument("--host", default="0.0.0.0", help="proxy host (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=8000, help="proxy port (default 8000)")
    parser.add_argument(
        "--proxy-location",
        choices=["EveryNode", "HeadOnly"],
        default="EveryNode",
        help="a proxy on every node (default) or only on the head node",
    )
    parser.add_argument(
        "--num-cpus", type=float, default=DEFAULT_REPLICA_CPUS, help="CPUs per replica (default 1)"
    )
    parser.add_argument(
        "--max-sessions",
        type=int,
        default=DEFAULT_MAX_SESSIONS,
        help=f"session cap per replica (default {DEFAULT_MAX_SESSIONS})",
    )
    parser.add_argument(
        "--query-threads",
        type=int,
        default=DEFAULT_QUERY_THREADS,
        help="slow-query threads per replica",
    )
    parser.add_argument(
        "--no-spread", action="store_true", help="allow several replicas on one node"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import ray

    if args.proxy_location == "HeadOnly":
        # One proxy for every client: do not prefer the head node's replicas (Serve's
        # default), or every WebSocket would land there. Set before Ray starts here; on
        # a cluster started by `ray start`, set it in the head node's environment.
        os.environ.setdefault("RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING", "0")
    ray.init(address=args.address, include_dashboard=False) if args.address else ray.init()
    serve.start(
        http_options={"host": args.host, "port": args.port},
        proxy_location=args.proxy_location,
    )
    app = deployment(
        args.replicas,
        num_cpus=args.num_cpus,
        max_sessions=args.max_sessions,
        query_threads=args.query_threads,
        spread=not args.no_spread,
    )
    serve.run(app, name=APP_NAME, route_prefix="/")
    print(
        f"SQLEnv on Ray Serve: {args.replicas} replicas, http://{args.host}:{args.port}/ "
        "(WebSocket /ws); Ctrl-C stops it",
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    serve.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
