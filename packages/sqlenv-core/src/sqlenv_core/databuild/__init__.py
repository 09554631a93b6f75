"""Build data directories from question files and SQLite databases (``sqlenv data build``).

One module per source format (``spider``, ``bird``, ``jsonl``) turns a file into
``records.SourceQuestion``s; ``gold`` runs their gold queries through the engine's
sandbox; ``builder`` writes the split atomically beside the directory's other splits,
with ``questions/excluded.jsonl`` (what was left out and why) and ``manifest.json``
(database hashes and counts). ``docs/data.md`` describes the formats.
"""

from __future__ import annotations

from .builder import FORMATS, BuildResult, BuildSpec, build_split
from .records import REASONS, Exclusion, SourceQuestion

__all__ = [
    "FORMATS",
    "REASONS",
    "BuildResult",
    "BuildSpec",
    "Exclusion",
    "SourceQuestion",
    "build_split",
]
