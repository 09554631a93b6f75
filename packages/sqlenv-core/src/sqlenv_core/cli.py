"""``sqlenv``: evaluate baseline policies, or play an episode by hand in the terminal."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from tqdm import tqdm

from . import __version__
from .config import DEFAULT_BUDGET, EnvConfig
from .dataset import load_dataset
from .env import SQLEnvironment
from .errors import SQLEnvError
from .evaluation import evaluate
from .policies import OraclePolicy, Policy, RandomPolicy
from .schemas import SQLObservation

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sqlenv", description=__doc__)
    parser.add_argument("--version", action="version", version=f"sqlenv-core {__version__}")
    parser.add_argument(
        "--data-dir", help="data directory (default: $SQLENV_DATA_DIR or the bundled data/)"
    )
    parser.add_argument(
        "--budget", type=int, default=DEFAULT_BUDGET, help="steps per episode (default 15)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    ev = sub.add_parser("eval", help="evaluate a baseline policy on a split")
    ev.add_argument("--policy", choices=["oracle", "random"], required=True)
    ev.add_argument("--split", choices=["train", "eval"], default="eval")
    ev.add_argument("--limit", type=int, help="evaluate the first N questions of the split")
    ev.add_argument("--seed", type=int, default=0, help="seed of the random policy")
    ev.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    play = sub.add_parser("play", help="play one episode in the terminal")
    play.add_argument("--question-id")
    play.add_argument("--split", choices=["train", "eval"])
    play.add_argument("--db-id")
    play.add_argument("--difficulty", choices=["easy", "medium", "hard", "extra"])
    play.add_argument("--seed", type=int)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.budget < 1:
            raise SQLEnvError(f"--budget must be at least 1, got {args.budget}")
        dataset = load_dataset(args.data_dir)
        env = SQLEnvironment(dataset, EnvConfig(budget=args.budget))
        if args.command == "eval":
            return _eval(env, args)
        return _play(env, args)
    except SQLEnvError as exc:
        print(f"sqlenv: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _eval(env: SQLEnvironment, args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise SQLEnvError(f"--limit must be at least 1, got {args.limit}")
    questions = list(env.dataset.select(split=args.split))[: args.limit]
    policy: Policy = (
        OraclePolicy(env.dataset) if args.policy == "oracle" else RandomPolicy(seed=args.seed)
    )
    with tqdm(
        total=len(questions), desc=f"{args.policy} on {args.split}", unit="ep", file=sys.stderr
    ) as bar:
        report = evaluate(env, policy, questions, progress=lambda _: bar.update())
    summary = report.summary()
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"policy {report.policy} on {args.split}: {report.n} questions in {report.seconds:.2f} s")
    print(
        f"  success rate {report.success_rate:.3f}   mean return {report.mean_return:.3f}"
        f"   mean steps {report.mean_steps:.2f}   errors {report.errors}"
    )
    for level, s in report.by_difficulty.items():
        print(
            f"  {level:<7} n={s.n:<5} success {s.success_rate:.3f}   mean return {s.mean_return:.3f}"
        )
    return 0


_HELP = """Actions: DESCRIBE <table> | SAMPLE <table> | QUERY <sql> | ANSWER <value>
Short forms: d <table>, s <table>, q <sql>, a <value>. 'help' shows this, 'quit' gives up."""
_SHORT = {"D": "DESCRIBE", "S": "SAMPLE", "Q": "QUERY", "A": "ANSWER"}


def _play(env: SQLEnvironment, args: argparse.Namespace) -> int:
    obs = env.reset(
        seed=args.seed,
        question_id=args.question_id,
        split=args.split,
        db_id=args.db_id,
        difficulty=args.difficulty,
    )
    state = env.state
    print(f"Question {state.question_id} ({state.difficulty}, database {state.db_id})")
    print(f"  {obs.question}")
    print(f"Tables: {', '.join(obs.tables)}   Budget: {obs.budget_remaining} steps")
    print(_HELP)
    while not obs.done:
        try:
            line = input(f"[{obs.budget_remaining} left] > ").strip()
        except EOFError:
            print()
            return 1
        if not line:
            continue
        if line.lower() in {"quit", "exit"}:
            return 1
        if line.lower() == "help":
            print(_HELP)
            continue
        head, _, rest = line.partition(" ")
        kind = _SHORT.get(head.upper(), head.upper())
        obs = env.step({"action_type": kind, "argument": rest})
        _show(obs)
    final = env.state
    print(
        f"\nEpisode over: {'correct' if final.correct else 'not correct'}; return {final.total_reward:+.3f} "
        f"in {final.step_count} steps"
    )
    print(f"Gold SQL: {final.gold_sql}")
    return 0


def _show(obs: SQLObservation) -> None:
    if obs.error:
        print(f"error: {obs.error}")
    if obs.result:
        print(obs.result)
    if obs.reward_breakdown is not None and obs.reward is not None:
        b = obs.reward_breakdown
        print(
            f"reward {obs.reward:+.3f}  (operational {b.operational:+.3f}, progress {b.progress:+.3f}, "
            f"terminal {b.terminal:+.3f})"
        )


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
