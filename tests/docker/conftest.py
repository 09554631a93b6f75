"""The image built once per session from deploy/Dockerfile, and the numbers the tests measure,
printed at the end of the run (size, cold start, SIGTERM).

Every image a test builds gets a unique tag (other runs may share the engine) and is removed
at the end of the session with the layers its build created; containers are removed by
``img.running``. Where the build cannot work (no base image, no wheels and no PyPI inside a
container) the tests that need the image are skipped with that reason, found before building.
A base image pulled for the session is removed at its end too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlenv_tools import image as img

ROOT = Path(__file__).resolve().parents[2]
METRICS: dict[str, str] = {}


@pytest.fixture(scope="session")
def builds() -> Iterator[img.Builds]:
    """The session's images; all removed at its end, with the layers their builds made."""
    made = img.Builds()
    try:
        yield made
    finally:
        made.remove_all()


@pytest.fixture(scope="session")
def base_image() -> str | None:
    """BASE_IMAGE from $SQLENV_BASE_IMAGE, else the local base image of
    deploy/build-base-image.sh when there is one, else None (the Dockerfile's default)."""
    return img.resolve_base_image()


@pytest.fixture(scope="session")
def image(builds: img.Builds, base_image: str | None) -> str:
    """``docker build -f deploy/Dockerfile``, or a skip saying what this machine lacks."""
    blocker = img.build_blocker(ROOT, base_image, builds)
    if blocker is not None:
        pytest.skip(f"cannot build deploy/Dockerfile here: {blocker}")
    built = builds.build(ROOT, "sqlenv-test", base_image=base_image)
    tail = "\n".join(built.log.strip().splitlines()[-15:])
    assert built.ok, f"docker build failed (BASE_IMAGE={base_image or 'default'}):\n{tail}"
    METRICS["build"] = f"{built.seconds:.0f} s (BASE_IMAGE={base_image or 'default'})"
    return built.tag


@pytest.fixture(scope="module")
def server(image: str) -> Iterator[img.Container]:
    """One running container (port 8000) shared by the read-only tests."""
    with img.running(image) as container:
        seconds = container.wait_health()
        METRICS["cold start: docker run to /health 200"] = f"{seconds:.2f} s"
        yield container


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if METRICS:
        terminalreporter.section("Docker image")
        for key, value in METRICS.items():
            terminalreporter.write_line(f"{key}: {value}")
