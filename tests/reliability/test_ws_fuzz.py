"""The WebSocket fuzzer (``ws_fuzz.py``) in short: 600 generated messages over two
connections, a 17 MiB frame, and a flood of 10,000 messages sent without reading, while
another session plays correct episodes. The full run (20,000 messages) is recorded in
``docs/reliability.md``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from support import DATA, Server, fast_questions, proc_stats
from ws_fuzz import run


def test_fuzz_and_flood_leave_the_server_healthy(tmp_path: Path) -> None:
    questions = fast_questions(DATA, None, split="eval")[:100]
    with Server(DATA, tmp_path / "server.log") as server:
        before = proc_stats(server.pid)
        report = asyncio.run(run(server.ws_url, questions, messages=600, flood_n=10_000, seed=7))
        after = proc_stats(server.pid)
        stats = server.stats()
        assert server.health() == 200
        log = server.log()
    assert report.problems == [], report.problems[:10]
    assert report.sent == 600 and len(report.by_kind) >= 15, report.by_kind
    assert {"error:INVALID_JSON", "error:UNKNOWN_TYPE", "error:VALIDATION_ERROR"} <= set(report.by_reply)
    assert report.flood_messages == 10_000
    assert report.normal_episodes > 0
    assert stats["active_sessions"] == 0
    # the flood is held back by TCP, not buffered: memory stays put
    assert after["rss_kb"] - before["rss_kb"] < 64 * 1024, (before, after)
    assert "Traceback" not in log and "Exception in ASGI" not in log, log[-3000:]
