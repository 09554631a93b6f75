"""``python -m sqlenv_tools``: the same as ``verify``."""

import sys

from .cli import main

sys.exit(main())
