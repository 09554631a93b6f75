"""``build_blocker`` and ``Builds`` against a scripted ``docker``: the reasons a build cannot
work here, and the cleanup that leaves no image or layer of ours behind (and nobody else's
touched). tests/docker runs them against a real engine."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlenv_tools import image

Script = Callable[[tuple[str, ...]], tuple[int, str, str]]


@pytest.fixture
def docker(monkeypatch: pytest.MonkeyPatch) -> Callable[[Script], list[tuple[str, ...]]]:
    """Replace ``run_docker`` with ``script(args) -> (code, stdout, stderr)``; returns the
    list of calls it received."""

    def install(script: Script) -> list[tuple[str, ...]]:
        calls: list[tuple[str, ...]] = []

        def fake(*args: str, **_: object) -> subprocess.CompletedProcess[str]:
            calls.append(args)
            code, out, err = script(args)
            return subprocess.CompletedProcess(["docker", *args], code, out, err)

        monkeypatch.setattr(image, "run_docker", fake)
        return calls

    return install


def _repo(tmp_path: Path, wheels: bool) -> Path:
    (tmp_path / "deploy" / "wheelhouse").mkdir(parents=True)
    if wheels:
        (tmp_path / "deploy" / "wheelhouse" / "x-1-py3-none-any.whl").write_bytes(b"")
    return tmp_path


def test_a_base_image_that_cannot_be_pulled_is_named_with_what_to_do(
    tmp_path: Path, docker
) -> None:
    def script(args: tuple[str, ...]) -> tuple[int, str, str]:
        if args[:2] == ("image", "inspect"):
            return 1, "", "No such image"
        if args[0] == "pull":
            return 1, "", "Error response from daemon: Get https://registry-1.docker.io: timeout"
        return 0, "", ""

    docker(script)
    reason = image.build_blocker(_repo(tmp_path, wheels=True), None)
    assert reason == (
        "the base image python:3.11-slim is not on this Docker engine and cannot be pulled "
        "(Error response from daemon: Get https://registry-1.docker.io: timeout): where no "
        "registry is reachable, deploy/build-base-image.sh (then it is used, or name one in "
        "SQLENV_BASE_IMAGE; DEVELOPERS.md)"
    )


def test_a_base_image_pulled_for_the_builds_is_removed_with_them_last(
    tmp_path: Path, docker
) -> None:
    def script(args: tuple[str, ...]) -> tuple[int, str, str]:
        if args[:2] == ("image", "inspect"):
            return 1, "", "No such image"
        if args[0] == "images":
            return 0, "", ""
        if args[0] == "build":
            return 0, BUILD_LOG, ""
        return 0, "", ""

    calls = docker(script)
    builds = image.Builds()
    assert image.build_blocker(_repo(tmp_path, wheels=True), "base:1", builds) is None
    built = builds.build(tmp_path, "sqlenv-test")
    builds.remove_all()
    removed = [c[1] for c in calls if c[0] == "rmi"]
    assert removed[0] == built.tag and removed[-1] == "base:1"


def test_wheels_in_the_house_need_no_pypi(tmp_path: Path, docker) -> None:
    calls = docker(lambda args: (0, "", ""))
    assert image.build_blocker(_repo(tmp_path, wheels=True), "base:1") is None
    assert [c[0] for c in calls] == ["image"]  # no probe container


def test_no_wheels_and_no_pypi_in_a_container_is_the_reason(tmp_path: Path, docker) -> None:
    def script(args: tuple[str, ...]) -> tuple[int, str, str]:
        if args[0] == "run":
            return 1, "", "URLError: <urlopen error [Errno -3] name resolution>\n"
        return 0, "", ""

    calls = docker(script)
    reason = image.build_blocker(_repo(tmp_path, wheels=False), "base:1")
    assert reason == (
        "deploy/wheelhouse/ holds no wheels and a container of base:1 cannot reach PyPI "
        "(URLError: <urlopen error [Errno -3] name resolution>): run "
        "deploy/build-wheelhouse.sh first (DEVELOPERS.md)"
    )
    run = next(c for c in calls if c[0] == "run")
    name = run[run.index("--name") + 1]
    assert ("rm", "-f", name) in calls  # the probe container is removed


def test_no_wheels_but_pypi_reachable_builds(tmp_path: Path, docker) -> None:
    docker(lambda args: (0, "", ""))
    assert image.build_blocker(_repo(tmp_path, wheels=False), "base:1") is None


BUILD_LOG = """Step 1/4 : FROM base:1 AS builder
 ---> 111111111111
Step 2/4 : RUN make
 ---> Using cache
 ---> 222222222222
Step 3/4 : FROM base:1
 ---> 111111111111
Step 4/4 : COPY --from=builder /x /x
 ---> Running in 999999999999
Removing intermediate container 999999999999
 ---> 333333333333
Successfully built 333333333333
Successfully tagged t:x
"""


def test_builds_use_unique_tags_and_remove_only_the_layers_they_made(
    tmp_path: Path, docker
) -> None:
    existing = "sha256:111111111111aaaa\nsha256:222222222222bbbb\n"

    def script(args: tuple[str, ...]) -> tuple[int, str, str]:
        if args[0] == "images":
            return 0, existing, ""
        if args[0] == "build":
            assert "--force-rm" in args  # a failed step leaves no container
            return 0, BUILD_LOG, ""
        return 0, "", ""

    calls = docker(script)
    builds = image.Builds()
    first = builds.build(tmp_path, "sqlenv-test")
    second = builds.build(tmp_path, "sqlenv-test")
    assert first.ok and first.tag.startswith("sqlenv-test:") and first.tag != second.tag
    builds.remove_all()
    removed = [c[1] for c in calls if c[0] == "rmi"]
    # tags first, then the layers the builds created; the base and the cached layer stay
    assert removed == [second.tag, first.tag, "333333333333"]
    assert builds.tags == [] and builds.layers == []
