"""What goes on the wire: request models, the observation envelope and WebSocket frames.

Shapes follow OpenEnv 0.10 (``shared/docs/openenv-wire-protocol.md`` §2.1, §3, §4):

* envelope: ``{"observation": {every field but reward and done}, "reward": r, "done": d,
  "metadata": m}``; over HTTP ``metadata`` is always there (``null`` when empty), over the
  WebSocket only when non-empty;
* WebSocket frames: ``{"type": "observation" | "state" | "error", "data": ...}``.

Frames are built as text directly from pydantic's Rust serializer (``model_dump_json``),
with the few envelope keys spliced around it, so an observation is serialized once.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlenv_core.schemas import EpisodeState, SQLObservation

from . import jsonsafe

__all__ = [
    "EXECUTION_ERROR",
    "INVALID_JSON",
    "PROTOCOL_MISMATCH",
    "SESSION_ERROR",
    "UNKNOWN_TYPE",
    "VALIDATION_ERROR",
    "ResetRequest",
    "StepRequest",
    "error_frame",
    "http_envelope",
    "observation_frame",
    "state_frame",
    "validation_errors",
]

# WebSocket error codes (OpenEnv's WSErrorCode values).
INVALID_JSON: Final = "INVALID_JSON"
UNKNOWN_TYPE: Final = "UNKNOWN_TYPE"
VALIDATION_ERROR: Final = "VALIDATION_ERROR"
EXECUTION_ERROR: Final = "EXECUTION_ERROR"
CAPACITY_REACHED: Final = "CAPACITY_REACHED"
FACTORY_ERROR: Final = "FACTORY_ERROR"
SESSION_ERROR: Final = "SESSION_ERROR"
# SQLEnv's own: the client asked for another protocol version (``PROTOCOL_HEADER``).
PROTOCOL_MISMATCH: Final = "PROTOCOL_MISMATCH"

_ENVELOPE_EXCLUDE: Final = frozenset({"reward", "done"})


class ResetRequest(BaseModel):
    """Arguments of ``reset``: all optional; unknown keys are ignored, as in OpenEnv.

    Without ``question_id`` a question is drawn from those matching ``split``,
    ``db_id`` and ``difficulty`` (``split`` defaults to ``train``, when the data has it,
    unless ``db_id`` is given); the same ``seed`` and filters always draw the same question.
    """

    model_config = ConfigDict(extra="allow")

    seed: int | None = Field(default=None, ge=0, description="makes the draw reproducible")
    episode_id: str | None = Field(default=None, max_length=255)
    question_id: str | None = Field(default=None, description="play this question")
    split: str | None = Field(
        default=None, description="a split of the data (GET /metadata lists them)"
    )
    db_id: str | None = Field(default=None, description="draw from this database's questions")
    difficulty: str | None = Field(default=None, description="easy, medium, hard or extra")
    budget: int | None = Field(default=None, ge=1, le=10_000, description="steps in the episode")

    def engine_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``SQLEnvironment.reset`` (extras left out)."""
        return {
            "seed": self.seed,
            "question_id": self.question_id,
            "split": self.split,
            "db_id": self.db_id,
            "difficulty": self.difficulty,
            "episode_id": self.episode_id,
            "budget": self.budget,
        }


class StepRequest(BaseModel):
    """``POST /step`` body: the action fields under ``action`` (OpenEnv's StepRequest)."""

    model_config = ConfigDict(extra="allow")

    action: dict[str, Any] = Field(
        description='an SQLAction, e.g. {"action_type": "QUERY", "argument": "SELECT 1"}',
    )
    timeout_s: float | None = Field(
        default=None, gt=0, description="accepted for compatibility; the server's deadline applies"
    )
    request_id: str | None = Field(default=None, max_length=255)


def _number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "null"
    return repr(float(value))


def observation_frame(obs: SQLObservation) -> str:
    """``{"type":"observation","data":<envelope>}`` for the WebSocket."""
    body = obs.model_dump_json(exclude=_ENVELOPE_EXCLUDE)
    done = "true" if obs.done else "false"
    meta = f',"metadata":{json.dumps(obs.metadata)}' if obs.metadata else ""
    return (
        f'{{"type":"observation","data":{{"observation":{body},'
        f'"reward":{_number(obs.reward)},"done":{done}{meta}}}}}'
    )


def http_envelope(obs: SQLObservation) -> bytes:
    """The ``/reset`` and ``/step`` response body (``metadata`` null when empty)."""
    body = obs.model_dump_json(exclude=_ENVELOPE_EXCLUDE)
    done = "true" if obs.done else "false"
    meta = json.dumps(obs.metadata) if obs.metadata else "null"
    return (
        f'{{"observation":{body},"reward":{_number(obs.reward)},"done":{done},"metadata":{meta}}}'
    ).encode()


def state_frame(state: EpisodeState) -> str:
    return f'{{"type":"state","data":{state.model_dump_json()}}}'


def error_frame(code: str, message: str, **extra: Any) -> str:
    """``{"type":"error","data":{"message":...,"code":...,...extra}}``."""
    data = {"message": message, "code": code, **extra}
    return jsonsafe.dumps({"type": "error", "data": data})  # never a bare NaN


def validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic errors as JSON-safe dicts (no URLs, no exception objects)."""
    return exc.errors(include_url=False, include_context=False)


def describe_validation(exc: ValidationError, what: str) -> str:
    """One readable line: ``invalid action: action_type: Value error, unknown ...``."""
    parts = []
    for err in exc.errors(include_url=False, include_context=False):
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}: {err['msg']}" if where else err["msg"])
    return f"Invalid {what}: " + "; ".join(parts)
