"""The Docker image, for real: build it, run it, play an episode, stop it.

Needs a Docker engine; without one every test here is skipped with the reason (never passed).
Where no image registry or PyPI is reachable, build the local base image (used when it
exists, or name one in SQLENV_BASE_IMAGE) and fill deploy/wheelhouse/ first (DEVELOPERS.md;
.ci/run does both): without them the tests are skipped, saying which is missing. Every
image built here is removed at the end of the session (conftest.py).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from sqlenv_tools import image as img

from .conftest import METRICS, ROOT

_UNAVAILABLE = img.docker_unavailable_reason()
if _UNAVAILABLE is not None:
    pytest.skip(f"no Docker engine: {_UNAVAILABLE}", allow_module_level=True)


def test_image_is_small_and_holds_no_dev_packages(image: str) -> None:
    size = img.image_size(image)
    METRICS["image size"] = f"{size / 1e6:.0f} MB"
    assert size < 300e6, f"{size / 1e6:.0f} MB"
    names = img.installed_distributions(image)
    assert {"sqlenv-core", "sqlenv-server", "uvicorn", "fastapi"} <= set(names)
    banned = {n for n in names if n in img.BANNED_DISTRIBUTIONS or n.startswith("nvidia-")}
    assert not banned


def test_health_within_30_s(server: img.Container) -> None:
    status, body = img.http_get(f"{server.url()}/health")
    assert status == 200
    assert json.loads(body) == {"status": "healthy"}


def test_docker_healthcheck_turns_healthy(server: img.Container) -> None:
    seconds = server.wait_docker_healthy()
    METRICS["docker run to HEALTHCHECK healthy"] = f"{seconds:.1f} s"


def test_websocket_episode_gives_a_numeric_reward_and_done(server: img.Container) -> None:
    result = img.play_episode(server.url())
    assert result.actions[0] == "DESCRIBE"
    assert result.actions[-2:] == ["QUERY", "ANSWER"]
    assert isinstance(result.reward, float | int) and not isinstance(result.reward, bool)
    assert result.done is True
    assert result.terminal == 1.0  # the oracle's answer is judged correct


def test_databases_are_present_and_readable_by_the_non_root_user(server: img.Container) -> None:
    report = img.read_databases(server)
    assert report["uid"] == 1000
    assert report["root"] == "/app/data"
    assert report["files"] == len(list((ROOT / "data" / "databases").glob("*/*.sqlite")))
    assert report["errors"] == []
    # and the user cannot change them
    write = server.exec("python3", "-c", "open('/app/data/manifest.json', 'a')")
    assert write.returncode != 0 and "Permission denied" in write.stderr


def test_sigterm_stops_it_cleanly(image: str) -> None:
    with img.running(image) as container:
        container.wait_health()
        seconds, code = container.stop(timeout=10)
        logs = container.logs()
    METRICS["SIGTERM (docker stop) to exit"] = f"{seconds:.2f} s, exit {code}"
    assert code == 0, logs[-800:]
    assert seconds < 5
    assert "Traceback" not in logs


def test_port_7860_serves_there_and_nothing_listens_on_8000(image: str) -> None:
    with img.running(image, env={"PORT": "7860"}, ports=(7860, 8000)) as container:
        container.wait_health(7860)
        probe = container.exec(
            "python3",
            "-c",
            "import socket; s = socket.socket(); print(s.connect_ex(('127.0.0.1', 8000)))",
        )
        assert probe.returncode == 0
        assert probe.stdout.strip() != "0", "something listens on 8000"
        with pytest.raises(OSError):
            img.http_get(f"{container.url(8000)}/health", timeout=2)
        container.wait_docker_healthy()  # the HEALTHCHECK follows PORT


@pytest.mark.parametrize("value", ["abc", "-1"])
def test_a_bad_port_exits_with_a_clear_message(image: str, value: str) -> None:
    code, stderr = img.run_to_exit(image, {"PORT": value})
    assert code == 2
    assert stderr.strip() == (
        f"sqlenv-server: error: PORT must be a whole number from 1 to 65535, got '{value}'"
    )


def test_verify_image_checks_pass_on_the_image(image: str) -> None:
    """`verify image`'s own checks, on the image built above."""
    failed = {f.check: f.reason for f in img.check_image(image) if not f.ok}
    assert failed == {}


BROKEN_SERVER = """
import http.server, json

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/health"
        body = json.dumps({"status": "healthy"} if ok else {"detail": "Not Found"}).encode()
        self.send_response(200 if ok else 404)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body)

http.server.ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
"""


@pytest.fixture(scope="module")
def broken_image(
    tmp_path_factory: pytest.TempPathFactory, image: str, builds: img.Builds, base_image: str | None
) -> str:
    """A server that answers /health but runs as root, ignores PORT and SIGTERM, has no
    HEALTHCHECK, no data and no /ws."""
    context: Path = tmp_path_factory.mktemp("broken")
    (context / "server.py").write_text(BROKEN_SERVER)
    (context / "Dockerfile").write_text(
        textwrap.dedent("""\
        ARG BASE_IMAGE=python:3.11-slim
        FROM ${BASE_IMAGE}
        COPY server.py /server.py
        CMD ["python3", "/server.py"]
        """)
    )
    built = builds.build(
        context, "sqlenv-broken-test", base_image=base_image, dockerfile=context / "Dockerfile"
    )
    assert built.ok, built.log[-2000:]
    return built.tag


def test_verify_image_checks_catch_a_broken_image(broken_image: str) -> None:
    findings = img.check_image(broken_image, stop_timeout=2, health_timeout=4, exit_timeout=4)
    failed = {f.check: f.reason for f in findings if not f.ok}
    assert failed == {
        "Docker HEALTHCHECK": "RuntimeError: the image has no HEALTHCHECK",
        "non-root, databases readable": "the server runs as root (uid 0)",
        "WebSocket episode": "RuntimeError: GET /web/api/questions: 404",
        "SIGTERM stops cleanly": failed["SIGTERM stops cleanly"],
        "PORT=7860": "nothing answered /health on 7860 within 4 s",
        "PORT=abc rejected": "the container kept running instead of exiting",
        "PORT=-1 rejected": "the container kept running instead of exiting",
    }
    assert failed["SIGTERM stops cleanly"].startswith("killed after the stop timeout")
    passed = {f.check for f in findings if f.ok}
    assert passed == {"size", "no dev packages", "healthy within 30 s"}


def test_the_space_folder_builds_and_serves(
    image: str, tmp_path: Path, builds: img.Builds, base_image: str | None
) -> None:
    """scripts/publish_space.py's folder (Dockerfile at the root, the Space root as the
    context) builds with the same Dockerfile, unchanged, and serves. The wheels of
    deploy/wheelhouse/ are added when there are any, because this machine's build has no
    PyPI; a Space has, and its folder has no wheels."""
    import shutil
    import subprocess
    import sys

    space = tmp_path / "space"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "publish_space.py"), "--out", str(space)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (space / "Dockerfile").read_bytes() == (ROOT / "deploy" / "Dockerfile").read_bytes()
    front = (space / "README.md").read_text().split("---")[1]
    assert {"sdk: docker", "app_port: 8000", "base_path: /web"} <= set(front.splitlines())
    for wheel in (ROOT / "deploy" / "wheelhouse").glob("*.whl"):
        shutil.copy2(wheel, space / "deploy" / "wheelhouse")
    built = builds.build(
        space, "sqlenv-space-test", base_image=base_image, dockerfile=space / "Dockerfile"
    )
    assert built.ok, built.log[-3000:]
    with img.running(built.tag) as container:
        container.wait_health()
        assert img.read_databases(container)["errors"] == []
