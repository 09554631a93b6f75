"""``sqlenv-server`` (or ``python -m sqlenv_server``): serve SQLEnv with uvicorn.

Checks its settings and loads the dataset before anything starts, so a bad ``PORT``
or a missing data directory stops it at once with one line on stderr and exit
status 2. SIGTERM and Ctrl+C close every session and exit with status 0.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence

from . import __version__
from .settings import ENV_VARS, ServerSettings, SettingsError, resolve_settings

__all__ = ["main"]

_HELP = {
    "host": "interface to listen on (env HOST; default 127.0.0.1, use 0.0.0.0 in a container)",
    "port": "port (env PORT; default 8000)",
    "data_dir": "data directory (env SQLENV_DATA_DIR; default: the bundled data/)",
    "max_sessions": "most open sessions, WebSocket, HTTP and MCP together (default 256)",
    "idle_timeout": "close sessions idle for this many seconds (default 600)",
    "query_timeout": "deadline of one QUERY in seconds (default 2)",
    "budget": "steps per episode, ANSWER included (default 15)",
    "inline_budget_ms": "a QUERY running longer than this moves off the event loop (default 5)",
    "query_threads": "worker threads for slow queries (default 8)",
    "max_message_bytes": "largest WebSocket message or HTTP request body accepted"
    " (default 1048576; larger bodies get 413)",
    "max_sessions_per_client": "most sessions one client address may hold (default 32; 0: no"
    " cap; loopback clients are never capped; behind a proxy see FORWARDED_ALLOW_IPS)",
    "max_header_bytes": "largest request line and headers (default 32768; larger get 431)",
    "header_timeout": "seconds a client has to send a request's headers (default 10)",
    "log_level": "critical, error, warning, info, debug or trace (default info)",
    "graceful_timeout": "seconds to let connections finish at shutdown (default 3)",
    "allowed_origins": "comma-separated origins (https://example.org, or *) whose pages may "
    "call this server from a browser besides its own page (default: none)",
    "allowed_hosts": "comma-separated Host names a browser may use to reach this server "
    "(example.org, *.example.org, *; default: localhost, 127.0.0.1 and ::1 when bound to "
    "loopback, any otherwise)",
}


_SWITCHES = {
    "--ws-compression": "compress WebSocket messages (permessage-deflate; env SQLENV_WS_COMPRESSION)",
    "--web-oracle": "serve the oracle's plan (the gold SQL and answer) at /web/api/oracle/<id> "
    "for every question, e.g. for judges' replays; off, only for a question the page has "
    "finished (env SQLENV_WEB_ORACLE)",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sqlenv-server",
        description="Serve SQLEnv over the OpenEnv protocol (HTTP, WebSocket, MCP), with a "
        "web page.",
        epilog="Every option can also be set with the environment variable named in its help.",
    )
    parser.add_argument("--version", action="version", version=f"sqlenv-server {__version__}")
    for name, (flag, variables) in ENV_VARS.items():
        dest = name
        if flag in _SWITCHES:
            parser.add_argument(
                flag, dest=dest, action="store_const", const="1", help=_SWITCHES[flag]
            )
            continue
        key = flag[2:].replace("-", "_")
        text = _HELP.get(key, "")
        if variables and variables[0] not in text:
            text = f"{text} (env {' or '.join(variables)})".strip()
        parser.add_argument(flag, dest=dest, metavar=key.upper(), help=text)
    return parser


def _web_address(settings: ServerSettings) -> tuple[str, str]:
    host = settings.host
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{settings.port}"
    browse = "localhost" if host in ("0.0.0.0", "::", "") else shown
    return base, f"http://{browse}:{settings.port}/web/"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = resolve_settings(vars(args))
    except SettingsError as exc:
        print(f"sqlenv-server: error: {exc}", file=sys.stderr)
        return 2

    # Imported only now, so that a bad flag is reported without waiting for them.
    from sqlenv_core.dataset import load_dataset
    from sqlenv_core.errors import DataError

    try:
        dataset = load_dataset(settings.data_dir)
    except DataError as exc:
        print(f"sqlenv-server: error: {exc}", file=sys.stderr)
        return 2

    _limit_malloc_arenas()

    import uvicorn

    from .app import create_app
    from .limits import bounded_http_protocol

    app = create_app(settings, dataset=dataset)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        ws_max_size=max(16 << 20, 4 * settings.max_message_bytes),
        ws_per_message_deflate=settings.ws_compression,
        http=bounded_http_protocol(settings.max_header_bytes, settings.header_timeout_s),
        timeout_graceful_shutdown=settings.graceful_timeout_s,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    try:
        listener = _listen(settings.host, settings.port)
    except OSError as exc:
        why = exc.strerror or str(exc)
        hint = (
            ": is another server running there? Stop it, or choose another port with --port or PORT"
            if exc.errno == errno.EADDRINUSE
            else ""
        )
        print(
            f"sqlenv-server: error: cannot listen on {settings.host}:{settings.port}: "
            f"{why.lower()}{hint}",
            file=sys.stderr,
        )
        return 2
    base, page = _web_address(settings)
    _say(f"SQLEnv server on {base} — play in the browser at {page}")
    # uvicorn re-raises the signal that stopped it once it has shut down gracefully;
    # with a handler that does nothing, a SIGTERM'd server exits 0 instead of -15.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _ignore)
    server.run(sockets=[listener])
    _exit_now(0 if server.started else 1)
    return 1  # not reached


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the banner is printed, so a port in use is one
    line on stderr (uvicorn would print its own error after our banner and exit 3)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _exit_now(code: int) -> None:
    """End the process once uvicorn has shut down: every session is closed by then (the
    lifespan) and nothing is left to write. Tearing down the interpreter would only free
    the loaded dataset object by object and join idle worker threads: 0.2-1 s of a SIGTERM
    on a loaded machine for nothing, and a container's stop waits for it."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


MALLOC_ARENAS = 2
"""glibc malloc arenas for the server process (glibc's default is 8 per core).

Each worker thread otherwise gets its own arena, and memory freed in one is not reused by
another: in a 256-session soak RSS kept creeping (+12.5% between 30 s and 135 s, peak
195 MiB); with 2 arenas it grew 8% to a 172 MiB peak (docs/reliability.md). The Python
allocations are serialised by the GIL anyway, so fewer arenas cost nothing measurable.
``MALLOC_ARENA_MAX`` in the environment wins.
"""


MMAP_THRESHOLD = 128 << 10
"""Allocations from this size up are mmapped and given back to the system when freed."""


def _limit_malloc_arenas() -> None:
    if sys.platform != "linux" or "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-8, MALLOC_ARENAS)  # M_ARENA_MAX; before any worker thread starts
        if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
            # A fixed threshold turns off glibc's dynamic one, which rises after each
            # large free until megabyte buffers (a 1.5 MB reply being serialised) come
            # from the heap, where fragmentation keeps them: 150 big replies grew RSS
            # by 625 MiB; with the fixed threshold by under 10 MiB (docs/reliability.md).
            libc.mallopt(-3, MMAP_THRESHOLD)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        pass


def _say(line: str) -> None:
    try:
        print(line, flush=True)
    except UnicodeEncodeError:  # a terminal that cannot show the dash
        print(line.replace("—", "-"), flush=True)


def _ignore(signum: int, frame: object) -> None:
    """Installed after uvicorn restores the previous handlers (see ``main``)."""


if __name__ == "__main__":
    sys.exit(main())
