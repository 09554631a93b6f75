"""The data package: what a pip user gets without a checkout, and how the engine finds it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlenv_data
from sqlenv_core import dataset


def test_the_package_holds_a_loadable_data_directory() -> None:
    root = sqlenv_data.data_dir()
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["databases"]
    ds = dataset.load_dataset(root)
    assert {q.split for q in ds.questions} == {"train", "eval", "eval-syn"}


@pytest.fixture
def no_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No $SQLENV_DATA_DIR, and no data/ above the working directory or the engine's files:
    a pip install."""
    monkeypatch.delenv(dataset.DATA_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(dataset, "__file__", str(tmp_path / "site-packages" / "dataset.py"))
    return tmp_path


def test_without_a_checkout_the_engine_uses_the_installed_package(no_checkout: Path) -> None:
    assert dataset.default_data_dir() == sqlenv_data.data_dir()


def test_an_environment_variable_still_comes_first(
    no_checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(dataset.DATA_DIR_ENV, str(no_checkout / "mine"))
    assert dataset.default_data_dir() == no_checkout / "mine"


def test_with_no_data_at_all_the_error_says_what_to_install(
    no_checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dataset.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(dataset.DataError) as exc:
        dataset.load_dataset()
    assert str(exc.value) == (
        f"data directory {no_checkout / 'data'} does not exist: install the bundled data "
        '(pip install "sqlenv-core[data]"), or point SQLENV_DATA_DIR at a data directory'
    )
