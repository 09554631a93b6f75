"""Finding 5: a 48 MiB POST /step was read whole and answered 200, 10 MB headers were
accepted and a slowloris client was held forever. Now 413, 431 and 408."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import pytest
import support


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("requests") / "server.log"
    with support.Server(support.DATA, log, "--header-timeout", "1") as srv:
        srv.wait_healthy()
        yield srv


def _exchange(port: int, head: bytes, body: bytes = b"", timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        if body:
            with contextlib.suppress(OSError):  # the server answered and closed first
                sock.sendall(body)
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


@pytest.mark.parametrize("path", ["/step", "/mcp", "/reset"])
def test_a_declared_48_mib_body_gets_413_before_it_is_sent(server, path: str) -> None:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {48 << 20}\r\n\r\n"
    ).encode()
    reply = _exchange(server.port, head)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b"max_message_bytes" in reply


def test_a_streamed_body_over_the_limit_gets_413(server) -> None:
    head = b"POST /step HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += b"Transfer-Encoding: chunked\r\n\r\n"
    chunk = b"x" * 65536
    body = (b"%x\r\n%s\r\n" % (len(chunk), chunk)) * 40 + b"0\r\n\r\n"
    reply = _exchange(server.port, head, body)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]


def test_huge_headers_get_431(server) -> None:
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (10 << 20) + b"\r\n\r\n"
    reply = _exchange(server.port, head)
    assert reply.startswith(b"HTTP/1.1 431"), reply[:200]
    assert server.health() == 200


def test_a_slowloris_client_is_cut_off_at_the_header_timeout(server) -> None:
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        reply = b""
        while True:
            try:
                data = sock.recv(4096)
            except (ConnectionResetError, TimeoutError):
                break
            if not data:
                break
            reply += data
            if time.monotonic() - start < 3:
                try:
                    sock.sendall(b"X-A: b\r\n")  # a header now and then, never the end
                except OSError:
                    break
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert time.monotonic() - start < 5


def test_normal_requests_still_work(server, tmp_path: Path) -> None:
    assert server.health() == 200
