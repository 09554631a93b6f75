"""Run a SQLEnv server image in Docker for ``from_docker_image`` (blocking; the extra ``docker``).

The Docker SDK is imported lazily so the client works without it.
"""

from __future__ import annotations

import http.client
import importlib
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .errors import ConnectError

DEFAULT_DOCKER_TIMEOUT_S: Final = 60.0
"""Seconds to wait for a started container to answer ``GET /health`` with 200."""
CONTAINER_PORT: Final = 8000
"""The port an OpenEnv server listens on inside its image."""
_HOST: Final = "127.0.0.1"
_POLL_INTERVAL_S: Final = 0.25
_LOG_LINES: Final = 20
_STOP_TIMEOUT_S: Final = 5


@dataclass
class DockerServer:
    """A started container and the URL of its server."""

    container: Any
    base_url: str

    def stop(self) -> None:
        """Stop and remove the container; safe to call twice."""
        container, self.container = self.container, None
        if container is None:
            return
        try:
            container.stop(timeout=_STOP_TIMEOUT_S)
        finally:
            container.remove(force=True)


def start_container(
    image: str,
    *,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = DEFAULT_DOCKER_TIMEOUT_S,
) -> DockerServer:
    """Run ``image`` detached with port 8000 on ``127.0.0.1:port`` and wait until it is healthy.

    ``port=None`` picks a free host port. Raises ``ConnectError`` (with the
    container's last log lines) if ``/health`` does not answer 200 within
    ``timeout_s`` or the container exits; the container is then removed.
    """
    docker = _import_docker()
    host_port = port if port is not None else _free_port()
    container = docker.from_env().containers.run(
        image,
        detach=True,
        ports={f"{CONTAINER_PORT}/tcp": (_HOST, host_port)},
        environment=dict(env or {}),
    )
    server = DockerServer(container, f"http://{_HOST}:{host_port}")
    try:
        _wait_healthy(container, image, f"{server.base_url}/health", timeout_s)
    except BaseException:
        server.stop()
        raise
    return server


def _import_docker() -> Any:
    try:
        docker = importlib.import_module("docker")
    except ImportError as exc:
        raise ImportError(
            'from_docker_image needs the Docker SDK: pip install "sqlenv-client[docker]"'
        ) from exc
    return docker


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        return int(sock.getsockname()[1])


def _wait_healthy(container: Any, image: str, health_url: str, timeout_s: float) -> None:
    # No proxies: a proxy from the environment cannot reach the container's loopback port.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        try:
            with opener.open(health_url, timeout=max(0.1, min(2.0, remaining))) as response:
                if response.status == 200:
                    return
        except (OSError, http.client.HTTPException):  # URLError and HTTPError are OSErrors
            pass
        container.reload()
        if container.status in {"exited", "dead"}:
            raise ConnectError(
                f"container of image {image!r} exited before {health_url} answered"
                f"{_last_logs(container)}",
                url=health_url,
            )
        if time.monotonic() >= deadline:
            raise ConnectError(
                f"container of image {image!r} did not answer {health_url} with 200 "
                f"within {timeout_s} s{_last_logs(container)}",
                url=health_url,
            )
        time.sleep(_POLL_INTERVAL_S)


def _last_logs(container: Any) -> str:
    try:
        raw = container.logs(tail=_LOG_LINES)
    except Exception as exc:  # the logs are a courtesy; never hide the real error
        return f"; its logs could not be read ({exc})"
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    text = text.strip()
    return f"; last log lines:\n{text}" if text else "; it wrote no logs"
