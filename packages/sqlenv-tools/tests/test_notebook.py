from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlenv_tools import notebook
from sqlenv_tools.findings import Finding

Write = Callable[[str, str], Path]
PATH = "notebooks/train_grpo.ipynb"


def failing(findings: list[Finding]) -> dict[str, str]:
    return {f.check: f.reason for f in findings if not f.ok}


def test_good_notebook_passes(repo: Path) -> None:
    findings = notebook.check(repo)
    assert failing(findings) == {}
    assert [f.check for f in findings] == [
        "valid nbformat",
        "sections in order",
        "Colab badge or metadata",
        "no absolute local paths",
        "outputs cleared",
        "code cells compile",
    ]


def test_missing_file_is_a_clear_failure(tmp_path: Path) -> None:
    (finding,) = notebook.check(tmp_path)
    assert not finding.ok
    assert finding.reason == f"missing file {PATH} (looked in {tmp_path})"


def test_not_json(repo: Path, write: Write) -> None:
    write(PATH, "{not json")
    (finding,) = notebook.check(repo)
    assert finding.check == "valid nbformat"
    assert finding.reason.startswith("cannot read train_grpo.ipynb")


def test_invalid_nbformat(
    repo: Path, write: Write, make_notebook: Callable[..., str], cells: list[dict]
) -> None:
    cells[1]["cell_type"] = "spreadsheet"
    write(PATH, make_notebook(cells))
    assert failing(notebook.check(repo))["valid nbformat"].startswith("not valid nbformat")


@pytest.mark.parametrize(
    ("index", "section", "what"),
    [
        (1, "setup", "a pip install"),
        (2, "connect", "SQLEnvClient"),
        (3, "train", "GRPO"),
        (4, "evaluate", "held-out accuracy"),
        (5, "plot", "matplotlib (an import"),
    ],
)
def test_each_missing_section_is_named(
    repo: Path,
    write: Write,
    make_notebook: Callable[..., str],
    cells: list[dict],
    index: int,
    section: str,
    what: str,
) -> None:
    cells[index]["source"] = "x = 1"
    write(PATH, make_notebook(cells))
    reason = failing(notebook.check(repo))["sections in order"]
    assert reason.startswith(f"no {section} cell: no code cell with {what}")


def test_sections_out_of_order(
    repo: Path, write: Write, make_notebook: Callable[..., str], cells: list[dict]
) -> None:
    cells[3], cells[4] = cells[4], cells[3]  # evaluate before train
    write(PATH, make_notebook(cells))
    reason = failing(notebook.check(repo))["sections in order"]
    assert reason.startswith("the evaluate cell (cell 4) comes before the train cell (cell 5)")


def test_an_early_import_does_not_count_as_the_section(
    repo: Path, write: Write, make_notebook: Callable[..., str], cells: list[dict]
) -> None:
    cells[1]["source"] += "\nimport matplotlib.pyplot as plt"  # plot imported in setup
    write(PATH, make_notebook(cells))
    assert failing(notebook.check(repo)) == {}


def test_pip_through_subprocess_counts_as_setup(
    repo: Path, write: Write, make_notebook: Callable[..., str], cells: list[dict]
) -> None:
    cells[1]["source"] = (
        "import subprocess, sys\nsubprocess.run([sys.executable, '-m', 'pip', "
        "'install', 'sqlenv-client'], check=True)"
    )
    write(PATH, make_notebook(cells))
    assert failing(notebook.check(repo)) == {}


def test_no_colab(
    repo: Path, write: Write, make_notebook: Callable[..., str], cells: list[dict]
) -> None:
    cells[0]["source"] = "# Train on SQLEnv"
    write(PATH, make_notebook(cells))
    assert failing(notebook.check(repo))["Colab badge or metadata"] == (
        "no 'Open in Colab' badge and no colab metadata"
    )
    write(PATH, make_notebook(cells, metadata={"colab": {"provenance": []}}))
    assert "Colab badge or metadata" not in failing(notebook.check(repo))


@pytest.mark.parametrize(
    "path",
    [
        "/home/alice/sqlenv/data",
        "/Users/bob/data",
        "/work/main/data",
        "C:\\Users\\me",
        "file:///tmp/x",
    ],
)
def test_absolute_local_paths(
    repo: Path, write: Write, make_notebook: Callable[..., str], cells: list[dict], path: str
) -> None:
    cells[2]["source"] += f"\nDATA = {path!r}"
    write(PATH, make_notebook(cells))
    reason = failing(notebook.check(repo))["no absolute local paths"]
    assert reason.startswith("cell 3: local path")


def test_colab_and_temp_paths_are_fine(
    repo: Path, write: Write, make_notebook: Callable[..., str], cells: list[dict]
) -> None:
    cells[2]["source"] += "\nOUT = '/content/out'\nTMP = '/tmp/run'\nURL = 'https://x.org/home/a'"
    write(PATH, make_notebook(cells))
    assert failing(notebook.check(repo)) == {}


def test_outputs_must_be_cleared(
    repo: Path, write: Write, make_notebook: Callable[..., str], cells: list[dict]
) -> None:
    cells[2]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "hi\n"}]
    write(PATH, make_notebook(cells))
    assert failing(notebook.check(repo))["outputs cleared"].startswith("cell 3 has 1 output(s)")
    cells[2]["outputs"] = []
    cells[2]["execution_count"] = 7
    write(PATH, make_notebook(cells))
    assert failing(notebook.check(repo))["outputs cleared"] == (
        "cell 3 has execution_count 7; clear it"
    )


def test_a_cell_that_does_not_compile(
    repo: Path, write: Write, make_notebook: Callable[..., str], cells: list[dict]
) -> None:
    cells[3]["source"] += "\nfor x in range(3)\n    print(x)"
    write(PATH, make_notebook(cells))
    assert failing(notebook.check(repo))["code cells compile"] == ("cell 4 line 4: expected ':'")


def test_magics_and_cell_magics_are_not_python(
    repo: Path, write: Write, make_notebook: Callable[..., str], cells: list[dict]
) -> None:
    cells.append(
        {
            "cell_type": "code",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
            "source": "%%bash\necho this is { not python",
        }
    )
    cells[1]["source"] += "\nfiles = !ls\n%time x = 1\nprint('\\d')"
    write(PATH, make_notebook(cells))
    assert failing(notebook.check(repo)) == {}
