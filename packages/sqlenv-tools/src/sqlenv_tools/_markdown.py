"""Just enough Markdown for the docs and README checks: headings, sections, links, words."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Heading", "Link", "headings", "links", "prose", "section", "slug", "words"]

_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})")
_ATX = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_INLINE_LINK = re.compile(r"!?\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_DEF = re.compile(r"^\s{0,3}\[([^\]]+)\]:\s*<?(\S+?)>?(?:\s+.*)?$")
_AUTOLINK = re.compile(r"<(https?://[^>\s]+)>")
_BARE_URL = re.compile(r"(?<![(<\[\"'])https?://[^\s)>\]\"'`]+")


@dataclass(frozen=True, slots=True)
class Heading:
    level: int
    text: str
    line: int  # 0-based index into the document's lines


@dataclass(frozen=True, slots=True)
class Link:
    text: str
    target: str
    line: int  # 1-based, for messages


def _code_mask(lines: list[str]) -> list[bool]:
    """True for each line inside a fenced code block (fences included)."""
    mask: list[bool] = []
    fence: str | None = None
    for line in lines:
        m = _FENCE.match(line)
        if fence is None and m:
            fence = m.group(2)[0] * len(m.group(2))
            mask.append(True)
        elif fence is not None:
            mask.append(True)
            if line.strip().startswith(fence):
                fence = None
        else:
            mask.append(False)
    return mask


def headings(text: str) -> list[Heading]:
    lines = text.splitlines()
    mask = _code_mask(lines)
    found = []
    for i, (line, in_code) in enumerate(zip(lines, mask, strict=True)):
        if in_code:
            continue
        m = _ATX.match(line)
        if m:
            found.append(Heading(len(m.group(1)), m.group(2).strip(), i))
    return found


def section(text: str, heading: Heading) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    lines = text.splitlines()
    end = len(lines)
    for h in headings(text):
        if h.line > heading.line and h.level <= heading.level:
            end = h.line
            break
    return "\n".join(lines[heading.line + 1 : end])


def prose(text: str) -> str:
    """The text without fenced code blocks."""
    lines = text.splitlines()
    mask = _code_mask(lines)
    return "\n".join(line for line, code in zip(lines, mask, strict=True) if not code)


def words(text: str) -> int:
    """Words of prose: code blocks, inline code, link targets and URLs left out."""
    text = re.sub(r"`[^`]*`", " ", prose(text))
    text = re.sub(r"\]\([^)]*\)", "] ", text)
    text = re.sub(r"<?https?://\S+", " ", text)
    return len(re.findall(r"[A-Za-z0-9][\w'’-]*", text))


def links(text: str) -> list[Link]:
    """Inline links and images, reference definitions, autolinks and bare URLs outside code."""
    lines = text.splitlines()
    mask = _code_mask(lines)
    found: list[Link] = []
    for i, (line, code) in enumerate(zip(lines, mask, strict=True)):
        if code:
            continue
        line = re.sub(r"`[^`]*`", "", line)  # inline code is not a link
        ref = _REF_DEF.match(line)
        if ref:
            found.append(Link(ref.group(1), ref.group(2), i + 1))
            continue
        for m in _INLINE_LINK.finditer(line):
            found.append(Link(m.group(1), m.group(2), i + 1))
        rest = _INLINE_LINK.sub("", line)
        for m in _AUTOLINK.finditer(rest):
            found.append(Link(m.group(1), m.group(1), i + 1))
        rest = _AUTOLINK.sub("", rest)
        for m in _BARE_URL.finditer(rest):
            url = m.group(0).rstrip(".,;:")
            found.append(Link(url, url, i + 1))
    return found


def slug(heading_text: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to dashes."""
    text = re.sub(r"`|\*\*|__|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading_text)
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")
