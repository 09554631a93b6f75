"""``notebooks/train_grpo.ipynb``: a notebook a judge can open in Colab and run top to bottom.

Checks: valid nbformat; setup (``pip install``), connect (``SQLEnvClient``), train (GRPO),
evaluate (held-out accuracy) and plot (matplotlib) code cells, in that order; a Colab badge
or Colab metadata; no absolute local paths; outputs cleared; every code cell compiles
(IPython ``%magics`` and ``!shell`` lines aside).
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat

from .findings import NOTEBOOK_PATH, Finding, missing_file

__all__ = ["SECTIONS", "check", "check_notebook"]

GROUP = "notebook"

SECTIONS: list[tuple[str, str, Callable[[str], bool]]] = [
    # `%pip install`, `!pip install`, `uv pip install`, `[sys.executable, "-m", "pip", "install"`
    ("setup", "a pip install", lambda s: bool(re.search(r"\bpip\b[\"',\s]+install\b", s))),
    ("connect", "SQLEnvClient", lambda s: "SQLEnvClient" in s),
    (
        "train",
        "GRPO (GRPOTrainer, GRPOConfig, a grpo helper)",
        lambda s: bool(re.search(r"grpo", s, re.I)),
    ),
    (
        "evaluate",
        "held-out accuracy (accuracy on the eval split)",
        lambda s: (
            bool(re.search(r"accuracy", s, re.I))
            and bool(re.search(r"\beval|held[-_ ]?out|\btest", s, re.I))
        ),
    ),
    (
        "plot",
        "matplotlib (an import or a plt. call; installing it is setup)",
        lambda s: bool(re.search(r"^\s*(import|from)\s+matplotlib|\bplt\.", s, re.M)),
    ),
]

# Paths of one machine: home directories, this workplace, Windows drives, file URLs.
# Colab's /content and temporary directories are fine.
_LOCAL_PATH = re.compile(
    r"(?<![\w.:/-])(/home/\w|/Users/\w|/root/|/work/|/mnt/\w|/private/|/var/folders/"
    r"|/opt/wheels|file:///|[A-Za-z]:\\\\?\w)"
)
_COLAB = re.compile(r"colab\.research\.google\.com/(assets/colab-badge|github/|drive/)")


def check(root: Path) -> list[Finding]:
    path = root / NOTEBOOK_PATH
    if not path.is_file():
        return [missing_file(GROUP, root, NOTEBOOK_PATH)]
    return check_notebook(path)


def check_notebook(path: Path) -> list[Finding]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nbformat warns about missing cell ids
            nb = nbformat.read(str(path), as_version=nbformat.NO_CONVERT)
    except Exception as exc:  # nbformat raises several kinds for unreadable files
        return [Finding(GROUP, "valid nbformat", False, f"cannot read {path.name}: {exc}")]
    out = [_valid(nb)]
    cells: list[dict[str, Any]] = list(nb.get("cells", []))
    out.append(_sections(cells))
    out.append(_colab(nb, cells))
    out.append(_local_paths(cells))
    out.append(_outputs(cells))
    out.append(_compiles(cells))
    return out


def _valid(nb: Any) -> Finding:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        first = str(exc).strip().splitlines()[0]
        return Finding(GROUP, "valid nbformat", False, f"not valid nbformat: {first}")
    major = nb.get("nbformat")
    if major != 4:
        return Finding(GROUP, "valid nbformat", False, f"nbformat {major}, expected 4")
    return Finding(GROUP, "valid nbformat", True, f"nbformat {major}.{nb.get('nbformat_minor')}")


def _code(cells: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(i + 1, _source(c)) for i, c in enumerate(cells) if c.get("cell_type") == "code"]


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _sections(cells: list[dict[str, Any]]) -> Finding:
    """Each section's first code cell after the previous section's: the order a reader runs."""
    name = "sections in order"
    code = _code(cells)
    at = 0
    seen: list[str] = []
    for section, what, matches in SECTIONS:
        later = [number for number, src in code if number > at and matches(src)]
        if not later:
            earlier = [number for number, src in code if matches(src)]
            if earlier:
                return Finding(
                    GROUP,
                    name,
                    False,
                    f"the {section} cell (cell {earlier[0]}) comes "
                    f"before the {seen[-1]} cell (cell {at}); expected "
                    + " → ".join(s for s, _, _ in SECTIONS),
                )
            return Finding(GROUP, name, False, f"no {section} cell: no code cell with {what}")
        at = later[0]
        seen.append(section)
    return Finding(GROUP, name, True, " → ".join(s for s, _, _ in SECTIONS))


def _colab(nb: Any, cells: list[dict[str, Any]]) -> Finding:
    name = "Colab badge or metadata"
    if "colab" in nb.get("metadata", {}):
        return Finding(GROUP, name, True, "Colab metadata")
    for number, cell in enumerate(cells, 1):
        if cell.get("cell_type") == "markdown" and _COLAB.search(_source(cell)):
            return Finding(GROUP, name, True, f"Colab badge in cell {number}")
    return Finding(GROUP, name, False, "no 'Open in Colab' badge and no colab metadata")


def _local_paths(cells: list[dict[str, Any]]) -> Finding:
    name = "no absolute local paths"
    for number, cell in enumerate(cells, 1):
        for line in _source(cell).splitlines():
            m = _LOCAL_PATH.search(line)
            if m:
                return Finding(
                    GROUP,
                    name,
                    False,
                    f"cell {number}: local path {m.group(1)!r} in {line.strip()[:80]!r}",
                )
    return Finding(GROUP, name, True, "none")


def _outputs(cells: list[dict[str, Any]]) -> Finding:
    name = "outputs cleared"
    for number, cell in enumerate(cells, 1):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs"):
            return Finding(
                GROUP,
                name,
                False,
                f"cell {number} has {len(cell['outputs'])} "
                "output(s); clear them (jupyter nbconvert --clear-output)",
            )
        if cell.get("execution_count") is not None:
            return Finding(
                GROUP,
                name,
                False,
                f"cell {number} has execution_count {cell['execution_count']}; clear it",
            )
    return Finding(GROUP, name, True, "no outputs, no execution counts")


def _python(source: str) -> str | None:
    """The cell as plain Python: ``%%cell`` magics are skipped (None), line magics and shell
    escapes become ``pass`` so line numbers stay right."""
    if source.lstrip().startswith("%%"):
        return None
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")) or re.match(r"^\w[\w.]*\s*=\s*[%!]", stripped):
            lines.append(line[: len(line) - len(stripped)] + "pass")
        else:
            lines.append(line)
    return "\n".join(lines)


def _compiles(cells: list[dict[str, Any]]) -> Finding:
    name = "code cells compile"
    count = 0
    for number, source in _code(cells):
        python = _python(source)
        if python is None:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # SyntaxWarning: not this check's business
                compile(
                    python,
                    f"cell {number}",
                    "exec",
                    flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
                    dont_inherit=True,
                )
        except SyntaxError as exc:
            return Finding(GROUP, name, False, f"cell {number} line {exc.lineno}: {exc.msg}")
        count += 1
    return Finding(GROUP, name, True, f"{count} code cells")
