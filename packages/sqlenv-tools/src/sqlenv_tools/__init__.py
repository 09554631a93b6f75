"""SQLEnv release checks: ``verify`` runs them and prints one table.

Each check group is a module with ``check(root) -> list[Finding]``: ``manifest``,
``dockerfile``, ``notebook``, ``docs``, ``readme`` and ``image`` (which builds and runs
the Docker image). The package depends on no other ``sqlenv-*`` package: it checks the
repository and the image from the outside.
"""

from importlib.metadata import PackageNotFoundError, version

from .findings import Finding

try:
    __version__ = version("sqlenv-tools")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["Finding", "__version__"]
