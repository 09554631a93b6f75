from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlenv_tools import readme
from sqlenv_tools.findings import Finding

Write = Callable[[str, str], Path]


def failing(findings: list[Finding]) -> dict[str, str]:
    return {f.check: f.reason for f in findings if not f.ok}


def test_good_readme_passes(repo: Path) -> None:
    findings = readme.check(repo)
    assert failing(findings) == {}
    assert [f.check for f in findings] == [
        "description",
        "quick start",
        "Space link",
        "notebook link",
        "architecture section",
    ]


def test_missing_file(tmp_path: Path) -> None:
    (finding,) = readme.check(tmp_path)
    assert finding.reason.startswith("missing file README.md")


def test_no_description(repo: Path, write: Write, good: dict[str, str]) -> None:
    text = good["README.md"]
    intro = text.split("\n## ")[0]
    write("README.md", text.replace(intro, "# SQLEnv\n\nAn RL environment.\n"))
    assert failing(readme.check(repo))["description"] == (
        "3 words before the first section; need 25 saying what SQLEnv is"
    )


@pytest.mark.parametrize(
    ("old", "new", "check", "reason"),
    [
        ("## Quick start", "## Usage", "quick start", "no 'Quick start' section"),
        (
            "```bash\nuv run sqlenv eval --policy oracle\n```\n",
            "Run the oracle.\n",
            "quick start",
            "the 'Quick start' section has no code block",
        ),
        (
            "https://huggingface.co/spaces/sqlenv/sql_env",
            "https://huggingface.co/spaces/me/x",
            "Space link",
            "no link to https://huggingface.co/spaces/sqlenv/sql_env",
        ),
        (
            "(notebooks/train_grpo.ipynb)",
            "(notebooks/)",
            "notebook link",
            "no link to notebooks/train_grpo.ipynb",
        ),
        ("## Architecture", "## Layout", "architecture section", "no 'Architecture' section"),
    ],
)
def test_broken_readmes(
    repo: Path, write: Write, good: dict[str, str], old: str, new: str, check: str, reason: str
) -> None:
    assert old in good["README.md"]
    write("README.md", good["README.md"].replace(old, new))
    assert failing(readme.check(repo)) == {check: reason}


def test_a_link_inside_a_code_block_does_not_count(
    repo: Path, write: Write, good: dict[str, str]
) -> None:
    text = good["README.md"].replace(
        "[the Space](https://huggingface.co/spaces/sqlenv/sql_env)", "the Space"
    )
    text += "\n```\nhttps://huggingface.co/spaces/sqlenv/sql_env\n```\n"
    write("README.md", text)
    assert "Space link" in failing(readme.check(repo))


def test_the_space_app_address_counts(repo: Path, write: Write, good: dict[str, str]) -> None:
    write(
        "README.md",
        good["README.md"].replace(
            "https://huggingface.co/spaces/sqlenv/sql_env", "https://sqlenv-sql-env.hf.space"
        ),
    )
    assert failing(readme.check(repo)) == {}
