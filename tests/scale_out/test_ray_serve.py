"""The scale-out benchmark, small: a 2-node local Ray cluster, a replica killed mid-run.

Needs the ``ray`` dependency group, which the default sync leaves out: without it the
test is skipped. CI runs it with ``uv run --group ray pytest tests/scale_out`` (.ci/run).
A cluster takes 30-60 s to start on a loaded 2-core machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip(
    "ray.serve",
    reason="Ray Serve is not installed: run with the ray group (uv run --group ray pytest tests/scale_out)",
)

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "nodes",
    "replicas",
    "sessions",
    "episodes_requested",
    "episodes_completed",
    "episodes_restarted",
    "episodes_lost",
    "replica_killed",
    "steps_per_s",
    "p50_ms",
    "p99_ms",
}


def test_two_nodes_two_replicas_one_killed_and_no_episode_lost(tmp_path: Path) -> None:
    out = tmp_path / "scale_out.json"
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "scale_out.py"),
        "--nodes", "2", "--replicas", "2", "--sessions", "16", "--episodes", "64",
        "--kill-replica", "--kill-after", "0.25", "--out", str(out),
    ]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=420, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    report = json.loads(out.read_text())
    assert set(report) >= KEYS
    assert report["nodes"] == 2 and report["replicas"] == 2
    assert len({r["node_id"] for r in report["placement"]}) == 2, "replicas share a node"
    assert report["replica_killed"] is True
    assert report["killed"]["name"] in {r["name"] for r in report["placement"]}
    assert report["episodes_completed"] == report["episodes_requested"] == 64
    assert report["episodes_lost"] == 0 and report["errors"] == []
    assert report["episodes_restarted"] >= 1, "the killed replica held no session"
    assert report["episodes_wrong"] == 0
    assert report["steps_per_s"] > 0 and 0 < report["p50_ms"] <= report["p99_ms"]


def test_the_deployment_sets_its_capacity_and_placement_explicitly(monkeypatch) -> None:
    """No cluster needed: the bound application's options."""
    import sqlenv_serve

    monkeypatch.setenv("SQLENV_BUDGET", "9")
    app = sqlenv_serve.deployment(3, num_cpus=0.5, max_sessions=128, query_threads=2)
    config = app._bound_deployment._deployment_config
    replica = app._bound_deployment._replica_config
    assert config.num_replicas == 3
    assert config.max_ongoing_requests == 128  # an open WebSocket is one ongoing request
    assert replica.max_replicas_per_node == 1  # spread: one replica per node
    assert replica.ray_actor_options["num_cpus"] == 0.5
    env = replica.ray_actor_options["runtime_env"]["env_vars"]
    assert env["SQLENV_MAX_SESSIONS"] == "128" and env["SQLENV_QUERY_THREADS"] == "2"
    assert env["SQLENV_BUDGET"] == "9"  # the shell's SQLENV_* reach the replicas
    assert Path(env["SQLENV_DATA_DIR"]).is_absolute()
    assert (
        sqlenv_serve.deployment(
            2, spread=False
        )._bound_deployment._replica_config.max_replicas_per_node
        is None
    )
    with pytest.raises(ValueError, match="replicas must be at least 1"):
        sqlenv_serve.deployment(0)
