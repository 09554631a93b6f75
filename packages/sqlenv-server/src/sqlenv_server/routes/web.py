"""The web page for people: static files at ``/web/`` and the JSON endpoints it reads.

The page plays over the ``/ws`` WebSocket like any agent; these endpoints list
questions (without their gold answers), say how the server is set up, and give the
oracle's plan for the replay.

The plan is the gold (the gold SQL and the answer), and this port also serves agents,
so it is given only (a) for a question whose episode has just finished in a live
session, named by that episode's id (the page reads it from the state frame, which
holds the gold by then anyway), or (b) for any question when the server runs with
``--web-oracle`` / ``SQLENV_WEB_ORACLE=1`` (judges' replays; docs/security.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel
from sqlenv_core.checker import format_answer
from sqlenv_core.dataset import Dataset
from sqlenv_core.errors import UnknownQuestionError

from ..deps import ManagerDep

__all__ = ["WEB_DIR", "router"]

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

router = APIRouter()


class QuestionInfo(BaseModel):
    id: str
    question: str
    db_id: str
    difficulty: str
    split: str


class QuestionList(BaseModel):
    questions: list[QuestionInfo]
    total: int
    db_ids: list[str]
    splits: list[str]


class OracleAction(BaseModel):
    action_type: str
    argument: str


class WebSettings(BaseModel):
    oracle_open: bool
    budget: int


ORACLE_CLOSED = (
    "the oracle's plan holds the gold answer, so it is given only for a question whose "
    "episode you have finished (send ?episode_id=<that episode>), or when the server runs "
    "with SQLENV_WEB_ORACLE=1 (--web-oracle)"
)


@router.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    return RedirectResponse("/web/", status_code=307)


@router.get("/web", include_in_schema=False)
async def web_root() -> RedirectResponse:
    return RedirectResponse("/web/", status_code=307)


def _db_ids(dataset: Dataset, split: str | None) -> list[str]:
    if split is None:
        return list(dataset.db_ids)
    try:
        return sorted({q.db_id for q in dataset.select(split=split)})
    except UnknownQuestionError:
        return []


@router.get(
    "/web/api/questions",
    response_model=QuestionList,
    tags=["web"],
    responses={422: {"description": "unknown split or bad filter"}},
)
async def questions(
    manager: ManagerDep,
    split: Annotated[str | None, Query(max_length=64)] = None,
    difficulty: Literal["easy", "medium", "hard", "extra"] | None = None,
    db_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JSONResponse:
    """Questions matching the filters (no gold), how many match, the split's databases and
    the data's splits. A question's text includes its evidence, as the agent sees it."""
    dataset = manager.dataset
    if split and split not in dataset.split_sizes:
        detail = f"unknown split {split!r}; splits are {', '.join(dataset.splits)}"
        return JSONResponse({"detail": detail}, status_code=422)
    try:
        found = dataset.select(split=split, db_id=db_id or None, difficulty=difficulty)
    except UnknownQuestionError:
        found = ()
    page = [
        {
            "id": q.id,
            "question": q.agent_text,
            "db_id": q.db_id,
            "difficulty": q.difficulty,
            "split": q.split,
        }
        for q in found[offset : offset + limit]
    ]
    return JSONResponse(
        {
            "questions": page,
            "total": len(found),
            "db_ids": _db_ids(dataset, split),
            "splits": list(dataset.splits),
        }
    )


@router.get("/web/api/settings", response_model=WebSettings, tags=["web"])
async def web_settings(manager: ManagerDep) -> JSONResponse:
    """What the page needs to know of the server: whether the oracle is open, the budget."""
    settings = manager.settings
    return JSONResponse({"oracle_open": settings.web_oracle, "budget": settings.budget})


@router.get(
    "/web/api/oracle/{question_id}",
    response_model=list[OracleAction],
    tags=["web"],
    responses={
        403: {"description": "the oracle is closed for this question (see episode_id)"},
        404: {"description": "unknown question id"},
    },
)
async def oracle(
    manager: ManagerDep,
    question_id: str,
    episode_id: Annotated[str | None, Query(max_length=255)] = None,
) -> JSONResponse:
    """The oracle's actions: DESCRIBE the gold query's tables, QUERY the gold SQL, ANSWER.

    Given for a question whose episode ``episode_id`` is over in a live session, or for
    every question when the server runs with ``SQLENV_WEB_ORACLE=1``. Like
    ``sqlenv_core.policies.OraclePolicy``, it describes at most ``budget - 2`` tables so
    the QUERY and the ANSWER always fit in the budget.
    """
    if not manager.settings.web_oracle and not (
        episode_id and manager.finished(episode_id, question_id)
    ):
        return JSONResponse({"detail": ORACLE_CLOSED}, status_code=403)
    try:
        q = manager.dataset.get(question_id)
    except UnknownQuestionError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=404)
    room = max(manager.settings.budget - 2, 0)
    actions = [{"action_type": "DESCRIBE", "argument": t} for t in q.tables[:room]]
    actions.append({"action_type": "QUERY", "argument": q.gold_sql})
    actions.append({"action_type": "ANSWER", "argument": format_answer(q.gold_rows)})
    return JSONResponse(actions)
