"""SQLEnv server: the OpenEnv wire protocol over FastAPI and uvicorn, plus a web page.

Run it with ``sqlenv-server`` (or ``python -m sqlenv_server``); embed it with
``sqlenv_server.app.create_app(settings)``. ``sqlenv_server.app:app`` is an ASGI app
configured from the environment, for ``uvicorn sqlenv_server.app:app``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sqlenv-server")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
