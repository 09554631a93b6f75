"""``deploy/Dockerfile``: what judges and a Hugging Face Space rely on, read without Docker.

Checks: multi-stage with ``ARG BASE_IMAGE`` (with a default) feeding the ``FROM`` lines;
nothing that needs BuildKit; ``PORT`` with a fallback to 8000 that the command honours,
and a command that receives signals; a non-root ``USER`` with uid 1000; the databases
copied into the final image where ``SQLENV_DATA_DIR`` points; a ``HEALTHCHECK`` on
``/health`` that follows ``PORT``; no dev, test, torch or CUDA packages in the stages the
final image is made of; and ``deploy/requirements.txt`` exported from ``uv.lock``.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dockerfile_parse import DockerfileParser

from .findings import Finding, missing_file

__all__ = ["DOCKERFILE_PATH", "EXPORT_COMMAND", "REQUIREMENTS_PATH", "check", "check_text"]

GROUP = "dockerfile"
DOCKERFILE_PATH = "deploy/Dockerfile"
REQUIREMENTS_PATH = "deploy/requirements.txt"
EXPORT_COMMAND = (
    "uv export --frozen --package sqlenv-server --no-dev --no-emit-workspace --no-hashes "
    f"--no-annotate -o {REQUIREMENTS_PATH}"
)
DATA_SOURCES = ("data", "data/databases")

# Packages that must never reach the final image: test and dev tools, training, CUDA, the
# client and these tools.
_BANNED = re.compile(
    r"(?<![\w.-])(pytest[\w-]*|hypothesis|ruff|mypy|torch\w*|nvidia-[\w-]+|cuda[\w-]*|triton"
    r"|jupyter[\w-]*|ipykernel|notebook|transformers|trl|sqlenv-client|sqlenv-tools"
    r"|sqlenv_client|sqlenv_tools)(?![\w-])",
    re.IGNORECASE,
)
_DEV_FLAGS = re.compile(r"--group[= ]dev\b|--all-groups|--all-extras|\[dev\]|(?<![\w-])--dev\b")
_INSTALLERS = re.compile(
    r"\b(pip3?|uv|poetry|conda|mamba|apt-get|apt|pdm)\b[^;&|]*\b(install|sync|add)\b"
)
# Syntax the classic builder (docker build without BuildKit) rejects.
_BUILDKIT_ONLY = (
    ("RUN", re.compile(r"^\s*--(mount|network|security)\b"), "RUN --{0}"),
    ("COPY", re.compile(r"--(chmod|link|parents|exclude)\b"), "COPY --{0}"),
    ("ADD", re.compile(r"--(chmod|link|checksum|keep-git-dir|exclude)\b"), "ADD --{0}"),
)
_HEREDOC = re.compile(r"<<-?\s*['\"]?[A-Za-z_]\w*['\"]?\s*$", re.MULTILINE)


@dataclass
class Stage:
    index: int
    base: str
    name: str | None
    line: int
    instructions: list[dict[str, object]] = field(default_factory=list)


Exporter = Callable[[Path], "str | None"]
"""Returns ``uv export``'s output for the repository at ``root``, or None if uv is missing."""


def check(root: Path, *, exporter: Exporter | None = None) -> list[Finding]:
    path = root / DOCKERFILE_PATH
    if not path.is_file():
        return [missing_file(GROUP, root, DOCKERFILE_PATH)]
    findings = check_text(path.read_text(encoding="utf-8"), root)
    findings.append(check_requirements(root, exporter or uv_export))
    return findings


def check_text(text: str, root: Path | None = None) -> list[Finding]:
    """The Dockerfile checks on ``text``; ``root`` lets ``-r`` requirement files be read."""
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode("utf-8")))
    items = [dict(i) for i in parser.structure if i["instruction"] != "COMMENT"]
    global_args = []
    stages: list[Stage] = []
    for item in items:
        inst = str(item["instruction"]).upper()
        if inst == "FROM":
            words = str(item["value"]).split()
            base = next((w for w in words if not w.startswith("--")), "")
            name = (
                words[words.index(next(w for w in words if w.lower() == "as")) + 1]
                if any(w.lower() == "as" for w in words)
                else None
            )
            stages.append(Stage(len(stages), base, name, int(item["startline"]) + 1))
        elif stages:
            stages[-1].instructions.append(item)
        else:
            global_args.append(item)
    if not stages:
        return [Finding(GROUP, "has a FROM", False, "no FROM instruction")]
    final = stages[-1]
    return [
        _base_image(global_args, stages),
        _multi_stage(stages),
        _classic_builder(items, text),
        _port(final),
        _signals(final),
        _user(final),
        _databases(stages),
        _healthcheck(final),
        _no_dev_packages(stages, root),
    ]


def _values(stage: Stage, instruction: str) -> list[tuple[int, str]]:
    return [
        (int(i["startline"]) + 1, str(i["value"]))
        for i in stage.instructions
        if str(i["instruction"]).upper() == instruction
    ]


def _env(stage: Stage) -> dict[str, str]:
    """The stage's ENV settings (both ``ENV K=V ...`` and ``ENV K V``); later ones win."""
    env: dict[str, str] = {}
    for _, value in _values(stage, "ENV"):
        if "=" in value.split()[0]:
            for word in shlex.split(value):
                key, _, val = word.partition("=")
                env[key] = val
        else:
            key, _, val = value.partition(" ")
            env[key] = val.strip()
    return env


def _base_image(args: list[dict[str, object]], stages: list[Stage]) -> Finding:
    name = "BASE_IMAGE argument"
    declared = [
        str(a["value"])
        for a in args
        if str(a["instruction"]).upper() == "ARG"
        and str(a["value"]).split("=")[0].strip() == "BASE_IMAGE"
    ]
    if not declared:
        return Finding(GROUP, name, False, "no ARG BASE_IMAGE before the first FROM")
    if "=" not in declared[-1] or not declared[-1].split("=", 1)[1].strip():
        return Finding(
            GROUP,
            name,
            False,
            "ARG BASE_IMAGE has no default, so a plain docker build (a Space) fails",
        )
    uses = {"${BASE_IMAGE}", "$BASE_IMAGE"}
    stage_names = {s.name for s in stages if s.name}
    for stage in stages:
        if stage.base not in uses and stage.base not in stage_names:
            return Finding(
                GROUP,
                name,
                False,
                f"FROM {stage.base} (line {stage.line}) does not use ${{BASE_IMAGE}}",
            )
    return Finding(GROUP, name, True, f"ARG {declared[-1]}")


def _multi_stage(stages: list[Stage]) -> Finding:
    ok = len(stages) >= 2
    return Finding(
        GROUP,
        "multi-stage",
        ok,
        f"{len(stages)} stages" if ok else "one stage: build tools end up in the image",
    )


def _classic_builder(items: list[dict[str, object]], text: str) -> Finding:
    name = "classic builder"
    for item in items:
        inst = str(item["instruction"]).upper()
        for which, pattern, label in _BUILDKIT_ONLY:
            m = pattern.search(str(item["value"])) if inst == which else None
            if m:
                return Finding(
                    GROUP,
                    name,
                    False,
                    f"line {int(item['startline']) + 1}: {label.format(m.group(1))} needs BuildKit",
                )
        if inst == "RUN" and _HEREDOC.search(str(item["content"])):
            return Finding(
                GROUP, name, False, f"line {int(item['startline']) + 1}: a heredoc needs BuildKit"
            )
    return Finding(GROUP, name, True, "no BuildKit-only syntax")


def _command(stage: Stage) -> tuple[str, list[str] | None]:
    """The final command as text, and as argv when it is in exec (JSON) form."""
    entry = _values(stage, "ENTRYPOINT")
    cmd = _values(stage, "CMD")
    parts: list[str] = []
    argv: list[str] | None = []
    for found in (entry[-1:] if entry else [], cmd[-1:] if cmd else []):
        for _, value in found:
            parts.append(value)
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = None
            if isinstance(parsed, list) and argv is not None:
                argv.extend(str(p) for p in parsed)
            else:
                argv = None
    return " ".join(parts), argv


def _port(final: Stage) -> Finding:
    name = "PORT with fallback 8000"
    text, argv = _command(final)
    if not text:
        return Finding(GROUP, name, False, "the final stage has no CMD or ENTRYPOINT")
    words = argv if argv is not None else _split(text)
    if any(
        re.fullmatch(r"--port=\d+", w) or (w == "--port" and nxt.isdigit())
        for w, nxt in zip(words, [*words[1:], ""], strict=True)
    ) or re.search(r"--port[= ]+\d+", text):
        return Finding(
            GROUP, name, False, f"the command hard-codes the port ({text}); PORT is ignored"
        )
    env_port = _env(final).get("PORT")
    in_command = re.search(r"\$\{PORT:-8000\}", text)
    reads_port = re.search(r"\bsqlenv-server\b|-m\s+sqlenv_server\b|\"sqlenv_server\"", text) or (
        argv is not None and any(a == "sqlenv-server" or a.endswith("/sqlenv-server") for a in argv)
    )
    if in_command:
        return Finding(GROUP, name, True, "the command uses ${PORT:-8000}")
    if re.search(r"\$\{?PORT\b", text):
        if env_port == "8000":
            return Finding(GROUP, name, True, "ENV PORT=8000; the command uses $PORT")
        return Finding(
            GROUP,
            name,
            False,
            "the command uses $PORT with no fallback (ENV PORT=8000 or ${PORT:-8000})",
        )
    if reads_port:
        if env_port == "8000":
            return Finding(GROUP, name, True, "ENV PORT=8000; sqlenv-server reads PORT")
        if env_port is None:
            return Finding(GROUP, name, False, "no ENV PORT=8000 fallback in the final stage")
        return Finding(GROUP, name, False, f"ENV PORT={env_port} in the final stage, expected 8000")
    return Finding(
        GROUP,
        name,
        False,
        f"the command ({text}) neither uses $PORT nor runs sqlenv-server, which reads it",
    )


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:  # unbalanced quotes
        return text.split()


def _signals(final: Stage) -> Finding:
    name = "signals reach the server"
    text, argv = _command(final)
    if not text:
        return Finding(GROUP, name, False, "the final stage has no CMD or ENTRYPOINT")
    if argv is None:
        return Finding(
            GROUP,
            name,
            False,
            "shell-form command: /bin/sh is PID 1 and does not "
            "pass SIGTERM on; use the exec (JSON) form",
        )
    if argv[:2] in (["sh", "-c"], ["/bin/sh", "-c"], ["bash", "-c"], ["/bin/bash", "-c"]):
        script = " ".join(argv[2:]).strip()
        if not script.startswith("exec "):
            return Finding(
                GROUP,
                name,
                False,
                f"{argv[0]} -c without exec: the shell keeps "
                "PID 1 and SIGTERM does not reach the server",
            )
    return Finding(GROUP, name, True, f"exec form: {json.dumps(argv)}")


def _user(final: Stage) -> Finding:
    name = "non-root USER"
    users = _values(final, "USER")
    if not users:
        return Finding(GROUP, name, False, "no USER in the final stage: the server runs as root")
    line, value = users[-1]
    user = value.split(":")[0].strip()
    if user in ("root", "0"):
        return Finding(GROUP, name, False, f"USER {value} (line {line}) is root")
    if user.isdigit():
        ok = user == "1000"
        return Finding(
            GROUP,
            name,
            ok,
            f"USER {value}" if ok else f"USER {value}: Hugging Face Spaces run uid 1000",
        )
    runs = " ".join(v for _, v in _values(final, "RUN"))
    created = re.search(
        rf"(useradd|adduser)\b[^;&|]*(-u|--uid)[= ]?1000\b[^;&|]*\b{re.escape(user)}\b", runs
    )
    if not created:
        return Finding(
            GROUP,
            name,
            False,
            f"USER {value}: no useradd creating {user!r} with uid 1000 in the final stage",
        )
    return Finding(GROUP, name, True, f"USER {value} (uid 1000)")


def _copies(stage: Stage) -> list[tuple[str | None, list[str], str]]:
    """(``--from`` stage or None for the context, sources, destination) of each COPY/ADD."""
    out = []
    for inst in ("COPY", "ADD"):
        for _, value in _values(stage, inst):
            words = value.split()
            source_stage = None
            rest = []
            for w in words:
                if w.startswith("--from="):
                    source_stage = w.split("=", 1)[1]
                elif not w.startswith("--"):
                    rest.append(w)
            if len(rest) >= 2:
                out.append((source_stage, rest[:-1], rest[-1]))
    return out


def _norm(path: str) -> str:
    return path.strip().strip("\"'").rstrip("/").removeprefix("./") or "/"


def _databases(stages: list[Stage]) -> Finding:
    name = "databases copied in"
    final = stages[-1]
    by_name = {s.name: s for s in stages if s.name} | {str(s.index): s for s in stages}

    def data_dests(stage: Stage, depth: int = 0) -> set[str]:
        found = set()
        for source_stage, sources, dest in _copies(stage):
            srcs = {_norm(s) for s in sources}
            if source_stage is None and srcs & set(DATA_SOURCES):
                found.add(_norm(dest))
            elif source_stage in by_name and depth < 5:
                upstream = data_dests(by_name[source_stage], depth + 1)
                if any(s == d or s.startswith(d + "/") for s in srcs for d in upstream):
                    found.add(_norm(dest))
        return found

    dests = data_dests(final)
    if not dests:
        return Finding(GROUP, name, False, "the final stage copies in no data/ (the databases)")
    data_dir = _env(final).get("SQLENV_DATA_DIR")
    if data_dir is None:
        return Finding(
            GROUP,
            name,
            False,
            f"data copied to {', '.join(sorted(dests))} but "
            "SQLENV_DATA_DIR is not set, so the server looks elsewhere",
        )
    if _norm(data_dir) not in dests:
        return Finding(
            GROUP,
            name,
            False,
            f"SQLENV_DATA_DIR={data_dir} but the data is copied to {', '.join(sorted(dests))}",
        )
    return Finding(GROUP, name, True, f"data/ at {data_dir} (SQLENV_DATA_DIR)")


def _healthcheck(final: Stage) -> Finding:
    name = "HEALTHCHECK on /health"
    checks = _values(final, "HEALTHCHECK")
    if not checks:
        return Finding(GROUP, name, False, "no HEALTHCHECK in the final stage")
    line, value = checks[-1]
    if value.strip().upper() == "NONE":
        return Finding(GROUP, name, False, f"HEALTHCHECK NONE (line {line})")
    if "/health" not in value:
        return Finding(GROUP, name, False, f"the HEALTHCHECK (line {line}) does not probe /health")
    if "PORT" not in value:
        return Finding(
            GROUP,
            name,
            False,
            f"the HEALTHCHECK (line {line}) ignores PORT, so it "
            "fails when the server listens elsewhere",
        )
    return Finding(GROUP, name, True, f"line {line}")


def _no_dev_packages(stages: list[Stage], root: Path | None) -> Finding:
    name = "no dev packages"
    by_name = {s.name: s for s in stages if s.name} | {str(s.index): s for s in stages}
    wanted: list[Stage] = []
    todo = [stages[-1]]
    while todo:  # the final stage and every stage it copies from
        stage = todo.pop()
        if stage in wanted:
            continue
        wanted.append(stage)
        todo.extend(by_name[src] for src, _, _ in _copies(stage) if src in by_name)
        if stage.base in by_name:
            todo.append(by_name[stage.base])
    final = stages[-1]
    if re.search(r"cuda|nvidia|pytorch", final.base, re.IGNORECASE):
        return Finding(GROUP, name, False, f"the final image is FROM {final.base}")
    for stage in sorted(wanted, key=lambda s: s.index):
        for line, run in _values(stage, "RUN"):
            for command in re.split(r"&&|;|\|\|", run):
                if not _INSTALLERS.search(command):
                    continue
                problem = _install_problem(command, root)
                if problem:
                    return Finding(GROUP, name, False, f"line {line}: {problem}")
    return Finding(GROUP, name, True, "no test, dev, torch or CUDA packages installed")


def _install_problem(command: str, root: Path | None) -> str | None:
    m = _BANNED.search(command)
    if m:
        return f"installs {m.group(1)}"
    m = _DEV_FLAGS.search(command)
    if m:
        return f"installs a dev group or extra ({m.group(0)})"
    if re.search(r"\buv\s+sync\b", command) and "--no-dev" not in command:
        return "uv sync without --no-dev installs the dev group"
    for requirements in re.findall(r"(?:-r|--requirement)[= ]\s*(\S+)", command):
        path = (root / requirements) if root is not None else None
        if path is None or not path.is_file():
            continue
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            text = text.split("#", 1)[0].strip()
            m = _BANNED.match(text)
            if text and m:
                return f"installs {m.group(1)} ({requirements} line {number})"
    return None


def uv_export(root: Path) -> str | None:
    uv = shutil.which("uv")
    if uv is None:
        return None
    args = shlex.split(EXPORT_COMMAND)[1:]
    args = args[: args.index("-o")]
    result = subprocess.run([uv, *args], cwd=root, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(
            result.stderr.strip().splitlines()[-1]
            if result.stderr.strip()
            else f"uv export exited {result.returncode}"
        )
    return result.stdout


def _pins(text: str) -> list[str]:
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def check_requirements(root: Path, exporter: Exporter) -> Finding:
    """``deploy/requirements.txt`` holds exactly the pins ``uv export`` gives from uv.lock."""
    name = "requirements match uv.lock"
    path = root / REQUIREMENTS_PATH
    if not path.is_file():
        return Finding(
            GROUP, name, False, f"missing file {REQUIREMENTS_PATH}; make it with: {EXPORT_COMMAND}"
        )
    try:
        exported = exporter(root)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return Finding(GROUP, name, False, f"uv export failed: {exc}")
    if exported is None:
        return Finding(GROUP, name, False, "uv not found: cannot compare with uv.lock")
    have, want = _pins(path.read_text(encoding="utf-8")), _pins(exported)
    if have == want:
        return Finding(GROUP, name, True, f"{len(have)} pins")
    extra = sorted(set(have) - set(want))
    missing = sorted(set(want) - set(have))
    detail = (
        "; ".join(
            part
            for part in (
                f"not in uv.lock: {', '.join(extra[:4])}" if extra else "",
                f"missing: {', '.join(missing[:4])}" if missing else "",
            )
            if part
        )
        or "same pins in another order"
    )
    return Finding(
        GROUP, name, False, f"{REQUIREMENTS_PATH} is stale ({detail}); run: {EXPORT_COMMAND}"
    )
