"""The package surface: exports, version, typing marker, and the core modules it may import.

From ``sqlenv-core`` the client imports only engine-free modules: the wire schemas, and
``sqlenv_core.prompting`` (the conversation format the TRL adapter and the model
policies share with the SFT export), which itself imports nothing but the schemas.
"""

from __future__ import annotations

import ast
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import sqlenv_client

SOURCE = Path(sqlenv_client.__file__).parent
PUBLIC_MODULES = ("errors", "client", "async_client", "pool")


def _isort_key(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order: CONSTANTS, then Classes, then the rest."""
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


def test_all_is_sorted_and_complete() -> None:
    assert sqlenv_client.__all__ == sorted(sqlenv_client.__all__, key=_isort_key)
    assert len(set(sqlenv_client.__all__)) == len(sqlenv_client.__all__)
    public = {name for name in vars(sqlenv_client) if not name.startswith("_")}
    modules = {"errors", "client", "async_client", "pool", "trl", "policies", "hf", "training"}
    assert public - modules == set(sqlenv_client.__all__) - {"__version__"}
    for module in PUBLIC_MODULES:
        for name in getattr(sqlenv_client, module).__all__:
            assert name in sqlenv_client.__all__, f"{module}.{name} is not re-exported"


def test_version_comes_from_metadata() -> None:
    assert sqlenv_client.__version__ == importlib.metadata.version("sqlenv-client")


def test_py_typed_is_shipped() -> None:
    assert (SOURCE / "py.typed").is_file()


def _imported_modules(path: Path, *, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = ast.walk(tree)
    if top_level_only:  # imports outside function bodies run when the module is imported
        nodes = (n for n in _walk_outside_functions(tree))
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _walk_outside_functions(node: ast.AST):
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        yield child
        yield from _walk_outside_functions(child)


ALLOWED_CORE = ("sqlenv_core.schemas", "sqlenv_core.prompting")
# Clearly marked exception: the training helpers evaluate a model on an in-process engine,
# so they import the evaluation harness, lazily, inside the function that needs it.
LAZY_CORE = {"training.py": ("sqlenv_core.evaluation",)}


def _core(names: set[str]) -> set[str]:
    return {n for n in names if n == "sqlenv_core" or n.startswith("sqlenv_core.")}


def test_only_engine_free_core_modules_are_imported() -> None:
    files = sorted(SOURCE.rglob("*.py"))
    assert len(files) >= 6
    for path in files:
        eager = _core(_imported_modules(path, top_level_only=True))
        assert eager == {n for n in eager if n.startswith(ALLOWED_CORE)}, (
            f"{path.name} imports {sorted(eager)} from sqlenv_core at module level"
        )
        allowed = ALLOWED_CORE + LAZY_CORE.get(path.name, ())
        lazy = _core(_imported_modules(path))
        assert lazy == {n for n in lazy if n.startswith(allowed)}, (
            f"{path.name} imports {sorted(lazy)} from sqlenv_core"
        )
        assert not any(n.startswith("sqlenv_server") for n in _imported_modules(path))


def test_importing_the_client_loads_no_engine_module() -> None:
    code = (
        "import sys, sqlenv_client; "
        "print(sorted(m for m in sys.modules if m.startswith(('sqlenv_core', 'sqlglot', 'docker'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['sqlenv_core', 'sqlenv_core.schemas']"


def test_the_training_modules_load_no_engine_and_no_ml_library() -> None:
    """``sqlenv_client.trl`` and ``.policies`` import without torch, transformers or trl."""
    code = (
        "import sys, sqlenv_client.trl, sqlenv_client.policies; "
        "print(sorted(m for m in sys.modules if m.startswith(('sqlenv_core', 'sqlglot', 'torch', "
        "'transformers', 'trl', 'datasets'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['sqlenv_core', 'sqlenv_core.prompting', 'sqlenv_core.schemas']"


def test_model_policies_are_registered_as_entry_points() -> None:
    found = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="sqlenv.policies")}
    assert found["hf"] == "sqlenv_client.policies:make_hf_policy"
    assert found["openai"] == "sqlenv_client.policies:make_openai_policy"
