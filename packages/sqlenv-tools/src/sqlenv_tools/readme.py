"""The root ``README.md``: what a judge reads first.

Checks: a description before the first section; a quick start with a code block; a link to
the Space; a link to the notebook; an architecture section.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from . import _markdown as md
from .findings import NOTEBOOK_PATH, SPACE_APP_URL, SPACE_URL, Finding, missing_file

__all__ = ["MIN_DESCRIPTION_WORDS", "README_PATH", "check", "check_text"]

GROUP = "readme"
README_PATH = "README.md"
MIN_DESCRIPTION_WORDS = 25


def check(root: Path) -> list[Finding]:
    path = root / README_PATH
    if not path.is_file():
        return [missing_file(GROUP, root, README_PATH)]
    return check_text(path.read_text(encoding="utf-8"))


def check_text(text: str) -> list[Finding]:
    heads = md.headings(text)
    return [
        _description(text, heads),
        _quick_start(text, heads),
        _link(
            text,
            "Space link",
            lambda t: t.rstrip("/").startswith((SPACE_URL, SPACE_APP_URL)),
            SPACE_URL,
        ),
        _link(text, "notebook link", lambda t: NOTEBOOK_PATH.split("/")[-1] in t, NOTEBOOK_PATH),
        _architecture(heads),
    ]


def _description(text: str, heads: list[md.Heading]) -> Finding:
    name = "description"
    lines = text.splitlines()
    first_section = next((h.line for h in heads if h.level >= 2), len(lines))
    start = next((h.line + 1 for h in heads if h.level == 1 and h.line < first_section), 0)
    intro = "\n".join(lines[start:first_section])
    count = md.words(intro)
    ok = count >= MIN_DESCRIPTION_WORDS
    return Finding(
        GROUP,
        name,
        ok,
        f"{count} words before the first section"
        + ("" if ok else f"; need {MIN_DESCRIPTION_WORDS} saying what SQLEnv is"),
    )


def _quick_start(text: str, heads: list[md.Heading]) -> Finding:
    name = "quick start"
    pattern = re.compile(r"quick\s*-?\s*start|getting started", re.I)
    heading = next((h for h in heads if pattern.search(h.text)), None)
    if heading is None:
        return Finding(GROUP, name, False, "no 'Quick start' section")
    if not re.search(r"^\s*(```|~~~)", md.section(text, heading), re.M):
        return Finding(GROUP, name, False, f"the {heading.text!r} section has no code block")
    return Finding(GROUP, name, True, heading.text)


def _link(text: str, name: str, matches: Callable[[str], bool], hint: str) -> Finding:
    for link in md.links(text):
        if matches(link.target):
            return Finding(GROUP, name, True, f"line {link.line}: {link.target}")
    return Finding(GROUP, name, False, f"no link to {hint}")


def _architecture(heads: list[md.Heading]) -> Finding:
    heading = next((h for h in heads if re.search(r"architecture", h.text, re.I)), None)
    if heading is None:
        return Finding(GROUP, "architecture section", False, "no 'Architecture' section")
    return Finding(GROUP, "architecture section", True, heading.text)
