"""A short soak (64 sessions for 15 s; the full 256 x 120 s run is ``soak.py``, recorded
in ``docs/reliability.md``): full episodes with every reply checked, clients vanishing
mid-episode and mid-query, and afterwards no session, busy thread or file descriptor
left behind and memory flat after warm-up."""

from __future__ import annotations

import asyncio
from pathlib import Path

from soak import soak
from support import DATA, Server, fast_questions


def test_short_soak(tmp_path: Path) -> None:
    # the eval split's 20 databases: the pool's caches fill within the short warm-up
    # (the full run draws from all 7,415 questions on 160 databases)
    questions = fast_questions(DATA, None, split="eval")
    assert len(questions) > 500
    # headroom above the 64 clients: a reconnect may arrive before the server has
    # seen the vanished connection's close (freeing is asserted at the end)
    flags = ("--max-sessions", "256", "--query-timeout", "1")
    with Server(DATA, tmp_path / "server.log", *flags) as server:
        report = asyncio.run(
            soak(server.ws_url, questions, pid=server.pid, stats=server.stats,
                 sessions=64, duration=15, seed=1, warmup=6)
        )
        log = server.log()
    summary = report.summary()
    assert report.wrong_replies == [] and report.lost_replies == 0, report.wrong_replies[:5]
    assert report.episodes > 100 and report.right_answers > 0 and report.wrong_answers > 0
    assert all(n > 0 for n in report.vanished.values()), report.vanished
    # every client left: no session, no busy worker thread
    assert report.sessions_after == 0 and report.busy_after == 0, summary
    assert report.drained_in_s < 2.0, summary
    # threads: the 8 query workers, started under load, stay pooled; nothing more
    assert report.at_end["threads"] <= report.after_warmup["threads"], summary
    assert report.at_end["threads"] <= report.at_start["threads"] + 9, summary
    # fds: what the server had at start plus its idle pooled database connections
    assert report.at_end["fds"] <= report.at_start["fds"] + report.idle_connections_after + 2, summary
    assert summary["rss_growth_after_warmup"] < 0.10, summary
    assert "Traceback" not in log, log[-3000:]
