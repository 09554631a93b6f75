"""The SQLEnv data directory, installed as a package.

``sqlenv_core.dataset.default_data_dir`` uses :func:`data_dir` when no ``$SQLENV_DATA_DIR``
is set and no checkout's ``data/`` is found, so ``pip install "sqlenv-server[data]"`` serves
without a download. The files are those of the repository's ``data/`` (Spider 1.0, CC BY-SA
4.0: see ``data/README.md`` inside).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["data_dir"]


def data_dir() -> Path:
    """The folder with ``questions/``, ``databases/`` and ``manifest.json``."""
    return Path(__file__).resolve().parent / "data"
