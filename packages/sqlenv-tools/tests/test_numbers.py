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
    assert {
        numbers.ENGINE,
        numbers.DOCKER,
        numbers.HOSTILE,
        numbers.SERVER,
        numbers.MANIFEST,
    } == sources


def test_the_server_claims_cover_throughput_ratio_and_p99_at_64_sessions() -> None:
    keys = {(c.doc, c.key) for c in numbers.CLAIMS if c.source == numbers.SERVER}
    assert ("docs/benchmarks.md", "results.sessions.64.throughput_ratio") in keys
    assert ("docs/benchmarks.md", "results.sessions.64.sqlenv-server.p99_ms") in keys


SERVER_CLAIMS = (
    numbers.Claim("ratio", "docs/b.md", r"\*\*([\d.]+)x\*\*", "results/server.json",
                  "results.sessions.64.throughput_ratio", numbers._places(2)),
    numbers.Claim("steps", "docs/b.md", r"steps/s (\d[\d,]*\d)", "results/server.json",
                  "results.sessions.64.sqlenv-server.steps_per_s", numbers._thousands),
    numbers.Claim("delta", "docs/b.md", r"adds ([+-][\d.]+) ms", "results/server.json",
                  "results.servers.sqlenv-server.added_p99_ms", numbers._signed(2)),
    numbers.Claim("load", "docs/b.md", r"load ([\d.]+)", "results/server.json",
                  "machine.load_average_1_5_15.0", numbers._places(1)),
)  # fmt: skip


def test_server_numbers_reach_into_session_counts_lists_and_signs(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "results" / "server.json").write_text(
        json.dumps({
            "machine": {"load_average_1_5_15": [5.347, 5.8, 5.6]},
            "results": {
                "sessions": {"64": {"throughput_ratio": 2.456,
                                    "sqlenv-server": {"steps_per_s": 6040.4}}},
                "servers": {"sqlenv-server": {"added_p99_ms": -0.674}},
            },
        })
    )  # fmt: skip
    doc = tmp_path / "docs" / "b.md"
    doc.write_text("**2.46x**, steps/s 6,040, adds -0.67 ms at load 5.3")
    assert [f.reason for f in numbers.check(tmp_path, SERVER_CLAIMS) if not f.ok] == []
    doc.write_text("**3.27x**, steps/s 6040, adds +0.67 ms at load 5.3")
    assert {f.check: f.reason for f in numbers.check(tmp_path, SERVER_CLAIMS) if not f.ok} == {
        "docs/b.md: ratio": "says 3.27; results/server.json says 2.46",
        "docs/b.md: steps": "says 6040; results/server.json says 6,040",
        "docs/b.md: delta": "says +0.67; results/server.json says -0.67",
    }
