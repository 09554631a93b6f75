"""The ASGI application: ``create_app(settings)`` and a module-level ``app``.

The lifespan loads the dataset once (unless one is handed in) and shares it read-only
with every session; at shutdown it closes all sessions. Building the app imports
nothing heavy and reads no data, so ``sqlenv_server.app:app`` is cheap to import: it
reads its settings from the environment when it starts (uvicorn's flags decide host
and port).

Routes: ``/health``, ``/metadata``, ``/schema``, ``/reset``, ``/step``, ``/state``,
``/session`` (routes/http.py); ``/ws`` (routes/ws.py); ``/mcp`` (routes/mcp.py); ``/``
and ``/web/`` with ``/web/api/*`` (routes/web.py); ``/docs`` and ``/openapi.json``.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlenv_core.dataset import Dataset, load_dataset

from .limits import BodyLimit
from .origin import OriginGuard
from .routes import http, mcp, web, ws
from .sessions import SessionManager
from .settings import ServerSettings, resolve_settings

__all__ = ["OPENENV_API_VERSION", "app", "create_app"]

OPENENV_API_VERSION = "1.0.0"

log = logging.getLogger("sqlenv_server")

DESCRIPTION = """\
SQLEnv speaks the [OpenEnv](https://github.com/huggingface/OpenEnv) wire protocol.

* **`/ws`** (WebSocket, the main path): one episode stream per connection. Send
  `{"type": "reset", "data": {"split": "eval"}}`, then
  `{"type": "step", "data": {"action_type": "DESCRIBE", "argument": "singer"}}` until
  `done`; also `state`, `close` and `mcp`.
* **HTTP**: `POST /reset` returns a session id in the `X-SQLEnv-Session` header; send it
  back to `POST /step` and `GET /state` to play over plain HTTP.
* **MCP**: `POST /mcp` (JSON-RPC 2.0) with the tools reset, describe, sample, query,
  answer and state.
* **The web page** for people: [/web/](/web/).

Package versions: `GET /metadata`.
"""


def create_app(
    settings: ServerSettings | None = None, *, dataset: Dataset | None = None
) -> FastAPI:
    """A new application. ``settings=None`` reads them from the environment at startup.

    ``dataset`` skips loading one (``main`` loads it first, to report a bad data
    directory before anything starts).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cfg = settings if settings is not None else resolve_settings(ignore=("host", "port"))
        data = dataset if dataset is not None else load_dataset(cfg.data_dir)
        # The dataset's objects live as long as the server: leave them out of the garbage
        # collector's full passes, which otherwise walk them all and stall the event loop
        # (up to 200 ms) whenever a worker thread's step allocates many objects.
        gc.freeze()
        manager = SessionManager(data, cfg)
        manager.start()
        app.state.manager = manager
        log.info(
            "SQLEnv ready: %d questions, %d databases, up to %d sessions",
            len(data),
            len(data.db_ids),
            cfg.max_sessions,
        )
        try:
            yield
        finally:
            await manager.shutdown()

    app = FastAPI(
        title="SQLEnv",
        # OpenAPI's info.version names the HTTP API, as in OpenEnv ("1.0.0"), which
        # `openenv validate --url` reads as the openenv-http/1.x profile; the package's
        # own version is in GET /metadata.
        version=OPENENV_API_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit)
    app.include_router(http.router)
    app.include_router(ws.router)
    app.include_router(mcp.router)
    app.include_router(web.router)
    app.mount("/web", StaticFiles(directory=web.WEB_DIR, html=True), name="web")
    app.add_middleware(OriginGuard)  # browsers: same origin (or allowed ones), known Host
    return app


app = create_app()
"""Configured from the environment at startup: ``uvicorn sqlenv_server.app:app``."""
