"""Scale-out tests: the pool against real servers, the Ray Serve deployment, Kubernetes.

The helper modules beside the deployment (``deploy/ray``) and the reliability tests'
``support`` (a real ``sqlenv-server`` subprocess) are imported by path: the root test
run uses ``--import-mode=importlib``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT / "deploy" / "ray", ROOT / "tests" / "reliability"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
