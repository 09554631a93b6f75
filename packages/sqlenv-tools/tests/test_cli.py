from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlenv_tools import cli, image
from sqlenv_tools.findings import find_root

STATIC = ["manifest", "dockerfile", "notebook", "docs", "readme"]


@pytest.fixture(autouse=True)
def _fake_uv_export(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fixture repository has no uv.lock: the export is faked to match its pins."""
    from sqlenv_tools import dockerfile

    monkeypatch.setattr(
        dockerfile, "uv_export", lambda root: (root / "deploy/requirements.txt").read_text()
    )


def test_all_static_groups_pass_on_a_good_repository(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--root", str(repo), *STATIC]) == 0
    out = capsys.readouterr().out
    assert "sqlenv verify" in out
    for group in STATIC:
        assert group in out
    assert "FAIL" not in out
    assert out.strip().splitlines()[-1].endswith(" passed, 0 failed")


def test_a_failure_sets_the_exit_code_and_shows_the_reason(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "docs/blog-outline.md").unlink()
    assert cli.main(["--root", str(repo), "docs", "readme"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out
    assert "missing file docs/blog-outline.md" in out
    assert out.strip().splitlines()[-1] == "5 passed, 1 failed"


def test_json_output(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "deploy/openenv.yaml").write_text("spec_version: 2\n")
    assert cli.main(["--root", str(repo), "--json", "manifest"]) == 1
    findings = json.loads(capsys.readouterr().out)
    assert {
        "group": "manifest",
        "check": "field spec_version",
        "ok": False,
        "reason": "spec_version must be 1, got 2",
    } in findings
    assert {
        "group": "manifest",
        "check": "field name",
        "ok": False,
        "reason": "missing field name (expected name: sql_env)",
    } in findings


def test_unknown_group_is_a_usage_error(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--root", str(repo), "manifesto"])
    assert exc.value.code == 2
    assert "unknown group(s) manifesto" in capsys.readouterr().err


def test_root_is_found_from_a_subdirectory(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo / "docs")
    assert find_root() == repo.resolve()
    assert cli.main(["manifest"]) == 0


def test_no_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        cli.main(["manifest"])
    assert exc.value.code == 2
    assert "no repository root" in capsys.readouterr().err


def test_image_group_without_docker_fails_with_the_reason(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(image.shutil, "which", lambda name: None)
    assert cli.main(["--root", str(repo), "--json", "image"]) == 1
    assert json.loads(capsys.readouterr().out) == [
        {
            "group": "image",
            "check": "docker available",
            "ok": False,
            "reason": "docker CLI not found on PATH",
        }
    ]


def test_image_group_with_an_unreachable_daemon(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "bin" / "docker"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\necho 'Cannot connect to the Docker daemon at "
        "unix:///var/run/docker.sock.' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent))
    (finding,) = image.check(repo)
    assert not finding.ok
    assert finding.reason == (
        "Docker daemon unreachable: Cannot connect to the Docker daemon "
        "at unix:///var/run/docker.sock."
    )


def test_console_script_and_module_entry_points(repo: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sqlenv_tools", "--root", str(repo), "readme"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed, 0 failed" in result.stdout
