"""SQLEnvClient against the fake server: the shared cases, plus what only the sync client has."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlenv_client import ClientClosedError, ConnectError, SQLEnvClient


@pytest.fixture
def open_client(server: Any) -> Iterator[Callable[..., SQLEnvClient]]:
    clients: list[SQLEnvClient] = []

    def open_client(base_url: str | None = None, **options: Any) -> SQLEnvClient:
        client = SQLEnvClient(base_url or server.url, **options)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        client.close()


def test_shared_case(case: Callable[..., None], open_client: Callable[..., Any], server: Any):
    case(open_client, server)


def test_with_connects_and_closes(server: Any) -> None:
    with SQLEnvClient(server.url) as client:
        server.session(0)  # connected on entry
        assert client.reset().question == server.question
    session = server.session().wait_ended()
    assert session.frames[-1] == {"type": "close"} and session.close_code == 1000
    assert client.is_closed
    with pytest.raises(ClientClosedError), client:
        pass  # a closed client cannot be entered again


def test_with_closes_on_error(server: Any) -> None:
    with pytest.raises(KeyError), SQLEnvClient(server.url) as client:
        client.reset()
        raise KeyError("boom")
    assert server.session().wait_ended().close_code == 1000


def test_with_raises_connect_error_on_entry() -> None:
    with pytest.raises(ConnectError), SQLEnvClient("http://127.0.0.1:9", connect_timeout_s=1):
        pass


def test_threads_sharing_a_client_get_their_own_replies(server: Any) -> None:
    with SQLEnvClient(server.url) as client:
        client.reset()
        seen: dict[str, str] = {}
        errors: list[BaseException] = []

        def worker(table: str) -> None:
            try:
                for _ in range(20):
                    seen[table] = client.describe(table).result
                    assert seen[table].startswith(f"{table}:")
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(t,)) for t in server.tables]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []


def test_repr_shows_url_and_state(server: Any) -> None:
    client = SQLEnvClient(server.url + "/")
    assert repr(client) == f"<SQLEnvClient url='ws://127.0.0.1:{server.port}/ws' state=unopened>"
    client.connect()
    assert "state=open" in repr(client)
    client.close()
    assert "state=closed" in repr(client)


def test_invalid_base_url_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="base_url"):
        SQLEnvClient("localhost:8000")


# --- from_docker_image, with a fake Docker SDK -------------------------------------------


def test_from_docker_image_runs_waits_connects_and_stops(fake_docker: Any) -> None:
    client = SQLEnvClient.from_docker_image(
        "sqlenv-server:test", env={"SQLENV_MAX_CONCURRENT_ENVS": "4"}, reply_timeout_s=5
    )
    ((image, kwargs),) = fake_docker.runs
    port = kwargs["ports"]["8000/tcp"][1]
    assert image == "sqlenv-server:test"
    assert kwargs == {
        "detach": True,
        "ports": {"8000/tcp": ("127.0.0.1", port)},
        "environment": {"SQLENV_MAX_CONCURRENT_ENVS": "4"},
    }
    assert client.url == f"ws://127.0.0.1:{port}/ws"
    (container,) = fake_docker.containers
    container.server.session(0)  # connected once healthy
    assert client.reset().question == container.server.question
    client.close()
    assert container.stopped and container.removed
    assert container.server.session().frames[-1] == {"type": "close"}


def test_from_docker_image_uses_the_given_port(fake_docker: Any) -> None:
    from_port = _free_port()
    with SQLEnvClient.from_docker_image("img", port=from_port) as client:
        assert client.url == f"ws://127.0.0.1:{from_port}/ws"
        assert client.reset().done is False
    assert fake_docker.containers[0].removed


def test_from_docker_image_health_timeout_shows_logs(fake_docker: Any) -> None:
    fake_docker.mode = "unhealthy"  # /health answers 503
    with pytest.raises(
        ConnectError, match=r"did not answer .*/health with 200 within 0\.5 s"
    ) as info:
        SQLEnvClient.from_docker_image("img", timeout_s=0.5)
    assert "ERROR: data directory /app/data is empty" in str(info.value)
    (container,) = fake_docker.containers
    assert container.stopped and container.removed
    assert container.server.sessions == []


def test_from_docker_image_container_exit_fails_fast(fake_docker: Any) -> None:
    fake_docker.mode = "exits"
    with pytest.raises(ConnectError, match="exited before") as info:
        SQLEnvClient.from_docker_image("img", timeout_s=30)
    assert "last log lines" in str(info.value)
    assert fake_docker.containers[0].removed


def test_from_docker_image_without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "docker", None)  # `import docker` raises ImportError
    with pytest.raises(ImportError, match=r'pip install "sqlenv-client\[docker\]"'):
        SQLEnvClient.from_docker_image("img")


def test_from_docker_image_bad_client_option_stops_the_container(fake_docker: Any) -> None:
    with pytest.raises(TypeError):
        SQLEnvClient.from_docker_image("img", no_such_option=1)
    assert fake_docker.containers[0].removed


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
