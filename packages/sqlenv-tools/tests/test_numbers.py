"""``verify numbers`` on a small repository of its own: a quoted number must equal its
source, shown the document's way; a claim that disappears or a source that is missing
fails with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlenv_tools import numbers

CLAIMS = (
    numbers.Claim("databases", "README.md", r"(\d+) Spider databases", "data/manifest.json",
                  "databases", numbers._count),
    numbers.Claim("health", "README.md", r"healthy about ([\d.]+) s", "results/docker.json",
                  "results.run_to_health_s.median", numbers._places(1)),
    numbers.Claim("size", "docs/b.md", r"about (\d+) MB", "results/docker.json",
                  "results.image_size_mb", numbers._tens),
)  # fmt: skip


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "manifest.json").write_text(json.dumps({"databases": {"a": 1, "b": 2}}))
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "docker.json").write_text(
        json.dumps({"results": {"run_to_health_s": {"median": 2.732}, "image_size_mb": 257.0}})
    )
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(
        "2 Spider databases; healthy about 2.7 s. 2 Spider databases"
    )
    (tmp_path / "docs" / "b.md").write_text("about 260 MB")
    return tmp_path


def _failed(root: Path) -> dict[str, str]:
    return {f.check: f.reason for f in numbers.check(root, CLAIMS) if not f.ok}


def test_quoted_numbers_equal_to_their_sources_pass(repo: Path) -> None:
    assert _failed(repo) == {}


def test_a_stale_number_names_both_values(repo: Path) -> None:
    (repo / "README.md").write_text("2 Spider databases; healthy about 1 s, 163 Spider databases")
    assert _failed(repo) == {
        "README.md: databases": "says 163; data/manifest.json says 2",
        "README.md: health": "says 1; results/docker.json says 2.7",
    }


def test_a_claim_reworded_away_fails(repo: Path) -> None:
    (repo / "README.md").write_text("2 Spider databases; starts quickly")
    assert _failed(repo) == {
        "README.md: health": "no /healthy about ([\\d.]+) s/ in README.md (the claim was "
        "removed or reworded)",
    }


def test_a_missing_results_file_fails_with_the_reason(repo: Path) -> None:
    (repo / "results" / "docker.json").unlink()
    failed = _failed(repo)
    assert set(failed) == {"README.md: health", "docs/b.md: size"}
    assert failed["docs/b.md: size"].startswith(
        "cannot read results.image_size_mb from results/docker.json: "
    )


def test_the_real_claims_point_at_results_files_with_a_command_and_machine() -> None:
    sources = {claim.source for claim in numbers.CLAIMS}
    assert {numbers.ENGINE, numbers.DOCKER, numbers.HOSTILE, numbers.MANIFEST} == sources
