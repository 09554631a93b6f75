"""Pooled sessions: an episode interrupted by a dying server is rebuilt on a live one.

Two scripted fake servers stand for two replicas; stopping one mid-episode is a replica's
death. The cross-package test with real servers is tests/scale_out/test_pool_servers.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlenv_client import (
    AsyncEnvPool,
    AsyncPooledSession,
    Endpoints,
    EnvPool,
    EpisodeLostError,
    InvalidActionError,
    PooledSession,
    PoolStats,
)

from .conftest import FakeServer, free_port

FAST = {"connect_timeout_s": 2.0, "reply_timeout_s": 5.0}


@pytest.fixture
def two_servers() -> Iterator[tuple[FakeServer, FakeServer]]:
    a, b = FakeServer().start(), FakeServer().start()
    yield a, b
    a.stop()
    b.stop()


def _kill(server: FakeServer) -> None:
    """A replica dies: its connections drop and its port stops answering."""
    server.disconnect_all()
    server.stop()


def _steps(server: FakeServer) -> list[str]:
    return [
        f"{f['data']['action_type']} {f['data']['argument']}"
        for s in server.sessions
        for f in s.frames
        if isinstance(f, dict) and f.get("type") == "step"
    ]


def test_an_episode_interrupted_by_a_dying_server_is_replayed_on_a_live_one(two_servers) -> None:
    a, b = two_servers
    stats = PoolStats()
    with PooledSession([a.url, b.url], stats=stats, client_options=FAST) as env:
        env.reset(question_id="q-7", budget=10)
        first = a if a.sessions else b
        other = b if first is a else a
        env.describe("singer")
        env.query("SELECT count(*) FROM singer")
        _kill(first)
        obs = env.answer("6")  # the answer is sent to the live server after a replay
        assert obs.done and obs.reward == 1
        assert obs.step_count == 3
        assert env.url == other.url
    replayed = other.session(0)
    resets = [f for f in replayed.frames if isinstance(f, dict) and f.get("type") == "reset"]
    assert resets == [{"type": "reset", "data": {"question_id": "q-7", "budget": 10}}]
    assert _steps(other) == ["DESCRIBE singer", "QUERY SELECT count(*) FROM singer", "ANSWER 6"]
    assert stats.as_dict() == {
        "episodes_started": 1,
        "episodes_completed": 1,
        "episodes_restarted": 1,
        "restarts": 1,
        "episodes_lost": 0,
    }


def test_steps_after_the_end_are_not_recorded_or_replayed(two_servers) -> None:
    a, b = two_servers
    with PooledSession([a.url, b.url], client_options=FAST) as env:
        env.reset(question_id="q-1")
        assert env.answer("6").done
        for _ in range(50):
            env.query("SELECT 1")  # answered "the episode is over", no step used
        assert env._episode is not None and len(env._episode.actions) == 1
        first = a if a.sessions else b
        _kill(first)
        assert env.state().done  # the finished episode is rebuilt from its one action
        assert env.stats.restarts == 1 and env.stats.episodes_completed == 1


def test_a_drawn_question_is_pinned_so_the_replay_meets_the_same_one(two_servers) -> None:
    a, b = two_servers
    with PooledSession([a.url, b.url], client_options=FAST) as env:
        env.reset(seed=3, split="eval")  # the fake server's state says question q-1
        first = a if a.sessions else b
        other = b if first is a else a
        _kill(first)
        env.describe("singer")
    reset = next(f for f in other.session(0).frames if f.get("type") == "reset")
    assert reset["data"] == {"question_id": "q-1"}


def test_when_every_server_is_gone_the_episode_is_reported_lost(server: FakeServer) -> None:
    env = PooledSession(server.url, max_restarts=2, client_options=FAST)
    env.reset(question_id="q-1")
    _kill(server)
    with pytest.raises(EpisodeLostError, match="gave up after 3 failed attempts") as info:
        env.describe("singer")
    assert info.value.attempts == 3
    assert env.stats.episodes_lost == 1 and env.stats.episodes_completed == 0
    env.close()


def test_an_invalid_action_is_the_callers_error_and_is_not_retried(server: FakeServer) -> None:
    with PooledSession(server.url, client_options=FAST) as env:
        env.reset(question_id="q-1")
        server.script_error("VALIDATION_ERROR", "Invalid message", errors=[])
        with pytest.raises(InvalidActionError):
            env.describe("singer")
        assert env.stats.restarts == 0
    assert len(server.sessions) == 1


def test_a_refused_connection_moves_on_to_the_next_url(server: FakeServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    endpoints = Endpoints([dead, server.url])
    with PooledSession(endpoints, client_options=FAST) as env:
        for _ in range(3):
            env.reset(question_id="q-1")
            assert env.answer("6").done
        assert env.url == server.url
        assert env.stats.restarts == 0  # no episode was running when the connect failed
        assert env.stats.episodes_completed == 3


def test_endpoints_rotate_and_rest_a_failed_url() -> None:
    endpoints = Endpoints(["http://a:1", "http://b:1", "http://a:1"], cooldown_s=60)
    assert endpoints.urls == ("http://a:1", "http://b:1")
    assert {endpoints.pick(), endpoints.pick()} == {"http://a:1", "http://b:1"}
    endpoints.mark_down("http://a:1")
    assert [endpoints.pick() for _ in range(3)] == ["http://b:1"] * 3
    endpoints.mark_down("http://b:1")
    assert endpoints.pick() == "http://a:1"  # all rest: the one resting the shortest
    with pytest.raises(ValueError, match="base_url must look like"):
        Endpoints(["ftp://a"])
    with pytest.raises(ValueError, match="at least one"):
        Endpoints([])


def test_env_pool_caps_its_sessions_and_shares_counters(server: FakeServer) -> None:
    with EnvPool(server.url, size=2, client_options=FAST) as pool:
        one, two = pool.session(), pool.session()
        with pytest.raises(RuntimeError, match="the pool is full: 2 sessions"):
            pool.session()
        one.reset(question_id="q-1")
        two.reset(question_id="q-2")
        one.answer("6")
        one.close()
        pool.session()  # a closed session frees its place
        assert pool.stats.episodes_started == 2 and pool.stats.episodes_completed == 1
    with pytest.raises(RuntimeError, match="closed"):
        two.reset(question_id="q-3")


def test_async_pool_runs_every_item_and_restarts_those_a_dead_server_interrupted(
    two_servers,
) -> None:
    a, b = two_servers
    killed = asyncio.Event()

    async def play(env: AsyncPooledSession, n: int) -> float:
        obs = await env.reset(question_id=f"q-{n}")
        obs = await env.step({"action_type": "DESCRIBE", "argument": "singer"})
        if n == 5 and not killed.is_set():
            killed.set()
            await asyncio.to_thread(_kill, a)
        obs = await env.step({"action_type": "QUERY", "argument": "SELECT 1"})
        obs = await env.step({"action_type": "ANSWER", "argument": "6"})
        assert obs.done and obs.step_count == 3
        return obs.reward or 0.0

    pool = AsyncEnvPool([a.url, b.url], size=4, client_options=FAST)
    outcomes = asyncio.run(pool.run(range(12), play))
    assert [o.index for o in outcomes] == list(range(12))
    assert all(o.ok and o.result == 1 for o in outcomes), [o.error for o in outcomes]
    stats = pool.stats.as_dict()
    assert stats["episodes_completed"] == 12 and stats["episodes_lost"] == 0
    assert stats["episodes_restarted"] >= 1  # at least the episode that killed the server
    assert stats["episodes_restarted"] == sum(o.restarts > 0 for o in outcomes)


def test_async_pool_reports_an_error_of_the_play_function_in_its_outcome(server) -> None:
    async def play(env: AsyncPooledSession, n: int) -> int:
        if n == 1:
            raise KeyError("policy bug")
        await env.reset(question_id="q-1")
        return n

    outcomes = asyncio.run(AsyncEnvPool(server.url, size=2, client_options=FAST).run([0, 1], play))
    assert outcomes[0].result == 0
    assert isinstance(outcomes[1].error, KeyError)
    with pytest.raises(ValueError, match="size must be at least 1"):
        AsyncEnvPool(server.url, size=0)
