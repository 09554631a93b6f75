"""JSON that is JSON: no NaN, Infinity or out-of-range numbers, in or out.

Python's ``json`` reads ``NaN``, ``Infinity`` and ``1e400`` (as ``inf``) although JSON
has none of them, and writes them back bare. A request carrying one used to reach
pydantic, whose error quoted the value, which Starlette then refused to serialise
(HTTP 500); over the WebSocket the error frame held a bare ``NaN``, which strict
parsers reject. So every request body and message is read with :func:`loads`, which
refuses them with a message saying why, and every frame built from Python values is
written with :func:`dumps`, which can only produce valid JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

__all__ = ["FiniteJSONRoute", "NonFiniteNumberError", "dumps", "loads"]


class NonFiniteNumberError(ValueError):
    """A request held NaN, Infinity or a number no double can hold."""


def _constant(name: str) -> Any:
    raise NonFiniteNumberError(
        f"{name} is not a JSON number; numbers must be finite (send a string or null)"
    )


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise NonFiniteNumberError(
            f"the number {shown} is out of range (largest: about 1.8e308); numbers must be finite"
        )
    return value


_DECODER = json.JSONDecoder(parse_constant=_constant, parse_float=_float)
"""One decoder: ``json.loads`` with hooks would build a new one per call (0.7 us of a
WebSocket message; this way the hooks cost only when a float or constant is read)."""


def loads(data: str | bytes) -> Any:
    """``json.loads`` that raises :class:`NonFiniteNumberError` for NaN, Infinity, 1e400."""
    if not isinstance(data, str):
        data = data.decode(json.detect_encoding(data), "surrogatepass")
    return _DECODER.decode(data)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """``json.dumps`` that never writes NaN or Infinity (they become null)."""
    try:
        return json.dumps(value, allow_nan=False, default=str)
    except ValueError:
        return json.dumps(_finite(value), allow_nan=False, default=str)


class FiniteJSONRoute(APIRoute):
    """A route whose JSON body is read by :func:`loads`: NaN or 1e400 is a 422 that says so.

    The parsed body is handed on in Starlette's cache (``Request._json``), so FastAPI
    does not parse it a second time; a body that is not JSON at all is left for
    FastAPI to report as before.
    """

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            body = await request.body()
            if body:
                try:
                    request._json = loads(body)
                except NonFiniteNumberError as exc:
                    error = {"type": "json_invalid", "loc": ["body"], "msg": str(exc)}
                    return JSONResponse({"detail": [error]}, status_code=422)
                except (ValueError, RecursionError):
                    pass  # not JSON: FastAPI's own parse reports it
            return await handler(request)

        return route_handler
