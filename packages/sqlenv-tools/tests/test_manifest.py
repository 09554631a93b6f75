from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlenv_tools import manifest
from sqlenv_tools.findings import Finding

Write = Callable[[str, str], Path]


def failing(findings: list[Finding]) -> dict[str, str]:
    return {f.check: f.reason for f in findings if not f.ok}


def test_good_manifest_passes(repo: Path) -> None:
    findings = manifest.check(repo)
    assert failing(findings) == {}
    assert {f.check for f in findings} >= {f"field {k}" for k in manifest.EXPECTED}


def test_missing_file(tmp_path: Path) -> None:
    (finding,) = manifest.check(tmp_path)
    assert not finding.ok
    assert finding.reason.startswith("missing file deploy/openenv.yaml")


@pytest.mark.parametrize("field", list(manifest.EXPECTED))
def test_a_missing_field_is_named(
    repo: Path, write: Write, good: dict[str, str], field: str
) -> None:
    text = "\n".join(
        line
        for line in good["deploy/openenv.yaml"].splitlines()
        if not line.startswith(f"{field}:")
    )
    write("deploy/openenv.yaml", text)
    reasons = failing(manifest.check(repo))
    assert reasons[f"field {field}"].startswith(f"missing field {field}")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("spec_version: 2", "spec_version must be 1, got 2"),
        ("spec_version: '1'", "spec_version must be 1, got '1'"),
        ("spec_version: 1.0", "spec_version must be 1, got 1.0"),
        ("name: sqlenv", "name must be 'sql_env', got 'sqlenv'"),
        ("type: docker", "type must be 'space', got 'docker'"),
        ("runtime: flask", "runtime must be 'fastapi', got 'flask'"),
        ("app: server.app:app", "app must be 'sqlenv_server.app:app', got 'server.app:app'"),
        ("port: 7860", "port must be 8000, got 7860"),
        ("port: '8000'", "port must be 8000, got '8000'"),
    ],
)
def test_wrong_values_are_rejected(
    repo: Path, write: Write, good: dict[str, str], line: str, reason: str
) -> None:
    key = line.split(":")[0]
    text = "\n".join(
        line if old.startswith(f"{key}:") else old
        for old in good["deploy/openenv.yaml"].splitlines()
    )
    write("deploy/openenv.yaml", text)
    assert failing(manifest.check(repo))[f"field {key}"] == reason


def test_unknown_fields_are_rejected(repo: Path, write: Write, good: dict[str, str]) -> None:
    write("deploy/openenv.yaml", good["deploy/openenv.yaml"] + "entrypoint: main\nauthor: me\n")
    reason = failing(manifest.check(repo))["no unknown fields"]
    assert reason.startswith("unknown field(s) author, entrypoint; OpenEnv documents")


def test_documented_optional_fields_are_allowed(
    repo: Path, write: Write, good: dict[str, str]
) -> None:
    write("deploy/openenv.yaml", good["deploy/openenv.yaml"] + "variables: {LOG: info}\n")
    assert failing(manifest.check(repo)) == {}


def test_missing_validation_block(repo: Path, write: Write, good: dict[str, str]) -> None:
    write("deploy/openenv.yaml", good["deploy/openenv.yaml"].split("validation:")[0])
    assert failing(manifest.check(repo))["validation block"].startswith(
        "missing field validation (openenv validate 0.10 fails without it)"
    )


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (
            "memory_mb: 1024",
            "memory_mb: 0",
            "validation.resources.memory_mb must be a positive number, got 0",
        ),
        (
            "episode_timeout_s: 300.0",
            "episode_timeout_s: 7200",
            "episode_timeout_s must be at most 3600",
        ),
        (
            "kind: reward_channel",
            "kind: vibes",
            "verifier.kind must be reward_channel or script, got 'vibes'",
        ),
        ("tags: [text-to-sql]", "tags: []", "validation.types.tags must be a non-empty list"),
        ("range: [-0.2, 1.0]", "range: [1.0, 0.0]", "validation.reward.range must be [low, high]"),
        ("floor_margin: 0.1", "floor_margin: 0.01", "floor_margin must be at least 0.1"),
        ("  types:", "  colour: red\n  types:", "unknown section(s) colour"),
    ],
)
def test_bad_validation_block(
    repo: Path, write: Write, good: dict[str, str], old: str, new: str, reason: str
) -> None:
    assert old in good["deploy/openenv.yaml"]
    write("deploy/openenv.yaml", good["deploy/openenv.yaml"].replace(old, new))
    assert reason in failing(manifest.check(repo))["validation block"]


def test_app_must_resolve_to_a_module_binding_app(repo: Path, write: Write) -> None:
    write("packages/sqlenv-server/src/sqlenv_server/app.py", "def create_app(): ...\n")
    assert failing(manifest.check(repo))["app resolves"] == (
        "packages/sqlenv-server/src/sqlenv_server/app.py binds no top-level 'app'"
    )
    (repo / "packages/sqlenv-server/src/sqlenv_server/app.py").unlink()
    assert failing(manifest.check(repo))["app resolves"].startswith(
        "no module file packages/*/src/sqlenv_server/app.py"
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [("- a\n- b\n", "the manifest is not a YAML mapping"), ("name: [unclosed\n", "not valid YAML")],
)
def test_not_a_mapping(repo: Path, write: Write, text: str, reason: str) -> None:
    write("deploy/openenv.yaml", text)
    assert failing(manifest.check(repo))["valid YAML"].startswith(reason)
