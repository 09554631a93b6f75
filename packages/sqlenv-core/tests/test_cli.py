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


# ----------------------------------------------------------------- outputs, options, help


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "--policy", "oracle", "--out", "/nonexistent/x.json"],
        ["sft-data", "--out", "/nonexistent/x.jsonl"],
    ],
)
def test_an_unwritable_output_fails_before_any_work(tiny_data_dir: Path, capsys, monkeypatch, argv):
    import sqlenv_core.cli as cli_module

    def no_work(*args, **kwargs):
        raise AssertionError("the data was loaded before the output was checked")

    monkeypatch.setattr(cli_module, "load_dataset", no_work)
    assert main(["--data-dir", str(tiny_data_dir), *argv]) == 2
    err = capsys.readouterr().err
    assert err == f"sqlenv: error: --out {argv[-1]}: the folder /nonexistent does not exist\n"


def test_an_output_that_is_a_directory_is_refused(tiny_data_dir: Path, tmp_path: Path, capsys):
    code = main(
        ["--data-dir", str(tiny_data_dir), "eval", "--policy", "oracle", "--out", str(tmp_path)]
    )
    assert code == 2
    assert "is a directory" in capsys.readouterr().err


def test_data_dir_and_budget_work_before_and_after_the_command(tiny_data_dir: Path, capsys):
    for argv in (
        ["--data-dir", str(tiny_data_dir), "eval", "--policy", "oracle", "--json"],
        ["eval", "--data-dir", str(tiny_data_dir), "--policy", "oracle", "--json"],
        ["--budget", "3", "eval", "--policy", "oracle", "--data-dir", str(tiny_data_dir), "--json"],
    ):
        assert main(argv) == 0, argv
        assert json.loads(capsys.readouterr().out)["n"] == 2
    # a value after the command wins over one before it
    argv = ["--budget", "0", "eval", "--budget", "5", "--data-dir", str(tiny_data_dir)]
    assert main([*argv, "--policy", "oracle", "--json"]) == 0
    capsys.readouterr()
    assert (
        main(["eval", "--budget", "0", "--data-dir", str(tiny_data_dir), "--policy", "oracle"]) == 2
    )
    assert "--budget must be at least 1" in capsys.readouterr().err


def test_eval_reports_per_split_and_per_difficulty(tiny_data_dir: Path, capsys):
    argv = ["--data-dir", str(tiny_data_dir), "eval", "--policy", "oracle"]
    assert main([*argv, "--split", "train", "--split", "eval", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 5 and report["success_rate"] == 1.0
    assert list(report["by_split"]) == ["train", "eval"]
    assert report["by_split"]["train"]["n"] == 3
    assert report["by_split"]["eval"]["by_difficulty"] == {
        "easy": {"n": 1, "success_rate": 1.0, "mean_return": pytest.approx(1.0, abs=0.2)},
        "medium": {"n": 1, "success_rate": 1.0, "mean_return": pytest.approx(1.0, abs=0.2)},
    }
    assert main([*argv, "--split", "train", "--split", "eval"]) == 0
    out = capsys.readouterr().out
    assert "policy oracle on train, eval: 5 questions" in out
    assert "  train: n=3" in out and "  eval: n=2" in out


def test_an_unknown_split_names_the_splits(tiny_data_dir: Path, capsys):
    argv = ["--data-dir", str(tiny_data_dir), "eval", "--policy", "oracle", "--split", "test"]
    assert main(argv) == 2
    assert "splits are eval, train" in capsys.readouterr().err


def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", [[], ["eval"], ["sft-data"], ["play"], ["data", "build"]])
def test_help_reads_like_a_kept_cli(command: list[str], capsys):
    text = _help(command, capsys)
    assert "``" not in text and "data_dir" not in text
    assert "--data-dir" in text or command == ["data", "build"]
    assert "usage: sqlenv" in text


def test_play_options_all_have_help(capsys):
    text = _help(["play"], capsys)
    for flag in ("--question-id ID", "--split NAME", "--db-id DB", "--seed N"):
        line = next(line for line in text.splitlines() if line.strip().startswith(flag))
        assert len(line.strip()) > len(flag) + 5, f"{flag} has no help: {line!r}"


def test_eval_help_names_each_policy_once(capsys):
    text = _help(["eval"], capsys)
    options = text.split("options:")[1]
    policy = " ".join(options.split("--policy NAME")[1].split("--split")[0].split())
    for name in ("oracle", "random", "hf", "openai"):
        assert policy.count(name) == 1, policy


def test_a_missing_data_dir_says_how_to_give_one(capsys):
    assert main(["eval", "--data-dir", "/nonexistent/sqlenv", "--policy", "oracle"]) == 2
    err = capsys.readouterr().err
    assert "/nonexistent/sqlenv does not exist" in err and "pass data_dir" not in err


def test_play_explains_unknown_actions_and_says_goodbye(tiny_data_dir: Path, capsys, monkeypatch):
    lines = iter(["frobnicate customer", "quit"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    assert main(["--data-dir", str(tiny_data_dir), "play", "--question-id", "t_count"]) == 1
    out = capsys.readouterr().out
    assert "unknown action 'frobnicate'; no step used." in out
    assert "validation" not in out.lower() and "pydantic" not in out.lower()
    assert "Gave up after 0 steps" in out and "Gold SQL: SELECT count(*) FROM customer" in out
