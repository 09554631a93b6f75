"""Resource-bound tests (issue 11, findings 4-9): the reliability helpers, imported by path."""

from __future__ import annotations

import sys
from pathlib import Path

RELIABILITY = Path(__file__).resolve().parents[2] / "reliability"
if str(RELIABILITY) not in sys.path:
    sys.path.insert(0, str(RELIABILITY))
