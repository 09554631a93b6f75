"""AsyncSQLEnvClient against the fake server: the shared cases, plus what only asyncio has.

The shared cases call the client without ``await``; ``Blocking`` runs each coroutine on
one event loop (``asyncio.Runner``) kept for the whole test, as a real program would.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlenv_client import AsyncSQLEnvClient, ClientClosedError, ConnectError


class Blocking:
    """Drives an ``AsyncSQLEnvClient`` from sync code; ``close`` maps to ``aclose``."""

    def __init__(self, client: AsyncSQLEnvClient, runner: asyncio.Runner) -> None:
        self._client = client
        self._runner = runner

    def close(self) -> None:
        self._runner.run(self._client.aclose())

    def idle(self, seconds: float) -> None:
        """Let the event loop run (and the connection process frames) for a while."""
        self._runner.run(asyncio.sleep(seconds))

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if inspect.iscoroutinefunction(attr):
            return lambda *args, **kwargs: self._runner.run(attr(*args, **kwargs))
        return attr


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture
def open_client(server: Any, runner: asyncio.Runner) -> Iterator[Callable[..., Blocking]]:
    clients: list[AsyncSQLEnvClient] = []

    def open_client(base_url: str | None = None, **options: Any) -> Blocking:
        client = AsyncSQLEnvClient(base_url or server.url, **options)
        clients.append(client)
        return Blocking(client, runner)

    yield open_client
    for client in clients:
        runner.run(client.aclose())


def test_shared_case(case: Callable[..., None], open_client: Callable[..., Any], server: Any):
    case(open_client, server)


def test_async_with_connects_and_closes(server: Any) -> None:
    async def main() -> AsyncSQLEnvClient:
        async with AsyncSQLEnvClient(server.url) as client:
            server.session(0)  # connected on entry
            assert (await client.reset()).question == server.question
        with pytest.raises(ClientClosedError):
            async with client:
                pass  # a closed client cannot be entered again
        return client

    client = asyncio.run(main())
    session = server.session().wait_ended()
    assert session.frames[-1] == {"type": "close"} and session.close_code == 1000
    assert client.is_closed


def test_async_with_closes_on_error(server: Any) -> None:
    async def main() -> None:
        async with AsyncSQLEnvClient(server.url) as client:
            await client.reset()
            raise KeyError("boom")

    with pytest.raises(KeyError):
        asyncio.run(main())
    assert server.session().wait_ended().close_code == 1000


def test_concurrent_calls_on_one_client_are_serialised(server: Any) -> None:
    async def main() -> list[str]:
        async with AsyncSQLEnvClient(server.url) as client:
            await client.reset()
            tables = server.tables * 10
            results = await asyncio.gather(*(client.describe(t) for t in tables))
            return [f"{t}|{r.result}" for t, r in zip(tables, results, strict=True)]

    for line in asyncio.run(main()):
        table, result = line.split("|")
        assert result.startswith(f"{table}:")


def test_parallel_episodes_with_one_client_each(server: Any) -> None:
    async def episode(seed: int) -> float | None:
        async with AsyncSQLEnvClient(server.url) as client:
            await client.reset(seed=seed)
            await client.query("SELECT count(*) FROM singer")
            return (await client.answer(6)).reward

    async def main() -> list[float | None]:
        return await asyncio.gather(*(episode(seed) for seed in range(8)))

    assert asyncio.run(main()) == [1.0] * 8
    assert len(server.sessions) == 8


def test_cancelled_call_closes_the_client(server: Any) -> None:
    async def main() -> None:
        client = AsyncSQLEnvClient(server.url)
        await client.reset()
        server.script(delay_s=0.5)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):  # the caller's own deadline cancels the call
                await client.describe("singer")
        assert client.is_closed
        with pytest.raises(ClientClosedError, match="cancelled"):
            await client.describe("singer")
        await client.aclose()  # releases the socket kept through the cancellation

    asyncio.run(main())
    server.session().wait_ended()


def test_repr_shows_url_and_state(server: Any) -> None:
    client = AsyncSQLEnvClient(server.url)
    assert repr(client) == (
        f"<AsyncSQLEnvClient url='ws://127.0.0.1:{server.port}/ws' state=unopened>"
    )


# --- from_docker_image, with a fake Docker SDK -------------------------------------------


def test_from_docker_image_runs_waits_connects_and_stops(fake_docker: Any) -> None:
    async def main() -> None:
        client = await AsyncSQLEnvClient.from_docker_image(
            "sqlenv-server:test", env={"A": "1"}, reply_timeout_s=5
        )
        ((image, kwargs),) = fake_docker.runs
        port = kwargs["ports"]["8000/tcp"][1]
        assert (image, kwargs["environment"], kwargs["detach"]) == (
            "sqlenv-server:test",
            {"A": "1"},
            True,
        )
        assert client.url == f"ws://127.0.0.1:{port}/ws"
        (container,) = fake_docker.containers
        assert (await client.reset()).question == container.server.question
        await client.aclose()
        assert container.stopped and container.removed
        assert container.server.session().frames[-1] == {"type": "close"}

    asyncio.run(main())


def test_from_docker_image_health_timeout_shows_logs(fake_docker: Any) -> None:
    fake_docker.mode = "unhealthy"
    with pytest.raises(ConnectError, match=r"within 0\.5 s") as info:
        asyncio.run(AsyncSQLEnvClient.from_docker_image("img", timeout_s=0.5))
    assert "ERROR: data directory /app/data is empty" in str(info.value)
    assert fake_docker.containers[0].removed


def test_from_docker_image_without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "docker", None)
    with pytest.raises(ImportError, match="sqlenv-client"):
        asyncio.run(AsyncSQLEnvClient.from_docker_image("img"))
