"""SQLEnv core: episode engine, read-only SQL sandbox, answer checker and reward."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sqlenv-core")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
