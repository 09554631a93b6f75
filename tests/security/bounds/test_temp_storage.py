"""Finding 8: an ORDER BY over a cross join wrote ~480 MiB to /var/tmp. Temporary storage
is in memory under SQLite's process-wide heap limit, and such a query fails clearly.
"""

from __future__ import annotations

import time

import pytest
from sqlenv_core.config import SandboxConfig
from sqlenv_core.dataset import load_dataset
from sqlenv_core.errors import SandboxError
from sqlenv_core.sandbox import Sandbox


def test_a_huge_sort_fails_with_a_clear_error_and_writes_no_file() -> None:
    path = load_dataset().db_path("flight_4")
    config = SandboxConfig(timeout_s=20, max_sqlite_heap_bytes=48 << 20)
    with Sandbox(path, config) as box:
        start = time.monotonic()
        with pytest.raises(SandboxError, match="working memory") as caught:
            box.execute("SELECT * FROM routes a, airports b ORDER BY a.src_ap || b.name")
        assert "48 MiB" in str(caught.value)
        assert time.monotonic() - start < 15  # stopped by the limit, not the deadline
        # a program over the instruction limit still says so
        with pytest.raises(SandboxError, match="too complex"):
            box.execute("SELECT " + ", ".join(f"abs({i})" for i in range(900)))
        assert box.execute("SELECT count(*) FROM airports").rows[0][0] > 0
