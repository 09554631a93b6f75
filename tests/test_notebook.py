"""``notebooks/train_grpo.ipynb``: its shape, and an offline end-to-end run.

The end-to-end test starts a local ``sqlenv-server`` and executes the notebook with
nbclient, configured through ``SQLENV_*`` variables to use a tiny random Qwen3 with a
tokenizer trained in process (nothing is downloaded): setup, connect, SFT warm-up, two
GRPO steps against the server, the evaluation before and after, and the plot. It needs
the training dependencies (``uv sync --group train``; ``.ci/run`` installs them).
"""

from __future__ import annotations

import importlib.util
import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "train_grpo.ipynb"
TRAINING_DEPS = ("torch", "transformers", "trl", "nbclient", "ipykernel", "matplotlib")
missing = [m for m in TRAINING_DEPS if importlib.util.find_spec(m) is None]
needs_training = pytest.mark.skipif(
    bool(missing), reason=f"needs the train group ({', '.join(missing)} missing): uv sync --group train"
)


def _cells():
    return json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]


def test_notebook_is_committed_clean():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert "colab" in nb["metadata"] and nb["metadata"]["kernelspec"]["name"] == "python3"
    assert "colab-badge.svg" in "".join(nb["cells"][0]["source"])
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
    text = NOTEBOOK.read_text(encoding="utf-8")
    assert not re.search(r"(/work/|/home/|/tmp/|/root/|C:\\\\)", text), "absolute path in the notebook"


def test_notebook_sections_are_in_order():
    headings = [
        "".join(c["source"]).splitlines()[0] for c in _cells() if c["cell_type"] == "markdown"
    ]
    assert [h.split(". ", 1)[-1] for h in headings[1:]] == [
        "Configuration",
        "Setup",
        "Connect",
        "Train",
        "Evaluate",
        "Plot",
    ]
    source = "\n".join("".join(c["source"]) for c in _cells())
    for needle in ('MODEL = setting("MODEL", "Qwen/Qwen3-0.6B")', '"pip", "install"', "SQLEnvClient("):
        assert needle in source
    assert "SQLEnvTool.factory(base_url=SERVER_URL, budget=BUDGET)" in source


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def local_server():
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sqlenv_server", "--port", str(port), "--data-dir", str(REPO / "data"),
         "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"sqlenv-server did not start: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.3)
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stderr.close()


@needs_training
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_notebook_runs_offline_end_to_end(local_server, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    settings = {
        "SQLENV_MODEL": "tiny",
        "SQLENV_URL": local_server,
        "SQLENV_SFT_N": "8",
        "SQLENV_SFT_STEPS": "2",
        "SQLENV_GRPO_STEPS": "2",
        "SQLENV_NUM_GENERATIONS": "4",
        "SQLENV_MAX_COMPLETION": "160",
        "SQLENV_EVAL_N": "3",
        "SQLENV_MAX_NEW_TOKENS": "24",
        "SQLENV_OUTPUT_DIR": str(tmp_path / "outputs"),
        "SQLENV_DATA_DIR": str(REPO / "data"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRL_EXPERIMENTAL_SILENCE": "1",
        "MPLBACKEND": "Agg",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONWARNINGS": "ignore",
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    start = time.monotonic()
    NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()
    elapsed = time.monotonic() - start
    outputs = "\n".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "model tiny, CPU, budget 15" in outputs
    assert "answer 42 ->" in outputs  # the smoke episode over the server
    assert "SFT: 8 trajectories, 2 steps" in outputs
    assert re.search(r"GRPO: 2 steps, mean reward first [+-]\d", outputs)
    assert re.search(r"before: accuracy \d\.\d{3}, mean return [+-]\d\.\d{3}, valid tool calls", outputs)
    assert "after: accuracy" in outputs and "(3 questions)" in outputs
    assert (tmp_path / "outputs" / "results.png").stat().st_size > 1000
    assert elapsed < 300, f"the notebook took {elapsed:.0f} s"
