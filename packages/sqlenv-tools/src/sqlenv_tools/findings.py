"""What every check returns, and the facts several checks share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "NOTEBOOK_PATH",
    "REPOSITORY_URL",
    "SPACE_APP_URL",
    "SPACE_ID",
    "SPACE_URL",
    "Finding",
    "find_root",
    "missing_file",
]

SPACE_ID = "sqlenv/sql_env"
"""The Hugging Face Space SQLEnv is published to (scripts/publish_space.sh)."""
SPACE_URL = f"https://huggingface.co/spaces/{SPACE_ID}"
SPACE_APP_URL = "https://sqlenv-sql-env.hf.space"
"""The Space's own address: the repo id lowercased, each other character a dash."""
NOTEBOOK_PATH = "notebooks/train_grpo.ipynb"
REPOSITORY_URL = "https://github.com/sqlenv/sqlenv"
"""The source repository (the notebook's Colab badge and clone address point at it too)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's verdict. ``reason`` says why it failed, or what was seen when it passed."""

    group: str
    check: str
    ok: bool
    reason: str = ""


def missing_file(group: str, root: Path, relative: str) -> Finding:
    return Finding(group, "file exists", False, f"missing file {relative} (looked in {root})")


def find_root(start: Path | None = None) -> Path | None:
    """The repository root: the nearest directory at or above ``start`` holding ``deploy/``."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "deploy").is_dir():
            return candidate
    return None
