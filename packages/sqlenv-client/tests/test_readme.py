"""The README's examples run against the fake server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).parents[1] / "README.md"
EXAMPLES = [
    block
    for block in re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    if "http://localhost:8000" in block
]


def test_readme_has_a_sync_and_an_async_example() -> None:
    assert len(EXAMPLES) == 2
    assert "SQLEnvClient(" in EXAMPLES[0] and "AsyncSQLEnvClient(" in EXAMPLES[1]
    assert len(EXAMPLES[0].strip().splitlines()) <= 12


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_readme_example_runs(index: int, server: Any, capsys: pytest.CaptureFixture[str]):
    code = EXAMPLES[index].replace("http://localhost:8000", server.url)
    exec(compile(code, f"README.md example {index + 1}", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out
    assert server.session().wait_ended().frames[-1] == {"type": "close"}
