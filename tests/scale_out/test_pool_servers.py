"""The client pool against two real servers, one killed (SIGKILL) mid-run.

Every episode must complete with the oracle's correct answer: the ones the dead server
held are replayed on the live one and counted. This is the Ray benchmark's claim
without Ray (tests/scale_out/test_ray_serve.py runs the benchmark itself).
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import support
from sqlenv_client import AsyncEnvPool, AsyncPooledSession, EnvPool
from sqlenv_core.dataset import load_dataset
from sqlenv_core.evaluation import evaluate
from sqlenv_core.policies import OraclePolicy

ROOT = Path(__file__).resolve().parents[2]
FAST = {"connect_timeout_s": 5.0, "reply_timeout_s": 20.0}


def test_every_episode_completes_when_a_server_dies_mid_run(tmp_path: Path) -> None:
    data = ROOT / "data"
    dataset = load_dataset(data)
    questions = support.fast_questions(data, split="eval")[:40]
    a = support.Server(data, tmp_path / "a.log")
    b = support.Server(data, tmp_path / "b.log")
    with a, b:
        killed = asyncio.Event()
        done = 0

        async def play(env: AsyncPooledSession, question_id: str) -> bool:
            nonlocal done
            policy = OraclePolicy(dataset)
            obs = await env.reset(question_id=question_id)
            policy.begin(obs, question_id)
            while not obs.done:
                obs = await env.step(policy.act(obs))
                if done >= 10 and not killed.is_set():
                    killed.set()
                    a.proc.send_signal(signal.SIGKILL)
            done += 1
            return obs.reward_breakdown is not None and obs.reward_breakdown.terminal > 0

        pool = AsyncEnvPool([a.base, b.base], size=8, client_options=FAST)
        outcomes = asyncio.run(pool.run([q.id for q in questions], play))
        assert a.proc.wait(5) == -signal.SIGKILL
        assert b.health() == 200
    errors = [o.error for o in outcomes if not o.ok]
    assert errors == []
    assert all(o.result for o in outcomes), "a replayed episode ended with a wrong answer"
    stats = pool.stats.as_dict()
    assert stats["episodes_completed"] == len(questions)
    assert stats["episodes_lost"] == 0
    assert stats["episodes_restarted"] >= 1
    assert stats["episodes_restarted"] == sum(o.restarts > 0 for o in outcomes)


def test_evaluate_through_a_pooled_session_matches_in_process(tmp_path: Path) -> None:
    data = ROOT / "data"
    dataset = load_dataset(data)
    questions = support.fast_questions(data, split="eval")[:8]
    with support.Server(data, tmp_path / "s.log") as server, EnvPool(server.base) as pool:
        remote = evaluate(pool.session(), OraclePolicy(dataset), questions)
    from sqlenv_core.env import SQLEnvironment

    local = evaluate(SQLEnvironment(dataset), OraclePolicy(dataset), questions)
    assert remote.success_rate == local.success_rate == 1.0
    assert [e.model_dump() for e in remote.episodes] == [e.model_dump() for e in local.episodes]


def test_sqlenv_eval_server_matches_the_in_process_evaluation(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    data = ROOT / "data"
    base = [sys.executable, "-m", "sqlenv_core.cli", "--data-dir", str(data), "eval"]
    base += ["--policy", "oracle", "--split", "eval", "--sample", "12", "--json", "--out"]
    with support.Server(data, tmp_path / "s.log") as server:
        remote = subprocess.run(
            [*base, str(tmp_path / "remote.json"), "--server", server.base],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert remote.returncode == 0, remote.stderr[-2000:]
    local = subprocess.run(
        [*base, str(tmp_path / "local.json")], capture_output=True, text=True, timeout=120
    )
    assert local.returncode == 0, local.stderr[-2000:]
    remote_report = json.loads((tmp_path / "remote.json").read_text())
    local_report = json.loads((tmp_path / "local.json").read_text())
    assert remote_report["success_rate"] == 1.0
    assert remote_report["episodes"] == local_report["episodes"]
