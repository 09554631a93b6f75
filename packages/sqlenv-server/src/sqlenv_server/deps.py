"""Dependency aliases for the routes (FastAPI's ``Annotated`` style)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .sessions import SessionManager
from .settings import ServerSettings

__all__ = ["ManagerDep", "SettingsDep", "get_manager", "get_settings"]


def get_manager(request: Request) -> SessionManager:
    return request.app.state.manager


def get_settings(request: Request) -> ServerSettings:
    return request.app.state.manager.settings


ManagerDep = Annotated[SessionManager, Depends(get_manager)]
SettingsDep = Annotated[ServerSettings, Depends(get_settings)]
