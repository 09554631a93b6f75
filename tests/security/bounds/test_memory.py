"""Finding 4: one client grew the server by 1.18 GiB with 150 distinct big results (memos
holding whole results). Every memo is bounded by bytes now."""

from __future__ import annotations

import json
from pathlib import Path

import support
from sqlenv_core import env as env_module
from sqlenv_core import reward as reward_module
from sqlenv_core.config import EnvConfig
from sqlenv_core.env import SQLEnvironment
from websockets.sync.client import connect


def _attack(ws, n: int, cell: str) -> None:
    for i in range(n):
        sql = f"SELECT hex(zeroblob(3900)) || {cell}{i} AS k FROM routes LIMIT 1000"
        ws.send(json.dumps({"type": "step", "data": {"action_type": "QUERY", "argument": sql}}))
        reply = json.loads(ws.recv())
        assert reply["type"] == "observation", reply
        assert reply["data"]["observation"]["table"]["total_rows"] == 1000


def test_150_distinct_big_results_grow_the_server_less_than_256_mib(tmp_path: Path) -> None:
    with support.Server(support.DATA, tmp_path / "server.log", "--budget", "1000") as server:
        server.wait_healthy()
        with connect(server.ws_url, max_size=None) as ws:
            ws.send(json.dumps({"type": "reset", "data": {"db_id": "flight_4", "budget": 1000}}))
            assert json.loads(ws.recv())["type"] == "observation"
            _attack(ws, 2, "")  # warm-up: first pool connection, sqlglot import
            before = support.proc_stats(server.pid)["rss_kb"]
            _attack(ws, 150, "")  # the load: equal cells within a result
            _attack(ws, 60, "rowid || ")  # and distinct cells (the text-normalising cache)
            after = support.proc_stats(server.pid)["rss_kb"]
        growth_mib = (after - before) / 1024
        assert growth_mib < 256, f"RSS grew {growth_mib:.0f} MiB"


def test_memos_stay_within_their_byte_budgets() -> None:
    env = SQLEnvironment(config=EnvConfig(budget=1000))
    env.reset(db_id="flight_4", budget=1000)
    for i in range(40):
        sql = f"SELECT hex(zeroblob(3000)) || rowid || {i} AS k FROM routes LIMIT 20"
        obs = env.step({"action_type": "QUERY", "argument": sql})
        assert not obs.error, obs.error
        long_sql = f"SELECT {i} AS k -- " + "x" * 90_000
        assert not env.step({"action_type": "QUERY", "argument": long_sql}).error
    assert reward_module._phi_memo.nbytes <= reward_module.PHI_MEMO_BYTES
    assert env_module._render_memo.nbytes <= env_module.RENDER_MEMO_BYTES
    assert env_module._query_keys.nbytes <= env_module.QUERY_KEY_MEMO_BYTES
    assert all(len(sql) < 8_000 for sql in list(env_module._query_keys._data))  # no 90 KB text
    env.close()
