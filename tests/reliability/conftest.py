"""Reliability tests: hostile SQL, protocol fuzzing, a short soak, faults.

Each runs a short version here; the scripts beside them (``soak.py``, ``ws_fuzz.py``,
``hostile_sql.py --report``) run the full ones recorded in ``docs/reliability.md``.
The helper modules are imported by path, since the root test run uses
``--import-mode=importlib`` (no package, no rootdir on ``sys.path``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import support  # noqa: E402


@pytest.fixture(scope="module")
def big_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Copies of the three largest bundled databases; their bytes must never change."""
    data = support.make_data_copy(tmp_path_factory.mktemp("big"))
    before = support.db_digests(data)
    yield data
    assert support.db_digests(data) == before, "a database file changed"
