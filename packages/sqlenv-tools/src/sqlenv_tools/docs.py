"""``docs/blog-outline.md``: the outline of the write-up.

Checks: hook, problem, solution/architecture, results and try-it sections (headings); the
try-it section links to the Space, the notebook and the repository; at least 200 words;
no TODO/FIXME outside the results section (results may wait for the training run); every
internal link resolves (files relative to the outline, ``#anchors`` to its headings).
"""

from __future__ import annotations

import re
from pathlib import Path

from . import _markdown as md
from .findings import (
    NOTEBOOK_PATH,
    REPOSITORY_URL,
    SPACE_APP_URL,
    SPACE_URL,
    Finding,
    missing_file,
)

__all__ = ["DOCS_PATH", "MIN_WORDS", "SECTIONS", "check", "check_text"]

GROUP = "docs"
DOCS_PATH = "docs/blog-outline.md"
MIN_WORDS = 200

SECTIONS: list[tuple[str, re.Pattern[str]]] = [
    ("hook", re.compile(r"\bhook\b", re.I)),
    ("problem", re.compile(r"\bproblem\b", re.I)),
    ("solution/architecture", re.compile(r"\bsolution\b|\barchitecture\b", re.I)),
    ("results", re.compile(r"\bresults?\b", re.I)),
    ("try-it", re.compile(r"\btry\b", re.I)),
]
_MARKERS = re.compile(r"\b(TODO|FIXME)\b")


def check(root: Path) -> list[Finding]:
    path = root / DOCS_PATH
    if not path.is_file():
        return [missing_file(GROUP, root, DOCS_PATH)]
    return check_text(path.read_text(encoding="utf-8"), path)


def _find_sections(text: str) -> dict[str, md.Heading]:
    found: dict[str, md.Heading] = {}
    for h in md.headings(text):
        if h.level == 1:
            continue
        for key, pattern in SECTIONS:
            if key not in found and pattern.search(h.text):
                found[key] = h
                break
    return found


def check_text(text: str, path: Path) -> list[Finding]:
    """Every docs check on ``text``, as if it were the file ``path`` (for relative links)."""
    sections = _find_sections(text)
    missing = [key for key, _ in SECTIONS if key not in sections]
    out = [
        Finding(
            GROUP,
            "sections",
            not missing,
            f"missing section(s): {', '.join(missing)} (a ## heading naming each)"
            if missing
            else ", ".join(f"{k}: {sections[k].text!r}" for k, _ in SECTIONS),
        ),
    ]
    out.append(_try_it_links(text, sections.get("try-it")))
    count = md.words(text)
    out.append(
        Finding(
            GROUP,
            "at least 200 words",
            count >= MIN_WORDS,
            f"{count} words" + ("" if count >= MIN_WORDS else f", need {MIN_WORDS}"),
        )
    )
    out.append(_markers(text, sections.get("results")))
    out.append(_internal_links(text, path))
    return out


def _try_it_links(text: str, heading: md.Heading | None) -> Finding:
    name = "try-it links"
    if heading is None:
        return Finding(GROUP, name, False, "no try-it section to hold the links")
    targets = [link.target for link in md.links(md.section(text, heading))]
    wanted = {
        "Space": any(t.rstrip("/").startswith((SPACE_URL, SPACE_APP_URL)) for t in targets),
        "notebook": any(NOTEBOOK_PATH.split("/")[-1] in t for t in targets),
        "repository": any(t.rstrip("/").startswith(REPOSITORY_URL) for t in targets),
    }
    missing = [k for k, ok in wanted.items() if not ok]
    if missing:
        hints = {
            "Space": SPACE_URL,
            "notebook": NOTEBOOK_PATH,
            "repository": REPOSITORY_URL,
        }
        return Finding(
            GROUP,
            name,
            False,
            "the try-it section has no link to the "
            + ", ".join(f"{k} ({hints[k]})" for k in missing),
        )
    return Finding(GROUP, name, True, "Space, notebook and repository")


def _markers(text: str, results: md.Heading | None) -> Finding:
    name = "no TODO/FIXME outside results"
    lines = text.splitlines()
    allowed: set[int] = set()
    if results is not None:
        end = results.line + 1 + len(md.section(text, results).splitlines())
        allowed = set(range(results.line, end))
    for i, line in enumerate(lines):
        m = _MARKERS.search(line)
        if m and i not in allowed:
            return Finding(
                GROUP,
                name,
                False,
                f"line {i + 1}: {m.group(1)} outside the results section: {line.strip()[:80]!r}",
            )
    return Finding(GROUP, name, True, "none")


def _internal_links(text: str, path: Path) -> Finding:
    name = "internal links resolve"
    anchors = {md.slug(h.text) for h in md.headings(text)}
    broken = []
    checked = 0
    for link in md.links(text):
        target = link.target
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, mailto:, ...
            continue
        checked += 1
        file_part, _, anchor = target.partition("#")
        if not file_part:
            if anchor not in anchors:
                broken.append(f"line {link.line}: #{anchor} names no heading")
            continue
        resolved = (path.parent / file_part).resolve()
        if not resolved.exists():
            broken.append(f"line {link.line}: {file_part} does not exist")
    if broken:
        return Finding(GROUP, name, False, "; ".join(broken[:5]))
    return Finding(GROUP, name, True, f"{checked} internal links")
