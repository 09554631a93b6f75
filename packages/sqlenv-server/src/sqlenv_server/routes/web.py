"""The web page for people: static files at ``/web/`` and the two JSON endpoints it reads.

The page plays over the ``/ws`` WebSocket like any agent; these endpoints only list
questions (without their gold answers) and give the oracle's plan for the replay.
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


@router.get(
    "/web/api/oracle/{question_id}",
    response_model=list[OracleAction],
    tags=["web"],
    responses={404: {"description": "unknown question id"}},
)
async def oracle(manager: ManagerDep, question_id: str) -> JSONResponse:
    """The oracle's actions: DESCRIBE the gold query's tables, QUERY the gold SQL, ANSWER.

    Like ``sqlenv_core.policies.OraclePolicy``, it describes at most ``budget - 2``
    tables so the QUERY and the ANSWER always fit in the budget.
    """
    try:
        q = manager.dataset.get(question_id)
    except UnknownQuestionError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=404)
    room = max(manager.settings.budget - 2, 0)
    actions = [{"action_type": "DESCRIBE", "argument": t} for t in q.tables[:room]]
    actions.append({"action_type": "QUERY", "argument": q.gold_sql})
    actions.append({"action_type": "ANSWER", "argument": format_answer(q.gold_rows)})
    return JSONResponse(actions)
