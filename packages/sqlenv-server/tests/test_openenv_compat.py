"""Compatibility with the real ``openenv`` package (0.10): its clients and its validator.

Our server is built on FastAPI alone; these tests prove that OpenEnv's own code can
talk to it. ``openenv`` is heavy (about 110 packages, gradio included), so it lives
in the ``compat`` dependency group and these tests are skipped without it::

    uv run --isolated --package sqlenv-server --group compat \\
        pytest packages/sqlenv-server/tests/test_openenv_compat.py
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import warnings
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # openenv's dependencies warn on import
    try:
        from openenv.core import GenericEnvClient, MCPToolClient
    except ImportError as exc:  # pragma: no cover - the usual case outside `--group compat`
        pytest.skip(
            f"needs the openenv package ({exc}); run with `uv run --isolated --package "
            "sqlenv-server --group compat pytest packages/sqlenv-server/tests/"
            "test_openenv_compat.py`",
            allow_module_level=True,
        )

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_generic_env_client_plays_an_episode(start_server: Any) -> None:
    server = start_server()
    with GenericEnvClient(base_url=server.base) as env:
        result = env.reset(question_id="t_totals")
        assert result.done is False and result.reward is None
        assert result.observation["question"] == "Total order amount of each customer name."
        assert result.observation["tables"] == ["customer", "orders"]

        result = env.step({"action_type": "DESCRIBE", "argument": "orders"})
        assert "customer_id" in result.observation["result"]
        assert float(result.reward) > 0

        bad = env.step({"action_type": "QUERY", "argument": "DROP TABLE orders"})
        assert "read-only" in bad.observation["error"] and bad.done is False

        sql = (
            "SELECT c.name, sum(o.amount) FROM customer c "
            "JOIN orders o ON o.customer_id = c.id GROUP BY c.name"
        )
        rows = env.step({"action_type": "QUERY", "argument": sql}).observation["table"]["rows"]
        result = env.step({"action_type": "ANSWER", "argument": json.dumps(rows)})
        assert result.done is True and float(result.reward) == 1.0

        state = env.state()
        assert state["question_id"] == "t_totals" and state["correct"] is True
        assert state["step_count"] == 4


def test_generic_env_client_sees_error_frames(start_server: Any) -> None:
    server = start_server()
    with GenericEnvClient(base_url=server.base) as env:
        with pytest.raises(RuntimeError, match="EXECUTION_ERROR"):
            env.step({"action_type": "QUERY", "argument": "SELECT 1"})  # before reset
        with pytest.raises(RuntimeError, match="VALIDATION_ERROR"):
            env.reset(seed="abc")
        with pytest.raises(RuntimeError, match="unknown question_id"):
            env.reset(question_id="nope")
        assert env.reset(question_id="e_lions").observation["db_id"] == "zoo"


def test_generic_env_client_async(start_server: Any) -> None:
    server = start_server()

    async def play(index: int) -> float:
        async with GenericEnvClient(base_url=server.base) as env:
            await env.reset(question_id=f"n_{index:02d}")
            result = await env.step({"action_type": "ANSWER", "argument": str((index + 1) ** 2)})
            return float(result.reward)

    async def main() -> list[float]:
        return await asyncio.gather(*(play(i) for i in range(8)))

    assert asyncio.run(main()) == [1.0] * 8


def test_mcp_tool_client(start_server: Any) -> None:
    server = start_server()

    async def main() -> None:
        async with MCPToolClient(base_url=server.base) as env:
            names = [tool.name for tool in await env.list_tools()]
            assert names == ["describe", "sample", "query", "answer"]  # the agent's tools
            await env.reset(question_id="t_count")  # the harness: over the joined WebSocket
            result = await env.call_tool("query", sql="SELECT count(*) FROM customer")
            assert result["structuredContent"]["observation"]["table"]["rows"] == [[3]]
            result = await env.call_tool("answer", value="3")
            assert result["structuredContent"]["done"] is True
            assert "reward" not in result["structuredContent"]  # the agent never reads it
            assert result["content"][0]["text"] == "Answer submitted.\n(episode over)"

    asyncio.run(main())


def test_openenv_validate_url(start_server: Any) -> None:
    server = start_server()
    result = subprocess.run(
        [sys.executable, "-m", "openenv.cli", "validate", "--url", server.base, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert report["passed"] is True, report
    failed = [c["id"] for c in report["criteria"] if not c.get("passed")]
    assert failed == [], report
    assert report["mode"] == "simulation"
    assert report["standard_profile"] == "openenv-http/1.x"
