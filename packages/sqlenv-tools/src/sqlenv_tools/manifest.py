"""``deploy/openenv.yaml``: the six OpenEnv fields with SQLEnv's values, and what the
current ``openenv validate`` (openenv 0.10) needs: a ``validation:`` block.

Only the top-level keys OpenEnv documents are allowed: the six legacy fields, ``version``,
``validation`` and ``variables`` (set as Space variables by ``openenv push``).
"""

from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import Any

import yaml

from .findings import Finding, missing_file

__all__ = ["EXPECTED", "MANIFEST_PATH", "check", "check_text"]

GROUP = "manifest"
MANIFEST_PATH = "deploy/openenv.yaml"

EXPECTED: dict[str, Any] = {
    "spec_version": 1,
    "name": "sql_env",
    "type": "space",
    "runtime": "fastapi",
    "app": "sqlenv_server.app:app",
    "port": 8000,
}
OPTIONAL = ("version", "validation", "variables")
VALIDATION_SECTIONS = (
    "reward",
    "resources",
    "capabilities",
    "types",
    "network",
    "task_distribution",
    "judge",
    "execution",
)
RESOURCE_KEYS = ("cpu", "memory_mb", "disk_mb", "episode_timeout_s")


def check(root: Path) -> list[Finding]:
    path = root / MANIFEST_PATH
    if not path.is_file():
        return [missing_file(GROUP, root, MANIFEST_PATH)]
    return check_text(path.read_text(encoding="utf-8"), root)


def check_text(text: str, root: Path | None = None) -> list[Finding]:
    """Every manifest check on ``text``; ``root`` lets the ``app`` check look for the module."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [Finding(GROUP, "valid YAML", False, f"not valid YAML: {exc}".splitlines()[0])]
    if not isinstance(data, dict):
        return [Finding(GROUP, "valid YAML", False, "the manifest is not a YAML mapping")]

    out: list[Finding] = []
    for key, expected in EXPECTED.items():
        out.append(_field(data, key, expected))
    if "app" in data and data.get("app") == EXPECTED["app"] and root is not None:
        out.append(_app_resolves(root, str(data["app"])))

    unknown = sorted(str(k) for k in data if k not in EXPECTED and k not in OPTIONAL)
    out.append(
        Finding(
            GROUP,
            "no unknown fields",
            not unknown,
            f"unknown field(s) {', '.join(unknown)}; OpenEnv documents "
            f"{', '.join([*EXPECTED, *OPTIONAL])}"
            if unknown
            else "only documented fields",
        )
    )
    if "version" in data:
        version = data["version"]
        ok = isinstance(version, str) and bool(version.strip())
        out.append(
            Finding(
                GROUP,
                "version",
                ok,
                f"version must be a string such as '0.1.0', got {version!r}"
                if not ok
                else str(version),
            )
        )
    out.append(_validation(data.get("validation")))
    return out


def _field(data: dict[str, Any], key: str, expected: Any) -> Finding:
    name = f"field {key}"
    if key not in data:
        return Finding(GROUP, name, False, f"missing field {key} (expected {key}: {expected})")
    value = data[key]
    # YAML's `1` and `1.0` and `"1"` are different things; spec_version must be the integer 1.
    if type(value) is not type(expected) or value != expected:
        return Finding(GROUP, name, False, f"{key} must be {expected!r}, got {value!r}")
    return Finding(GROUP, name, True, f"{key}: {value}")


def _app_resolves(root: Path, app: str) -> Finding:
    """``module:attribute`` names a module file under packages/*/src that binds the attribute."""
    module, _, attr = app.partition(":")
    relative = Path(*module.split(".")).with_suffix(".py")
    candidates = sorted(root.glob(f"packages/*/src/{relative.as_posix()}"))
    if not candidates:
        return Finding(
            GROUP,
            "app resolves",
            False,
            f"no module file packages/*/src/{relative.as_posix()} for app {app}",
        )
    source = candidates[0]
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"))
    except SyntaxError as exc:
        return Finding(GROUP, "app resolves", False, f"{source.relative_to(root)}: {exc}")
    bound = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    where = source.relative_to(root).as_posix()
    if attr not in bound:
        return Finding(GROUP, "app resolves", False, f"{where} binds no top-level {attr!r}")
    return Finding(GROUP, "app resolves", True, f"{where} binds {attr}")


def _validation(block: Any) -> Finding:
    """The ``validation:`` block ``openenv validate`` 0.10 reads (its schema, in short)."""
    name = "validation block"
    if block is None:
        return Finding(
            GROUP, name, False, "missing field validation (openenv validate 0.10 fails without it)"
        )
    if not isinstance(block, dict):
        return Finding(GROUP, name, False, "validation must be a mapping")
    problems: list[str] = []
    unknown = sorted(str(k) for k in block if k not in VALIDATION_SECTIONS)
    if unknown:
        problems.append(f"unknown section(s) {', '.join(unknown)}")

    resources = block.get("resources")
    if not isinstance(resources, dict):
        problems.append(
            "validation.resources is required (cpu, memory_mb, disk_mb, episode_timeout_s)"
        )
    else:
        for key in RESOURCE_KEYS:
            value = resources.get(key)
            if not _positive(value):
                problems.append(
                    f"validation.resources.{key} must be a positive number, got {value!r}"
                )
        timeout = resources.get("episode_timeout_s")
        if _positive(timeout) and timeout > 3600:
            problems.append("validation.resources.episode_timeout_s must be at most 3600")

    capabilities = block.get("capabilities")
    verifier = capabilities.get("verifier") if isinstance(capabilities, dict) else None
    kind = verifier.get("kind") if isinstance(verifier, dict) else None
    if kind not in ("reward_channel", "script"):
        problems.append(
            f"validation.capabilities.verifier.kind must be reward_channel or script, got {kind!r}"
        )

    types = block.get("types")
    tags = types.get("tags") if isinstance(types, dict) else None
    if not (isinstance(tags, list) and tags and all(isinstance(t, str) for t in tags)):
        problems.append("validation.types.tags must be a non-empty list of strings")

    reward = block.get("reward")
    if reward is not None:
        problems.extend(_reward(reward))
    if problems:
        return Finding(GROUP, name, False, "; ".join(problems))
    return Finding(GROUP, name, True, "reward, resources, capabilities and types present")


def _reward(reward: Any) -> list[str]:
    if not isinstance(reward, dict):
        return ["validation.reward must be a mapping"]
    problems = []
    low_high = reward.get("range", [0.0, 1.0])
    if not (
        isinstance(low_high, list)
        and len(low_high) == 2
        and all(_number(v) for v in low_high)
        and low_high[0] < low_high[1]
    ):
        problems.append(
            f"validation.reward.range must be [low, high] with low < high, got {low_high!r}"
        )
    tolerance = reward.get("oracle_tolerance", 0.0)
    if not (_number(tolerance) and 0 <= tolerance <= 0.1):
        problems.append(
            f"validation.reward.oracle_tolerance must be in [0, 0.1], got {tolerance!r}"
        )
    margin = reward.get("floor_margin", 0.1)
    if not (_number(margin) and margin >= 0.1):
        problems.append(f"validation.reward.floor_margin must be at least 0.1, got {margin!r}")
    return problems


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value: Any) -> bool:
    return _number(value) and value > 0
