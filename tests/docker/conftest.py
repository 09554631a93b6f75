"""The image built once per session from deploy/Dockerfile, and the numbers the tests measure,
printed at the end of the run (size, cold start, SIGTERM)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlenv_tools import image as img

ROOT = Path(__file__).resolve().parents[2]
TAG = "sqlenv:test"
METRICS: dict[str, str] = {}


@pytest.fixture(scope="session")
def image() -> str:
    """``docker build -f deploy/Dockerfile``; BASE_IMAGE from $SQLENV_BASE_IMAGE, else the
    local base image of deploy/build-base-image.sh when there is one, else the default."""
    base = img.resolve_base_image()
    built = img.build_image(ROOT, TAG, base_image=base)
    tail = "\n".join(built.log.strip().splitlines()[-15:])
    assert built.ok, (
        f"docker build failed (BASE_IMAGE={base or 'default'}; where no registry is reachable, "
        f"set SQLENV_BASE_IMAGE, see DEVELOPERS.md):\n{tail}"
    )
    METRICS["build"] = f"{built.seconds:.0f} s (BASE_IMAGE={base or 'default'})"
    return TAG


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
