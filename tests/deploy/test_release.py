"""What makes the packages publishable, checked on the repository's files: each package
has its metadata, the ranges between our packages include the versions beside them, the
release workflow and docs/releasing.md cover every package, and CI builds and smoke-tests
the wheels. scripts/check_wheels.sh does the building and installing itself."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").is_file())


def _project(package: Path) -> dict:
    return dict(tomllib.loads((package / "pyproject.toml").read_text())["project"])


def _versions() -> dict[str, str]:
    return {_project(p)["name"]: _project(p)["version"] for p in PACKAGES}


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_each_package_has_what_pypi_shows(package: Path) -> None:
    project = _project(package)
    assert project["name"] == package.name
    assert project["version"] and project["description"] and project["license"]
    assert (package / project["readme"]).is_file()
    assert (package / "LICENSE").is_file()
    assert project["requires-python"] == ">=3.11"


def test_ranges_between_our_packages_include_the_versions_beside_them() -> None:
    versions = _versions()
    checked = 0
    for package in PACKAGES:
        project = _project(package)
        requirements = list(project.get("dependencies", []))
        for extra in project.get("optional-dependencies", {}).values():
            requirements += extra
        for text in requirements:
            requirement = Requirement(text)
            if requirement.name in versions:
                assert requirement.specifier.contains(versions[requirement.name]), (
                    f"{package.name}: {text} excludes {versions[requirement.name]}"
                )
                checked += 1
    assert checked >= 4  # server and client on core, core[data] on data, server[data]


def test_the_release_workflow_publishes_one_tagged_package_after_the_checks() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    assert workflow[True]["push"]["tags"] == ["sqlenv-*-v*"]  # YAML reads `on` as True
    build = "\n".join(str(s.get("run", "")) for s in workflow["jobs"]["build"]["steps"])
    assert "scripts/check_wheels.sh" in build
    publish = workflow["jobs"]["publish"]
    assert publish["needs"] == "build"
    assert publish["permissions"] == {"id-token": "write"}
    assert any("pypi-publish" in str(s.get("uses", "")) for s in publish["steps"])


def test_releasing_md_and_ci_cover_every_package() -> None:
    doc = (ROOT / "docs" / "releasing.md").read_text()
    for name in _versions():
        assert f"`{name}`" in doc
    assert "<name>-v<version>" in doc
    assert "scripts/check_wheels.sh" in (ROOT / ".ci" / "run").read_text()
    ci = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    assert set(ci["jobs"]["package"]["strategy"]["matrix"]["package"]) == set(_versions())
