"""What the client says when it cannot talk to a server: the protocol version, a page URL
instead of the server's, no server at all. Each message says what to do."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from sqlenv_client import AsyncSQLEnvClient, ConnectError, ProtocolVersionError, SQLEnvClient
from sqlenv_core.schemas import PROTOCOL_HEADER, PROTOCOL_VERSION


def test_the_client_says_which_protocol_it_speaks(server: Any) -> None:
    server.protocol = str(PROTOCOL_VERSION)
    with SQLEnvClient(server.url) as env:
        env.reset(seed=1)
    assert server.session().headers[PROTOCOL_HEADER.lower()] == str(PROTOCOL_VERSION)


def test_a_server_of_another_protocol_is_refused_with_what_to_do(server: Any) -> None:
    server.protocol = "99"
    client = SQLEnvClient(server.url)
    with pytest.raises(ProtocolVersionError) as exc:
        client.reset(seed=1)
    assert exc.value.server_protocol == "99"
    assert str(exc.value) == (
        f"the server at ws://127.0.0.1:{server.port}/ws speaks "
        f"SQLEnv protocol '99'; this sqlenv-client speaks protocol {PROTOCOL_VERSION}. Install "
        "the sqlenv-client release that matches the server (docs/releasing.md)"
    )
    assert isinstance(exc.value, ConnectError)  # callers that catch ConnectError still do


def test_the_async_client_refuses_another_protocol_too(server: Any) -> None:
    server.protocol = "0"

    async def main() -> None:
        async with AsyncSQLEnvClient(server.url) as env:
            await env.reset(seed=1)

    with pytest.raises(ProtocolVersionError, match="speaks SQLEnv protocol '0'"):
        asyncio.run(main())


def test_a_server_without_a_version_is_an_openenv_server_and_works(server: Any) -> None:
    server.protocol = None
    with SQLEnvClient(server.url) as env:
        assert env.reset(seed=1).question


def test_the_web_page_url_gets_a_hint_instead_of_a_bare_status(server: Any) -> None:
    with pytest.raises(ConnectError) as exc, SQLEnvClient(f"{server.url}/web/"):
        pass
    assert str(exc.value) == (
        f"cannot connect to ws://127.0.0.1:{server.port}/web/ws: the server answered HTTP 404: "
        "there is no SQLEnv WebSocket at /web/ws. Pass the server's base URL (http://host:port, "
        "or the prefix it is served under), not a page such as /web/"
    )


def test_no_server_says_to_start_one() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectError) as exc, SQLEnvClient(f"http://127.0.0.1:{port}"):
        pass
    assert str(exc.value) == (
        f"cannot connect to ws://127.0.0.1:{port}/ws: connection refused. Is an SQLEnv server "
        'running there? Start one with `sqlenv-server` (pip install "sqlenv-server[data]"), '
        "or check the host and port"
    )
