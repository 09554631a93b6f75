"""The Docker image, built and run for real: what a judge's ``docker run`` will see.

``check(root)`` builds ``deploy/Dockerfile`` (``--build-arg BASE_IMAGE`` from
:func:`resolve_base_image`: ``$SQLENV_BASE_IMAGE``, else the local base image of
``deploy/build-base-image.sh`` when it exists), then checks: size, no dev packages inside, ``/health`` 200 within 30 s
(goal 5 s), Docker's own HEALTHCHECK turning healthy, uid 1000, every ``.sqlite`` file
readable by that user, a WebSocket episode (reset → DESCRIBE → QUERY → ANSWER) with a
numeric reward and ``done``, a clean exit on SIGTERM, ``PORT=7860`` served on 7860 with
nothing on 8000, and ``PORT=abc`` / ``PORT=-1`` stopped with a clear message.

The helpers (:class:`Container`, :func:`build_image`, :func:`play_episode`, ...) are
shared with the Docker integration tests in ``tests/docker``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .findings import Finding

__all__ = [
    "DEFAULT_TAG",
    "BuildResult",
    "Builds",
    "Container",
    "DockerUnavailable",
    "EpisodeResult",
    "build_blocker",
    "build_image",
    "check",
    "check_image",
    "docker_unavailable_reason",
    "http_get",
    "image_size",
    "installed_distributions",
    "play_episode",
    "read_databases",
    "resolve_base_image",
    "run_docker",
    "run_to_exit",
    "running",
]

GROUP = "image"
DEFAULT_TAG = "sqlenv:verify"
LOCAL_BASE_IMAGE = "sqlenv-base:bookworm"
"""What ``deploy/build-base-image.sh`` builds where no image registry is reachable."""
DEFAULT_BASE_IMAGE = "python:3.11-slim"
"""deploy/Dockerfile's own ``ARG BASE_IMAGE`` default."""
PYPI_PROBE_URL = "https://pypi.org/simple/pip/"
SIZE_GOAL_BYTES = 300 * 1000 * 1000  # docker's MB
HEALTH_LIMIT_S = 30.0
START_GOAL_S = 5.0
STOP_GOAL_S = 5.0
STOP_TIMEOUT_S = 10
BUILD_TIMEOUT_S = 1200
BANNED_DISTRIBUTIONS = (
    "pytest",
    "hypothesis",
    "ruff",
    "mypy",
    "torch",
    "triton",
    "transformers",
    "trl",
    "ipykernel",
    "jupyter",
    "notebook",
    "sqlenv-client",
    "sqlenv-tools",
)


class DockerUnavailable(RuntimeError):
    """No docker CLI, or no daemon answering it."""


def run_docker(
    *args: str, timeout: float = 60, check: bool = False, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    docker = shutil.which("docker")
    if docker is None:
        raise DockerUnavailable("docker CLI not found on PATH")
    return subprocess.run(
        [docker, *args], capture_output=True, text=True, timeout=timeout, check=check, input=input
    )


def resolve_base_image(explicit: str | None = None) -> str | None:
    """The ``BASE_IMAGE`` build argument: ``explicit``, else ``$SQLENV_BASE_IMAGE``, else the
    local base image when it exists, else None (the Dockerfile's default). An empty string
    means the default."""
    for choice in (explicit, os.environ.get("SQLENV_BASE_IMAGE")):
        if choice is not None:
            return choice or None
    with contextlib.suppress(subprocess.SubprocessError, DockerUnavailable):
        if run_docker("image", "inspect", LOCAL_BASE_IMAGE, timeout=30).returncode == 0:
            return LOCAL_BASE_IMAGE
    return None


def docker_unavailable_reason() -> str | None:
    """None when ``docker`` works, else why not (for skip messages and findings)."""
    if shutil.which("docker") is None:
        return "docker CLI not found on PATH"
    try:
        result = run_docker("info", "--format", "{{.ServerVersion}}", timeout=20)
    except subprocess.TimeoutExpired:
        return "docker info timed out: is the daemon running?"
    if result.returncode != 0 or not result.stdout.strip():
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return f"Docker daemon unreachable: {last}"
    return None


@dataclass
class BuildResult:
    ok: bool
    seconds: float
    log: str
    tag: str = ""


_LAYER_ID = re.compile(r"^ ---> ([0-9a-f]{12})$|^Successfully built ([0-9a-f]{12})$", re.M)


def build_image(
    root: Path,
    tag: str = DEFAULT_TAG,
    *,
    base_image: str | None = None,
    dockerfile: Path | None = None,
    timeout: float = BUILD_TIMEOUT_S,
) -> BuildResult:
    """``docker build --force-rm -f DOCKERFILE [--build-arg BASE_IMAGE=...] -t tag root``
    (``DOCKERFILE``: ``root/deploy/Dockerfile`` unless given). ``--force-rm``: a failed
    step leaves no stopped container behind."""
    dockerfile = dockerfile or root / "deploy" / "Dockerfile"
    args = ["build", "--force-rm", "-f", str(dockerfile), "-t", tag]
    if base_image:
        args += ["--build-arg", f"BASE_IMAGE={base_image}"]
    started = time.monotonic()
    result = run_docker(*args, str(root), timeout=timeout)
    return BuildResult(
        result.returncode == 0, time.monotonic() - started, result.stdout + result.stderr, tag
    )


def _image_ids() -> set[str]:
    """Every image id on the engine, intermediate layers included (``sha256:...``)."""
    result = run_docker("images", "--all", "--quiet", "--no-trunc", timeout=60, check=True)
    return set(result.stdout.split())


@dataclass
class Builds:
    """Images built under unique tags (so parallel runs on one engine never share a tag),
    removed together by :meth:`remove_all` with every layer their builds created: the
    classic builder keeps each step's image, and a multi-stage build's first stage stays
    behind as an untagged image once the final one is gone. Layers that existed before a
    build (a cache another build made) are never touched, and nothing is forced: an image
    that someone else has since used stays."""

    tags: list[str] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)
    pulled: list[str] = field(default_factory=list)
    """Base images :func:`build_blocker` pulled for these builds: removed last."""

    def build(
        self,
        root: Path,
        name: str,
        *,
        base_image: str | None = None,
        dockerfile: Path | None = None,
        timeout: float = BUILD_TIMEOUT_S,
    ) -> BuildResult:
        before = _image_ids()
        tag = f"{name}:{uuid.uuid4().hex[:12]}"
        self.tags.append(tag)
        built = build_image(
            root, tag, base_image=base_image, dockerfile=dockerfile, timeout=timeout
        )
        for match in _LAYER_ID.finditer(built.log):
            short = match.group(1) or match.group(2)
            if short not in self.layers and not any(
                full.startswith(f"sha256:{short}") for full in before
            ):
                self.layers.append(short)
        return built

    def remove_all(self) -> None:
        for ref in [*reversed(self.tags), *reversed(self.layers), *reversed(self.pulled)]:
            with contextlib.suppress(subprocess.SubprocessError, DockerUnavailable):
                run_docker("rmi", ref, timeout=120)
        self.tags.clear()
        self.layers.clear()
        self.pulled.clear()


_PROBE_PYPI = (
    "import sys, urllib.request\n"
    "try:\n"
    "    urllib.request.urlopen(sys.argv[1], timeout=10)\n"
    "except Exception as exc:\n"
    "    sys.exit(f'{type(exc).__name__}: {exc}')\n"
)


def build_blocker(root: Path, base_image: str | None, builds: Builds | None = None) -> str | None:
    """Why ``deploy/Dockerfile`` cannot build here, found in seconds instead of by a failed
    build; None when nothing is in the way. It needs its base image (on the engine, or
    pulled now: with ``builds`` given, a pulled image is removed with them) and, when
    ``deploy/wheelhouse/`` holds no wheels, PyPI reachable from inside a container of it."""
    base = base_image or DEFAULT_BASE_IMAGE
    if run_docker("image", "inspect", base, timeout=30).returncode != 0:
        try:
            pull = run_docker("pull", "--quiet", base, timeout=600)
        except subprocess.TimeoutExpired:
            pull = subprocess.CompletedProcess([], 1, "", "no answer within 600 s")
        if pull.returncode != 0:
            why = (pull.stderr.strip().splitlines() or [f"exit {pull.returncode}"])[-1]
            return (
                f"the base image {base} is not on this Docker engine and cannot be pulled "
                f"({why[:200]}): where no registry is reachable, deploy/build-base-image.sh "
                "(then it is used, or name one in SQLENV_BASE_IMAGE; DEVELOPERS.md)"
            )
        if builds is not None:
            builds.pulled.append(base)
    if any((root / "deploy" / "wheelhouse").glob("*.whl")):
        return None
    name = f"sqlenv-check-{uuid.uuid4().hex[:10]}"
    try:
        probe = run_docker(
            "run", "--name", name, "--entrypoint", "python3", base, "-c", _PROBE_PYPI,
            PYPI_PROBE_URL, timeout=60,
        )  # fmt: skip
        if probe.returncode == 0:
            return None
        why = (probe.stderr.strip().splitlines() or [f"exit {probe.returncode}"])[-1]
    except subprocess.TimeoutExpired:
        why = "no answer within 60 s"
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            run_docker("rm", "-f", name, timeout=60)
    return (
        f"deploy/wheelhouse/ holds no wheels and a container of {base} cannot reach PyPI "
        f"({why}): run deploy/build-wheelhouse.sh first (DEVELOPERS.md)"
    )


def image_size(tag: str) -> int:
    result = run_docker("image", "inspect", "--format", "{{.Size}}", tag, check=True)
    return int(result.stdout.strip())


_LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m, json; "
    "print(json.dumps(sorted({d.metadata['Name'].lower() for d in m.distributions()})))"
)


def installed_distributions(tag: str) -> list[str]:
    """Every distribution the image's ``python`` can import, lower-cased."""
    result = run_docker(
        "run",
        "--rm",
        "--entrypoint",
        "python3",
        tag,
        "-c",
        _LIST_DISTRIBUTIONS,
        timeout=60,
        check=True,
    )
    return list(json.loads(result.stdout.strip().splitlines()[-1]))


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Container:
    """A detached container with its ports published on 127.0.0.1 (random host ports)."""

    id: str
    started_at: float  # time.monotonic() just before ``docker run``
    ports: Mapping[int, int] = field(default_factory=dict)  # container port -> host port

    @classmethod
    def start(
        cls, image: str, *, env: Mapping[str, str] | None = None, ports: Sequence[int] = (8000,)
    ) -> Container:
        args = ["run", "-d", "--name", f"sqlenv-check-{uuid.uuid4().hex[:10]}"]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        for port in ports:
            args += ["-p", f"127.0.0.1::{port}"]
        started = time.monotonic()
        result = run_docker(*args, image, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"docker run failed: {result.stderr.strip()}")
        container = cls(result.stdout.strip(), started)
        try:
            container.ports = {port: container._host_port(port) for port in ports}
        except Exception:
            container.remove()
            raise
        return container

    def _host_port(self, port: int) -> int:
        result = run_docker("port", self.id, f"{port}/tcp", check=True)
        return int(result.stdout.strip().splitlines()[0].rsplit(":", 1)[1])

    def url(self, port: int = 8000) -> str:
        return f"http://127.0.0.1:{self.ports[port]}"

    def wait_health(self, port: int = 8000, timeout: float = HEALTH_LIMIT_S) -> float:
        """Seconds from ``docker run`` to the first 200 from ``/health``; TimeoutError if none."""
        deadline = self.started_at + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                status, _ = http_get(f"{self.url(port)}/health", timeout=1.0)
                if status == 200:
                    return time.monotonic() - self.started_at
            if not self.running():
                raise RuntimeError(f"the container exited: {self.logs()[-600:]}")
            time.sleep(0.05)
        raise TimeoutError(f"/health gave no 200 within {timeout:.0f} s: {self.logs()[-600:]}")

    def wait_docker_healthy(self, timeout: float = HEALTH_LIMIT_S) -> float:
        """Seconds from ``docker run`` until Docker's HEALTHCHECK reports ``healthy``."""
        deadline = self.started_at + timeout
        status = "unknown"
        while time.monotonic() < deadline:
            state = self.state()
            health = state.get("Health")
            if health is None:
                raise RuntimeError("the image has no HEALTHCHECK")
            status = health.get("Status", "unknown")
            if status == "healthy":
                return time.monotonic() - self.started_at
            if status == "unhealthy" or not state.get("Running"):
                break
            time.sleep(0.1)
        raise TimeoutError(
            f"Docker health is {status!r} after {time.monotonic() - self.started_at:.1f} s"
        )

    def state(self) -> dict[str, Any]:
        result = run_docker("inspect", "--format", "{{json .State}}", self.id, check=True)
        return dict(json.loads(result.stdout))

    def running(self) -> bool:
        return bool(self.state().get("Running"))

    def exec(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return run_docker("exec", self.id, *argv, timeout=timeout)

    def logs(self) -> str:
        result = run_docker("logs", self.id, timeout=30)
        return result.stdout + result.stderr

    def stop(self, timeout: int = STOP_TIMEOUT_S) -> tuple[float, int]:
        """``docker stop`` (SIGTERM, SIGKILL after ``timeout``): (seconds taken, exit code)."""
        started = time.monotonic()
        run_docker("stop", "-t", str(timeout), self.id, timeout=timeout + 30)
        seconds = time.monotonic() - started
        return seconds, int(self.state().get("ExitCode", -1))

    def remove(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, DockerUnavailable):
            run_docker("rm", "-f", self.id, timeout=60)


@contextlib.contextmanager
def running(image: str, **kwargs: Any) -> Iterator[Container]:
    container = Container.start(image, **kwargs)
    try:
        yield container
    finally:
        container.remove()


def run_to_exit(image: str, env: Mapping[str, str], timeout: float = 20) -> tuple[int | None, str]:
    """Run the image's command with ``env`` and wait: (exit code or None on timeout, stderr)."""
    name = f"sqlenv-check-{uuid.uuid4().hex[:10]}"
    args = ["run", "--name", name]
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    try:
        result = run_docker(*args, image, timeout=timeout)
        return result.returncode, result.stderr
    except subprocess.TimeoutExpired:
        return None, ""
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            run_docker("rm", "-f", name, timeout=60)


_READ_DATABASES = r"""
import json, os, sqlite3, urllib.parse
root = os.environ.get("SQLENV_DATA_DIR", "/app/data")
files, errors = [], []
for folder, _, names in os.walk(root):
    for name in names:
        if name.endswith(".sqlite"):
            path = os.path.join(folder, name)
            files.append(path)
            try:
                uri = "file:" + urllib.parse.quote(path) + "?mode=ro"
                with sqlite3.connect(uri, uri=True) as conn:
                    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except Exception as exc:
                errors.append(f"{path}: {exc}")
print(json.dumps({"uid": os.getuid(), "root": root, "files": len(files), "errors": errors}))
"""


def read_databases(container: Container) -> dict[str, Any]:
    """As the container's own user: its uid and every ``.sqlite`` file opened read-only."""
    result = container.exec("python3", "-c", _READ_DATABASES)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip()[-400:] or f"exit {result.returncode}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


@dataclass
class EpisodeResult:
    question_id: str
    actions: list[str]
    reward: Any
    done: bool
    terminal: Any


def play_episode(base_url: str, *, split: str = "eval", timeout: float = 10.0) -> EpisodeResult:
    """Over ``/ws``: reset on an eval question, then the oracle's DESCRIBE → QUERY → ANSWER.

    The server gives the oracle's plan (the gold) only for a question whose episode has
    finished in a live session, as the web page does: a first episode on the same socket
    ends with a wrong answer, and its ``episode_id`` opens the plan.
    """
    from websockets.sync.client import connect

    status, body = http_get(f"{base_url}/web/api/questions?split={split}&limit=1", timeout=timeout)
    if status != 200:
        raise RuntimeError(f"GET /web/api/questions: {status}")
    question_id = json.loads(body)["questions"][0]["id"]
    ws_url = "ws" + base_url.removeprefix("http") + "/ws"
    with connect(ws_url, open_timeout=timeout, close_timeout=timeout) as ws:

        def ask(message: dict[str, Any], kind: str = "observation") -> dict[str, Any]:
            ws.send(json.dumps(message))
            reply = json.loads(ws.recv(timeout=timeout))
            if reply.get("type") != kind:
                raise RuntimeError(f"{message['type']}: {reply}")
            return dict(reply["data"])

        ask({"type": "reset", "data": {"question_id": question_id}})
        ask({"type": "step", "data": {"action_type": "ANSWER", "argument": "no idea"}})
        episode_id = ask({"type": "state"}, "state")["episode_id"]
        quoted = urllib.parse.quote(question_id)
        status, body = http_get(
            f"{base_url}/web/api/oracle/{quoted}?episode_id={urllib.parse.quote(episode_id)}",
            timeout=timeout,
        )
        if status != 200:
            raise RuntimeError(f"GET /web/api/oracle/{question_id}: {status}")
        actions = json.loads(body)
        ask({"type": "reset", "data": {"question_id": question_id}})
        data: dict[str, Any] = {}
        for action in actions:
            data = ask({"type": "step", "data": action})
        ws.send(json.dumps({"type": "close"}))
    breakdown = data.get("observation", {}).get("reward_breakdown") or {}
    return EpisodeResult(
        question_id,
        [a["action_type"] for a in actions],
        data.get("reward"),
        data.get("done") is True,
        breakdown.get("terminal"),
    )


def _port_closed(container: Container, port: int) -> bool:
    probe = (
        f"import socket; s = socket.socket(); s.settimeout(2); "
        f"print(s.connect_ex(('127.0.0.1', {port})))"
    )
    result = container.exec("python3", "-c", probe)
    return result.returncode == 0 and result.stdout.strip() not in ("", "0")


def check(root: Path, *, image: str | None = None, base_image: str | None = None) -> list[Finding]:
    """Build ``deploy/Dockerfile`` (unless ``image`` names one already built) and run every
    image check on it. ``base_image``: see :func:`resolve_base_image`."""
    reason = docker_unavailable_reason()
    if reason is not None:
        return [Finding(GROUP, "docker available", False, reason)]
    out = [Finding(GROUP, "docker available", True, "")]
    if image is None:
        base_image = resolve_base_image(base_image)
        blocker = build_blocker(root, base_image)
        if blocker is not None:
            return [*out, Finding(GROUP, "build", False, f"cannot build here: {blocker}")]
        built = build_image(root, DEFAULT_TAG, base_image=base_image)
        tail = " | ".join(built.log.strip().splitlines()[-3:])
        if not built.ok:
            return [*out, Finding(GROUP, "build", False, f"docker build failed: {tail}")]
        image = DEFAULT_TAG
        out.append(
            Finding(
                GROUP, "build", True, f"{built.seconds:.0f} s, BASE_IMAGE={base_image or 'default'}"
            )
        )
    return [*out, *check_image(image)]


def _guard(name: str, body: Callable[[], Finding]) -> Finding:
    try:
        return body()
    except Exception as exc:  # a check that crashes is a failed check, with the reason
        return Finding(GROUP, name, False, f"{type(exc).__name__}: {exc}".strip()[:400])


def check_image(
    image: str,
    *,
    stop_timeout: int = STOP_TIMEOUT_S,
    health_timeout: float = HEALTH_LIMIT_S,
    exit_timeout: float = 20.0,
) -> list[Finding]:
    """Every runtime check on an image that is already built. The timeouts are how long to
    wait for a stop, for ``/health`` and for a bad ``PORT`` to end the container."""
    out = [
        _guard("size", lambda: _size(image)),
        _guard("no dev packages", lambda: _distributions(image)),
    ]
    try:
        container = Container.start(image)
    except Exception as exc:
        return [*out, Finding(GROUP, "starts", False, str(exc))]
    try:
        out.append(_guard("healthy within 30 s", lambda: _healthy(container, health_timeout)))
        out.append(_guard("Docker HEALTHCHECK", lambda: _docker_healthy(container, health_timeout)))
        out.append(_guard("non-root, databases readable", lambda: _databases(container)))
        out.append(_guard("WebSocket episode", lambda: _episode(container)))
        out.append(_guard("SIGTERM stops cleanly", lambda: _sigterm(container, stop_timeout)))
    finally:
        container.remove()
    out.append(_guard("PORT=7860", lambda: _port_7860(image, health_timeout)))
    for value in ("abc", "-1"):
        out.append(
            _guard(
                f"PORT={value} rejected",
                lambda value=value: _bad_port(image, value, exit_timeout),
            )
        )
    return out


def _size(image: str) -> Finding:
    size = image_size(image)
    ok = size < SIZE_GOAL_BYTES
    return Finding(
        GROUP,
        "size",
        ok,
        f"{size / 1e6:.0f} MB"
        + (" (goal < 300 MB)" if ok else f", over the {SIZE_GOAL_BYTES / 1e6:.0f} MB goal"),
    )


def _distributions(image: str) -> Finding:
    names = installed_distributions(image)
    bad = sorted(n for n in names if n in BANNED_DISTRIBUTIONS or n.startswith(("nvidia-", "cuda")))
    if bad:
        return Finding(GROUP, "no dev packages", False, f"installed: {', '.join(bad)}")
    return Finding(
        GROUP,
        "no dev packages",
        True,
        f"{len(names)} distributions, none for dev, tests, torch or CUDA",
    )


def _healthy(container: Container, timeout: float) -> Finding:
    seconds = container.wait_health(timeout=timeout)
    goal = "within" if seconds < START_GOAL_S else "over"
    return Finding(
        GROUP,
        "healthy within 30 s",
        True,
        f"/health 200 after {seconds:.2f} s ({goal} the {START_GOAL_S:.0f} s goal)",
    )


def _docker_healthy(container: Container, timeout: float) -> Finding:
    seconds = container.wait_docker_healthy(timeout)
    return Finding(GROUP, "Docker HEALTHCHECK", True, f"healthy after {seconds:.1f} s")


def _databases(container: Container) -> Finding:
    name = "non-root, databases readable"
    report = read_databases(container)
    if report["uid"] == 0:
        return Finding(GROUP, name, False, "the server runs as root (uid 0)")
    if report["uid"] != 1000:
        return Finding(GROUP, name, False, f"uid {report['uid']}; Spaces expect 1000")
    if not report["files"]:
        return Finding(GROUP, name, False, f"no .sqlite files under {report['root']}")
    if report["errors"]:
        return Finding(
            GROUP,
            name,
            False,
            f"{len(report['errors'])} of {report['files']} unreadable, e.g. {report['errors'][0]}",
        )
    return Finding(GROUP, name, True, f"uid 1000 read all {report['files']} .sqlite files")


def _episode(container: Container) -> Finding:
    name = "WebSocket episode"
    result = play_episode(container.url())
    sequence = " → ".join(["reset", *result.actions])
    if not isinstance(result.reward, int | float) or isinstance(result.reward, bool):
        return Finding(GROUP, name, False, f"{sequence}: reward {result.reward!r} is not a number")
    if not result.done:
        return Finding(GROUP, name, False, f"{sequence}: not done after ANSWER")
    if result.terminal != 1.0:
        return Finding(
            GROUP,
            name,
            False,
            f"{sequence}: the oracle's answer was not judged "
            f"correct (terminal reward {result.terminal!r})",
        )
    return Finding(
        GROUP, name, True, f"{sequence}: reward {result.reward:.2f}, done ({result.question_id})"
    )


def _sigterm(container: Container, stop_timeout: int) -> Finding:
    name = "SIGTERM stops cleanly"
    seconds, code = container.stop(stop_timeout)
    if code != 0:
        how = "killed after the stop timeout" if code == 137 else f"exit code {code}"
        return Finding(GROUP, name, False, f"{how} ({seconds:.1f} s)")
    if seconds >= STOP_GOAL_S:
        return Finding(
            GROUP, name, False, f"exit 0 but after {seconds:.1f} s (goal {STOP_GOAL_S:.0f} s)"
        )
    return Finding(GROUP, name, True, f"exit 0 after {seconds:.2f} s")


def _port_7860(image: str, timeout: float) -> Finding:
    name = "PORT=7860"
    with running(image, env={"PORT": "7860"}, ports=(7860, 8000)) as container:
        try:
            seconds = container.wait_health(7860, timeout=timeout)
        except TimeoutError:
            return Finding(
                GROUP, name, False, f"nothing answered /health on 7860 within {timeout:.0f} s"
            )
        if not _port_closed(container, 8000):
            return Finding(GROUP, name, False, "served on 7860, but something listens on 8000 too")
        try:
            container.wait_docker_healthy(timeout)
        except TimeoutError as exc:
            return Finding(GROUP, name, False, f"served on 7860, but {exc}")
        return Finding(
            GROUP,
            name,
            True,
            f"/health on 7860 after {seconds:.2f} s, HEALTHCHECK healthy, nothing on 8000",
        )


def _bad_port(image: str, value: str, timeout: float) -> Finding:
    name = f"PORT={value} rejected"
    code, stderr = run_to_exit(image, {"PORT": value}, timeout=timeout)
    if code is None:
        return Finding(GROUP, name, False, "the container kept running instead of exiting")
    line = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if code == 0:
        return Finding(GROUP, name, False, "exit 0: a bad PORT was accepted")
    if "PORT" not in line:
        return Finding(GROUP, name, False, f"exit {code} without a message naming PORT: {line!r}")
    return Finding(GROUP, name, True, f"exit {code}: {line}")
