"""Helpers shared by the reliability tests and scripts (imported by path: see conftest).

* :func:`make_data_copy` — a data directory holding copies of some bundled databases and
  their questions, so a test can damage or delete files and check their sha256.
* :class:`Server` — ``python -m sqlenv_server`` on a free port, with its log.
* :func:`proc_stats` — RSS, threads and open file descriptors of a process (``/proc``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data"
LARGEST_DBS = ("flight_4", "formula_1", "sakila_1")
"""The three largest bundled databases (routes: 67k rows, driverStandings: 32k, payment: 16k)."""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_data_copy(root: Path, db_ids: tuple[str, ...] = LARGEST_DBS) -> Path:
    """``root/data`` with copies of ``db_ids`` and every question on them (train split)."""
    data = root / "data"
    (data / "questions").mkdir(parents=True)
    for db_id in db_ids:
        (data / "databases" / db_id).mkdir(parents=True)
        shutil.copy2(DATA / "databases" / db_id / f"{db_id}.sqlite", data / "databases" / db_id)
    for split in ("train", "eval"):
        lines = [
            line
            for line in (DATA / "questions" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
            if line and json.loads(line)["db_id"] in db_ids
        ]
        (data / "questions" / f"{split}.jsonl").write_text(
            "".join(line + "\n" for line in lines), encoding="utf-8"
        )
    return data


def db_digests(data: Path) -> dict[str, str]:
    return {p.name: sha256(p) for p in sorted((data / "databases").glob("*/*.sqlite"))}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def proc_stats(pid: int) -> dict[str, int]:
    """``rss_kb``, ``threads`` and ``fds`` of a live process, from /proc."""
    rss = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
                break
    return {
        "rss_kb": rss,
        "threads": len(os.listdir(f"/proc/{pid}/task")),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


class Server:
    """``python -m sqlenv_server`` on a free port; ``stop()`` sends SIGTERM."""

    def __init__(self, data: Path, log_path: Path, *flags: str, env: dict[str, str] | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.started_at = time.monotonic()
        args = ["--data-dir", str(data), "--port", str(self.port), "--log-level", "warning", *flags]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sqlenv_server", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, timeout: float = 30.0) -> float:
        deadline = self.started_at + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            with contextlib.suppress(OSError):
                status, _ = http_get(f"{self.base}/health", timeout=1)
                if status == 200:
                    return time.monotonic() - self.started_at
            time.sleep(0.02)
        raise AssertionError(f"server not healthy after {timeout} s:\n{self.log()}")

    def health(self) -> int:
        return http_get(f"{self.base}/health")[0]

    def stats(self, timeout: float = 30.0) -> dict[str, Any]:
        status, body = http_get(f"{self.base}/stats", timeout=timeout)
        assert status == 200, body
        return dict(json.loads(body))

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return int(self.proc.returncode)

    def __enter__(self) -> Server:
        self.wait_healthy()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def fast_questions(
    data: Path, db_ids: tuple[str, ...] | None = None, max_s: float = 0.05, split: str | None = None
) -> list[Any]:
    """Questions of ``data`` whose gold SQL runs in under ``max_s`` (timing-safe oracles)."""
    import sqlite3

    from sqlenv_core.dataset import load_dataset

    out = []
    conns: dict[str, sqlite3.Connection] = {}
    for q in load_dataset(data):
        if (db_ids is not None and q.db_id not in db_ids) or (split and q.split != split):
            continue
        conn = conns.get(q.db_id)
        if conn is None:
            path = data / "databases" / q.db_id / f"{q.db_id}.sqlite"
            conn = conns[q.db_id] = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        start = time.perf_counter()
        conn.execute(q.gold_sql).fetchall()
        if time.perf_counter() - start < max_s and len(q.gold_rows) <= 200:
            out.append(q)
    for conn in conns.values():
        conn.close()
    return out
