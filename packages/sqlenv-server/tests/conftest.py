"""Fixtures: a tiny data directory built in a temp dir (never the bundled data/),
apps built on it, and the real server started as a process.

The data builder is copied from ``packages/sqlenv-core/tests/conftest.py`` (each
package's tests must run alone) and extended with a ``numbers`` database whose 40
generated questions let many sessions play different questions at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlenv_core.dataset import Question, dump_questions

with warnings.catch_warnings():
    # starlette warns when its test client finds httpx rather than httpx2.
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

from sqlenv_server.app import create_app
from sqlenv_server.settings import ServerSettings

SHOP_SQL = """
CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customer(id), amount REAL);
INSERT INTO customer VALUES (1, 'Ada', 'London'), (2, 'Bob', 'Paris'), (3, 'Cy', NULL);
INSERT INTO orders VALUES (1, 1, 10.5), (2, 1, 4.5), (3, 2, 7.25), (4, 3, 1.0);
"""
ZOO_SQL = """
CREATE TABLE "Animal Keeper" (id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE animal (id INTEGER PRIMARY KEY, name TEXT, species TEXT, keeper_id INTEGER
    REFERENCES "Animal Keeper"(id));
INSERT INTO "Animal Keeper" VALUES (1, 'Kim'), (2, 'Lee');
INSERT INTO animal VALUES (1, 'Leo', 'lion', 1), (2, 'Zed', 'zebra', 2), (3, 'Lia', 'lion', 1);
"""
NUMBERS_SQL = """
CREATE TABLE number (n INTEGER PRIMARY KEY, square INTEGER, word TEXT);
WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 200)
INSERT INTO number SELECT n, n * n, 'n' || n FROM c;
"""

# (id, split, db, question, sql, order_matters, shape, tables, difficulty)
QUESTIONS = [
    ("t_count", "train", "shop", "How many customers are there?",
     "SELECT count(*) FROM customer", False, "scalar", ["customer"], "easy"),
    ("t_names", "train", "shop", "List customer names alphabetically.",
     "SELECT name FROM customer ORDER BY name", True, "list", ["customer"], "easy"),
    ("t_totals", "train", "shop", "Total order amount of each customer name.",
     "SELECT c.name, sum(o.amount) FROM customer c JOIN orders o ON o.customer_id = c.id GROUP BY c.name",
     False, "table", ["customer", "orders"], "medium"),
    ("e_lions", "eval", "zoo", "How many lions are there?",
     "SELECT count(*) FROM animal WHERE species = 'lion'", False, "scalar", ["animal"], "easy"),
    ("e_keepers", "eval", "zoo", "Which keepers look after a lion?",
     'SELECT DISTINCT k.name FROM "Animal Keeper" k JOIN animal a ON a.keeper_id = k.id WHERE a.species = \'lion\'',
     False, "list", ["Animal Keeper", "animal"], "medium"),
] + [
    (f"n_{k:02d}", "train", "numbers", f"What is the square of {k + 1}?",
     f"SELECT square FROM number WHERE n = {k + 1}", False, "scalar", ["number"], "easy")
    for k in range(40)
]  # fmt: skip

NUMBER_IDS = [q[0] for q in QUESTIONS if q[2] == "numbers"]

SLOW_SQL = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
    "SELECT count(*) FROM c JOIN number ON number.n = c.x % 200"
)
"""Never ends by itself: the sandbox's deadline stops it."""


def build_tiny_data(root: Path) -> Path:
    """Write three tiny databases and their questions with gold results."""
    scripts = {"shop": SHOP_SQL, "zoo": ZOO_SQL, "numbers": NUMBERS_SQL}
    for db_id, script in scripts.items():
        path = root / "databases" / db_id / f"{db_id}.sqlite"
        path.parent.mkdir(parents=True)
        with sqlite3.connect(path) as conn:
            conn.executescript(script)
        conn.close()
    (root / "questions").mkdir(parents=True)
    by_split: dict[str, list[Question]] = {"train": [], "eval": []}
    for qid, split, db_id, text, sql, order, shape, tables, level in QUESTIONS:
        conn = sqlite3.connect(root / "databases" / db_id / f"{db_id}.sqlite")
        cur = conn.execute(sql)
        columns = [d[0] for d in cur.description]
        rows = [list(r) for r in cur.fetchall()]
        conn.close()
        by_split[split].append(
            Question(id=qid, split=split, source="dev" if split == "eval" else "train_spider",
                     db_id=db_id, question=text, gold_sql=sql, gold_columns=columns, gold_rows=rows,
                     order_matters=order, answer_shape=shape, tables=tables, difficulty=level)
        )  # fmt: skip
    for split, questions in by_split.items():
        dump_questions(questions, root / "questions" / f"{split}.jsonl")
    return root


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Read-only for tests: built once per run."""
    return build_tiny_data(tmp_path_factory.mktemp("tiny") / "data")


def make_settings(data_dir: Path, **overrides: Any) -> ServerSettings:
    return ServerSettings(data_dir=data_dir, **overrides)


@pytest.fixture
def make_client(tiny_data_dir: Path) -> Iterator[Any]:
    """``make_client(**settings)`` -> a started TestClient (lifespan run); closed after."""
    stack = contextlib.ExitStack()

    def make(**overrides: Any) -> TestClient:
        app = create_app(make_settings(tiny_data_dir, **overrides))
        return stack.enter_context(TestClient(app))

    with stack:
        yield make


@pytest.fixture
def client(make_client: Any) -> TestClient:
    return make_client()


# ------------------------------------------------------------------ a real process
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def http_post(url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


@pytest.fixture(name="http_get")
def _http_get_fixture() -> Any:
    return http_get


@pytest.fixture(name="http_post")
def _http_post_fixture() -> Any:
    return http_post


class ServerProcess:
    """``python -m sqlenv_server`` on a free port, with its output in a log file."""

    def __init__(
        self,
        log_path: Path,
        args: list[str],
        env: dict[str, str] | None = None,
        *,
        uvicorn: bool = False,
    ):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.started_at = time.monotonic()
        if uvicorn:  # the module-level app, as `uvicorn sqlenv_server.app:app` serves it
            command = ["-m", "uvicorn", "sqlenv_server.app:app", "--port", str(self.port)]
        else:
            command = ["-m", "sqlenv_server", "--port", str(self.port), *args]
        self.proc = subprocess.Popen(
            [sys.executable, *command],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, timeout: float = 30.0) -> float:
        """Seconds from process start to the first healthy ``/health``."""
        deadline = self.started_at + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            with contextlib.suppress(OSError):
                status, body = http_get(f"{self.base}/health", timeout=1)
                if status == 200 and json.loads(body) == {"status": "healthy"}:
                    return time.monotonic() - self.started_at
            time.sleep(0.01)
        raise AssertionError(f"server not healthy after {timeout} s:\n{self.log()}")

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def start_server(tiny_data_dir: Path, tmp_path: Path) -> Iterator[Any]:
    """``start_server(*flags, env=..., uvicorn=False)`` -> a healthy ServerProcess.

    Stopped (SIGTERM) after the test. ``uvicorn=True`` serves ``sqlenv_server.app:app``
    with uvicorn's own command line instead (flags are then ignored).
    """
    servers: list[ServerProcess] = []

    def start(
        *flags: str, env: dict[str, str] | None = None, wait: bool = True, uvicorn: bool = False
    ) -> ServerProcess:
        args = ["--data-dir", str(tiny_data_dir), "--log-level", "warning", *flags]
        server = ServerProcess(tmp_path / f"server{len(servers)}.log", args, env, uvicorn=uvicorn)
        servers.append(server)
        if wait:
            server.wait_healthy()
        return server

    yield start
    for server in servers:
        server.stop()
