from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlenv_tools import docs
from sqlenv_tools.findings import Finding

Write = Callable[[str, str], Path]
PATH = "docs/blog-outline.md"


def failing(findings: list[Finding]) -> dict[str, str]:
    return {f.check: f.reason for f in findings if not f.ok}


def test_good_outline_passes(repo: Path) -> None:
    findings = docs.check(repo)
    assert failing(findings) == {}
    assert [f.check for f in findings] == [
        "sections",
        "try-it links",
        "at least 200 words",
        "no TODO/FIXME outside results",
        "internal links resolve",
    ]


def test_missing_file_is_a_clear_failure(tmp_path: Path) -> None:
    (finding,) = docs.check(tmp_path)
    assert finding.reason == f"missing file {PATH} (looked in {tmp_path})"


@pytest.mark.parametrize(
    ("heading", "section"),
    [
        ("## Hook", "hook"),
        ("## The problem", "problem"),
        ("## Solution and architecture", "solution/architecture"),
        ("## Results", "results"),
    ],
)
def test_each_missing_section_is_named(
    repo: Path, write: Write, good: dict[str, str], heading: str, section: str
) -> None:
    write(PATH, good[PATH].replace(heading, "## Something else"))
    reason = failing(docs.check(repo))["sections"]
    assert reason == f"missing section(s): {section} (a ## heading naming each)"


def test_missing_try_it_section(repo: Path, write: Write, good: dict[str, str]) -> None:
    write(PATH, good[PATH].replace("## Try it", "## Links"))
    reasons = failing(docs.check(repo))
    assert reasons["sections"] == "missing section(s): try-it (a ## heading naming each)"
    assert reasons["try-it links"] == "no try-it section to hold the links"


@pytest.mark.parametrize(
    ("line", "missing"),
    [
        ("* The Space: https://huggingface.co/spaces/sqlenv/sql_env\n", "Space"),
        ("* The notebook: [train_grpo.ipynb](../notebooks/train_grpo.ipynb)\n", "notebook"),
        ("* The repository: <https://github.com/sqlenv/sqlenv>\n", "repository"),
    ],
)
def test_try_it_links(
    repo: Path, write: Write, good: dict[str, str], line: str, missing: str
) -> None:
    write(PATH, good[PATH].replace(line, ""))
    reason = failing(docs.check(repo))["try-it links"]
    assert reason.startswith(f"the try-it section has no link to the {missing} (")


def test_links_elsewhere_do_not_count_for_try_it(
    repo: Path, write: Write, good: dict[str, str]
) -> None:
    text = good[PATH].replace("* The Space: https://huggingface.co/spaces/sqlenv/sql_env\n", "")
    text = text.replace("## Hook\n", "## Hook\n\nhttps://huggingface.co/spaces/sqlenv/sql_env\n")
    write(PATH, text)
    assert "Space" in failing(docs.check(repo))["try-it links"]


def test_too_short(repo: Path, write: Write) -> None:
    write(
        PATH,
        "# T\n\n## Hook\n\nhi\n\n## Problem\n\n## Solution\n\n## Results\n\n## Try it\n\n"
        "https://huggingface.co/spaces/sqlenv/sql_env [nb](../notebooks/train_grpo.ipynb) "
        "https://github.com/sqlenv/sqlenv\n",
    )
    (repo / "notebooks/train_grpo.ipynb").touch()
    reasons = failing(docs.check(repo))
    assert reasons == {"at least 200 words": "9 words, need 200"}


def test_code_blocks_do_not_count_as_words(repo: Path, write: Write, good: dict[str, str]) -> None:
    filler = " ".join(["SQLEnv lets language model agents explore real databases."] * 40)
    text = good[PATH].replace(filler, "\n```\n" + filler + "\n```\n")
    write(PATH, text)
    assert failing(docs.check(repo))["at least 200 words"].endswith("need 200")


@pytest.mark.parametrize("marker", ["TODO", "FIXME"])
def test_markers_outside_results(
    repo: Path, write: Write, good: dict[str, str], marker: str
) -> None:
    write(PATH, good[PATH].replace("## The problem\n", f"## The problem\n\n{marker}: say why\n"))
    reason = failing(docs.check(repo))["no TODO/FIXME outside results"]
    assert reason.startswith(f"line 9: {marker} outside the results section")


def test_markers_inside_results_are_allowed(repo: Path) -> None:
    text = (repo / PATH).read_text()
    assert "TODO" in text.split("## Results")[1].split("## Try it")[0]
    assert failing(docs.check(repo)) == {}


def test_broken_internal_links(repo: Path, write: Write, good: dict[str, str]) -> None:
    text = good[PATH].replace("(reward.md)", "(rewards.md)").replace("(#results)", "(#result)")
    write(PATH, text)
    reason = failing(docs.check(repo))["internal links resolve"]
    assert reason == ("line 9: rewards.md does not exist; line 10: #result names no heading")


def test_the_notebook_link_must_resolve(repo: Path) -> None:
    (repo / "notebooks/train_grpo.ipynb").unlink()
    reason = failing(docs.check(repo))["internal links resolve"]
    assert reason.endswith("../notebooks/train_grpo.ipynb does not exist")
