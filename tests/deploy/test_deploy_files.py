"""`verify manifest` and `verify dockerfile` on the repository's own files, so a change to
deploy/, or to uv.lock without a new deploy/requirements.txt, fails the ordinary test run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlenv_tools import dockerfile, manifest

ROOT = Path(__file__).resolve().parents[2]


def test_the_manifest_passes() -> None:
    assert {f.check: f.reason for f in manifest.check(ROOT) if not f.ok} == {}


@pytest.mark.skipif(shutil.which("uv") is None, reason="uv not on PATH: cannot export uv.lock")
def test_the_dockerfile_passes_and_its_requirements_match_uv_lock() -> None:
    assert {f.check: f.reason for f in dockerfile.check(ROOT) if not f.ok} == {}


def test_the_space_files_agree_with_the_manifest() -> None:
    readme = (ROOT / "deploy" / "space" / "README.md").read_text()
    front = readme.split("---")[1]
    assert "sdk: docker" in front
    assert "app_port: 8000" in front
    assert "base_path: /web" in front
    assert (ROOT / ".dockerignore").resolve() == (ROOT / "deploy" / ".dockerignore").resolve()
