"""uv.lock installs on any machine: every package it pins comes from PyPI (or is a workspace
member), never a local folder or index of this machine (torch once came from /opt/wheels).
A CPU torch is an opt-in: scripts/sync-train-cpu.sh, docs/training.md."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPI = "https://pypi.org/simple"


def _packages() -> list[dict]:
    return list(tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))["package"])


def test_every_locked_package_comes_from_pypi_or_the_workspace() -> None:
    elsewhere = {}
    for package in _packages():
        source = package["source"]
        if source.get("registry") == PYPI:
            continue
        if "editable" in source or "virtual" in source:
            assert source.get("editable", source.get("virtual", "")).startswith("packages/")
            continue
        elsewhere[package["name"]] = source
    assert elsewhere == {}


def test_no_file_in_the_lock_points_at_this_machine() -> None:
    text = (ROOT / "uv.lock").read_text(encoding="utf-8")
    assert "/opt/" not in text and "file://" not in text


def test_the_train_group_locks_torch_at_the_version_the_cpu_script_installs() -> None:
    (torch,) = [p for p in _packages() if p["name"] == "torch"]
    script = (ROOT / "scripts" / "sync-train-cpu.sh").read_text()
    assert '"torch==${version}+cpu"' in script  # the locked version, as a CPU build
    assert torch["version"] == "2.13.0"  # the CPU wheel CI installs (/opt/wheels)
