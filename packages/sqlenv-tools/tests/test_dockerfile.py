from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlenv_tools import dockerfile
from sqlenv_tools.findings import Finding

Write = Callable[[str, str], Path]
PATH = "deploy/Dockerfile"


def same_as_file(root: Path) -> str:
    return (root / "deploy/requirements.txt").read_text()


def failing(findings: list[Finding]) -> dict[str, str]:
    return {f.check: f.reason for f in findings if not f.ok}


def run(repo: Path, exporter: Callable[[Path], str | None] = same_as_file) -> dict[str, str]:
    return failing(dockerfile.check(repo, exporter=exporter))


def test_good_dockerfile_passes(repo: Path) -> None:
    findings = dockerfile.check(repo, exporter=same_as_file)
    assert failing(findings) == {}
    assert len(findings) == 10


def test_missing_file(tmp_path: Path) -> None:
    (finding,) = dockerfile.check(tmp_path)
    assert finding.reason.startswith("missing file deploy/Dockerfile")


BROKEN = [
    # (replace this, with this, the check that fails, its reason)
    (
        "ARG BASE_IMAGE=python:3.11-slim\n",
        "",
        "BASE_IMAGE argument",
        "no ARG BASE_IMAGE before the first FROM",
    ),
    (
        "ARG BASE_IMAGE=python:3.11-slim",
        "ARG BASE_IMAGE",
        "BASE_IMAGE argument",
        "ARG BASE_IMAGE has no default, so a plain docker build (a Space) fails",
    ),
    (
        "FROM ${BASE_IMAGE}\n",
        "FROM python:3.12-slim\n",
        "BASE_IMAGE argument",
        "FROM python:3.12-slim (line 12) does not use ${BASE_IMAGE}",
    ),
    (
        "RUN python3 -m venv /opt/venv",
        "RUN --mount=type=cache,target=/root/.cache true",
        "classic builder",
        "line 4: RUN --mount needs BuildKit",
    ),
    (
        "COPY data/ /app/data/",
        "COPY --chmod=644 data/ /app/data/",
        "classic builder",
        "line 10: COPY --chmod needs BuildKit",
    ),
    (
        "RUN python3 -m venv /opt/venv",
        "RUN <<EOF\npython3 -m venv /opt/venv\nEOF",
        "classic builder",
        "line 4: a heredoc needs BuildKit",
    ),
    (
        'CMD ["sqlenv-server"]',
        'CMD ["sqlenv-server", "--port", "8000"]',
        "PORT with fallback 8000",
        "the command hard-codes the port",
    ),
    (
        "    PORT=8000 \\\n",
        "",
        "PORT with fallback 8000",
        "no ENV PORT=8000 fallback in the final stage",
    ),
    (
        "    PORT=8000 \\\n",
        "    PORT=7860 \\\n",
        "PORT with fallback 8000",
        "ENV PORT=7860 in the final stage, expected 8000",
    ),
    (
        'CMD ["sqlenv-server"]',
        'CMD ["uvicorn", "sqlenv_server.app:app"]',
        "PORT with fallback 8000",
        "neither uses $PORT nor runs sqlenv-server",
    ),
    (
        'CMD ["sqlenv-server"]',
        "CMD sqlenv-server --port ${PORT:-8000}",
        "signals reach the server",
        "shell-form command: /bin/sh is PID 1",
    ),
    (
        'CMD ["sqlenv-server"]',
        'CMD ["sh", "-c", "sqlenv-server --port ${PORT:-8000}"]',
        "signals reach the server",
        "sh -c without exec",
    ),
    ("USER 1000\n", "", "non-root USER", "no USER in the final stage: the server runs as root"),
    ("USER 1000\n", "USER root\n", "non-root USER", "USER root (line 19) is root"),
    ("USER 1000\n", "USER 1001\n", "non-root USER", "USER 1001: Hugging Face Spaces run uid 1000"),
    (
        "USER 1000\n",
        "USER app\n",
        "non-root USER",
        "USER app: no useradd creating 'app' with uid 1000 in the final stage",
    ),
    (
        "COPY --from=builder /app/data /app/data\n",
        "",
        "databases copied in",
        "the final stage copies in no data/ (the databases)",
    ),
    (
        "SQLENV_DATA_DIR=/app/data",
        "SQLENV_DATA_DIR=/data",
        "databases copied in",
        "SQLENV_DATA_DIR=/data but the data is copied to /app/data",
    ),
    (
        "    SQLENV_DATA_DIR=/app/data\n",
        "    HOME=/root\n",
        "databases copied in",
        "SQLENV_DATA_DIR is not set",
    ),
    ("HEALTHCHECK", "# HEALTHCHECK", "HEALTHCHECK on /health", "no HEALTHCHECK in the final stage"),
    ("/health'", "/metadata'", "HEALTHCHECK on /health", "does not probe /health"),
    ("os.environ['PORT']", "8000", "HEALTHCHECK on /health", "ignores PORT"),
    (
        "./packages/sqlenv-core",
        "pytest ./packages/sqlenv-core",
        "no dev packages",
        "line 8: installs pytest",
    ),
    (
        "RUN python3 -m venv /opt/venv",
        "RUN pip install uv && uv sync --frozen",
        "no dev packages",
        "line 4: uv sync without --no-dev installs the dev group",
    ),
    (
        "RUN python3 -m venv /opt/venv",
        "RUN uv sync --frozen --no-dev --group dev",
        "no dev packages",
        "installs a dev group or extra (--group dev)",
    ),
    (
        "RUN useradd",
        "RUN pip install torch && useradd",
        "no dev packages",
        "line 13: installs torch",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "check", "reason"), BROKEN, ids=[f"{c}: {r[:40]}" for _, _, c, r in BROKEN]
)
def test_broken_dockerfiles_are_caught(
    repo: Path, write: Write, good: dict[str, str], old: str, new: str, check: str, reason: str
) -> None:
    assert old in good[PATH]
    write(PATH, good[PATH].replace(old, new, 1))
    reasons = run(repo)
    assert check in reasons, reasons
    assert reason in reasons[check]


def test_single_stage_is_caught(repo: Path, write: Write) -> None:
    write(
        PATH,
        'ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\nUSER 1000\nCMD ["sqlenv-server"]\n',
    )
    assert run(repo)["multi-stage"] == "one stage: build tools end up in the image"


def test_requirement_files_are_read(repo: Path, write: Write, good: dict[str, str]) -> None:
    write("deploy/requirements.txt", good["deploy/requirements.txt"] + "pytest==8.3.0\n")
    assert run(repo)["no dev packages"] == (
        "line 8: installs pytest (deploy/requirements.txt line 5)"
    )


def test_a_named_user_with_uid_1000_passes(repo: Path, write: Write, good: dict[str, str]) -> None:
    write(PATH, good[PATH].replace("USER 1000\n", "USER sqlenv\n"))
    assert run(repo) == {}


def test_shell_form_with_port_fallback_and_exec_passes(
    repo: Path, write: Write, good: dict[str, str]
) -> None:
    cmd = 'CMD ["/bin/sh", "-c", "exec sqlenv-server --port ${PORT:-8000}"]'
    write(PATH, good[PATH].replace('CMD ["sqlenv-server"]', cmd))
    assert run(repo) == {}


def test_requirements_must_match_the_lock(repo: Path) -> None:
    stale = run(repo, lambda root: "fastapi==0.116.0\nuvicorn==0.30.0\n")
    reason = stale["requirements match uv.lock"]
    assert reason.startswith(
        "deploy/requirements.txt is stale (not in uv.lock: fastapi==0.115.0; "
        "missing: fastapi==0.116.0); run: uv export"
    )
    assert run(repo, lambda root: None)["requirements match uv.lock"] == (
        "uv not found: cannot compare with uv.lock"
    )
    (repo / "deploy/requirements.txt").unlink()
    assert run(repo)["requirements match uv.lock"].startswith(
        "missing file deploy/requirements.txt; make it with: uv export"
    )


def test_a_failing_export_is_reported(repo: Path) -> None:
    def broken(root: Path) -> str:
        raise RuntimeError("error: the lock file needs to be updated")

    assert run(repo, broken)["requirements match uv.lock"] == (
        "uv export failed: error: the lock file needs to be updated"
    )
