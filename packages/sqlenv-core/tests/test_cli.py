from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlenv_core.cli import main


def test_eval_json_reports_the_documented_keys(tiny_data_dir: Path, capsys):
    code = main(
        [
            "--data-dir",
            str(tiny_data_dir),
            "eval",
            "--policy",
            "oracle",
            "--split",
            "train",
            "--json",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0
    report = json.loads(out)
    assert {"n", "success_rate", "mean_return", "mean_steps", "by_difficulty"} <= report.keys()
    assert report["n"] == 3 and report["success_rate"] == 1.0
    assert set(report["by_difficulty"]) == {"easy", "medium"}
    assert "oracle on train" in err  # the progress bar goes to stderr


def test_eval_random_is_seeded(tiny_data_dir: Path, capsys):
    runs = []
    for _ in range(2):
        main(
            [
                "--data-dir",
                str(tiny_data_dir),
                "eval",
                "--policy",
                "random",
                "--split",
                "eval",
                "--seed",
                "7",
                "--json",
            ]
        )
        runs.append(json.loads(capsys.readouterr().out))
    assert runs[0] == {**runs[1], "seconds": runs[0]["seconds"]}


def test_eval_limit_and_text_output(tiny_data_dir: Path, capsys):
    assert (
        main(["--data-dir", str(tiny_data_dir), "eval", "--policy", "oracle", "--limit", "1"]) == 0
    )
    out = capsys.readouterr().out
    assert "policy oracle on eval: 1 questions" in out and "success rate 1.000" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--data-dir", "/nonexistent/sqlenv", "eval", "--policy", "oracle"],
            "/nonexistent/sqlenv does not exist",
        ),
        (["eval", "--policy", "oracle", "--limit", "0"], "--limit must be at least 1"),
        (["--budget", "0", "eval", "--policy", "oracle"], "--budget must be at least 1"),
    ],
)
def test_bad_input_gives_a_clear_error(tiny_data_dir: Path, capsys, argv, message):
    if "--data-dir" not in argv:
        argv = ["--data-dir", str(tiny_data_dir), *argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_play_a_whole_episode_in_the_terminal(tiny_data_dir: Path, capsys, monkeypatch):
    lines = iter(["help", "d customer", "q SELECT count(*) FROM customer", "a 3"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    assert main(["--data-dir", str(tiny_data_dir), "play", "--question-id", "t_count"]) == 0
    out = capsys.readouterr().out
    assert "How many customers are there?" in out
    assert "Table customer (3 rows)" in out
    assert "Correct." in out and "Episode over: correct" in out
    assert "Gold SQL: SELECT count(*) FROM customer" in out


def test_play_ends_cleanly_on_eof(tiny_data_dir: Path, monkeypatch):
    def eof(prompt=""):
        raise EOFError

    monkeypatch.setattr("builtins.input", eof)
    assert main(["--data-dir", str(tiny_data_dir), "play", "--question-id", "t_count"]) == 1
