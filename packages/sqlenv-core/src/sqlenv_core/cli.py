"""``sqlenv``: evaluate policies, export SFT warm-up data, or play an episode by hand.

Policies beyond the built-in ``oracle`` and ``random`` come from other packages through
the ``sqlenv.policies`` entry-point group: ``sqlenv-client`` registers ``hf`` (a Hugging
Face causal LM, with its ``trl`` extra) and ``openai`` (any OpenAI-compatible endpoint).
An entry point names a factory called with the model options given on the command line
(``model``, ``base_url``, ``api_key``, ``max_new_tokens``, ``temperature``, ``seed``,
``budget``) that returns a ``sqlenv_core.policies.Policy``.

``sqlenv eval --server URL`` plays the episodes on servers instead of in-process, through
the ``pool`` entry point of the ``sqlenv.remote`` group (``sqlenv-client``'s pooled
session, which restarts an episode on a live replica when one dies); the questions and
the oracle's gold still come from the local data directory.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any

from tqdm import tqdm

from . import __version__
from .config import DEFAULT_BUDGET, EnvConfig
from .dataset import load_dataset
from .env import SQLEnvironment
from .errors import SQLEnvError
from .evaluation import evaluate, sample_questions
from .policies import OraclePolicy, Policy, RandomPolicy
from .schemas import SQLObservation

__all__ = ["POLICY_GROUP", "main"]

POLICY_GROUP = "sqlenv.policies"
REMOTE_GROUP = "sqlenv.remote"
BUILTIN_POLICIES = ("oracle", "random")
_INSTALL_HINT = {
    "hf": 'pip install "sqlenv-client[trl]"',
    "openai": "pip install sqlenv-client",
}


def _discovered_policies() -> dict[str, Any]:
    """Entry points of the ``sqlenv.policies`` group, by name (not loaded yet)."""
    return {ep.name: ep for ep in entry_points(group=POLICY_GROUP)}


def _policy_factory(name: str) -> Callable[..., Policy]:
    found = _discovered_policies()
    if name not in found:
        known = ", ".join([*BUILTIN_POLICIES, *sorted(found)])
        hint = f"; install it with: {_INSTALL_HINT[name]}" if name in _INSTALL_HINT else ""
        raise SQLEnvError(f"unknown policy {name!r} (available: {known}){hint}")
    try:
        return found[name].load()
    except ImportError as exc:
        hint = _INSTALL_HINT.get(name, "install the package that provides it")
        raise SQLEnvError(f"policy {name!r} cannot be loaded ({exc}); {hint}") from exc


def _remote_env(urls: list[str]) -> Any:
    """A session on ``urls`` from the ``sqlenv.remote`` entry point ``pool`` (sqlenv-client)."""
    found = {ep.name: ep for ep in entry_points(group=REMOTE_GROUP)}
    if "pool" not in found:
        raise SQLEnvError("--server needs sqlenv-client: pip install sqlenv-client")
    try:
        return found["pool"].load()(urls)
    except ValueError as exc:  # a malformed URL
        raise SQLEnvError(f"--server: {exc}") from exc


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

    ev = sub.add_parser("eval", help="evaluate a policy on a split")
    extra = sorted(set(_discovered_policies()) - set(BUILTIN_POLICIES))
    ev.add_argument(
        "--policy",
        required=True,
        metavar="NAME",
        help=f"one of {', '.join([*BUILTIN_POLICIES, *extra])} (more with sqlenv-client: hf, openai)",
    )
    ev.add_argument("--split", choices=["train", "eval"], default="eval")
    ev.add_argument("--limit", type=int, help="evaluate the first N questions of the split")
    ev.add_argument(
        "--sample",
        type=int,
        metavar="N",
        help="evaluate a fixed random sample of N questions of the split (see --sample-seed)",
    )
    ev.add_argument("--sample-seed", type=int, default=0, help="seed of --sample (default 0)")
    ev.add_argument("--seed", type=int, default=0, help="seed of the policy (random, sampling)")
    ev.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    ev.add_argument("--out", help="also write the full report, episodes included, to this file")
    ev.add_argument(
        "--server",
        action="append",
        metavar="URL",
        help="play on a SQLEnv server instead of in-process; repeat for several replicas "
        "(needs sqlenv-client: an episode whose replica dies is restarted on a live one)",
    )
    models = ev.add_argument_group("model policies (hf, openai)")
    models.add_argument("--model", help="model: a Hugging Face id or local path, or the served name")
    models.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    models.add_argument("--api-key", help="API key of the endpoint (default: $OPENAI_API_KEY)")
    models.add_argument("--max-new-tokens", type=int, help="tokens generated per turn")
    models.add_argument("--temperature", type=float, help="sampling temperature (default 0: greedy)")

    sft = sub.add_parser("sft-data", help="export oracle trajectories as tool-calling chats for SFT")
    sft.add_argument("--split", choices=["train", "eval"], default="train")
    sft.add_argument("--out", required=True, help="JSON lines file to write")
    sft.add_argument("--limit", type=int, help="export at most N trajectories")
    sft.add_argument("--difficulty", choices=["easy", "medium", "hard", "extra"], action="append")
    sft.add_argument("--seed", type=int, default=0, help="question order and plan variation")

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
        if args.command == "sft-data":
            return _sft_data(env, args)
        return _play(env, args)
    except SQLEnvError as exc:
        print(f"sqlenv: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _make_policy(env: SQLEnvironment, args: argparse.Namespace) -> Policy:
    if args.policy == "oracle":
        return OraclePolicy(env.dataset)
    if args.policy == "random":
        return RandomPolicy(seed=args.seed)
    factory = _policy_factory(args.policy)
    options = {
        "model": args.model,
        "base_url": args.base_url,
        "api_key": args.api_key,
        "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature,
    }
    options = {k: v for k, v in options.items() if v is not None}
    try:
        return factory(seed=args.seed, budget=env.config.budget, **options)
    except ImportError as exc:
        hint = _INSTALL_HINT.get(args.policy, "install its dependencies")
        raise SQLEnvError(f"policy {args.policy!r} needs {exc.name or exc}: {hint}") from exc
    except (TypeError, ValueError) as exc:
        raise SQLEnvError(f"policy {args.policy!r}: {exc}") from exc


def _eval(env: SQLEnvironment, args: argparse.Namespace) -> int:
    for flag, value in (("--limit", args.limit), ("--sample", args.sample)):
        if value is not None and value < 1:
            raise SQLEnvError(f"{flag} must be at least 1, got {value}")
    questions = sample_questions(env.dataset.select(split=args.split), args.sample, args.sample_seed)
    questions = questions[: args.limit]
    policy = _make_policy(env, args)
    player = _remote_env(args.server) if args.server else env
    budget = args.budget if args.server else None  # the server's own default may differ
    with tqdm(
        total=len(questions), desc=f"{args.policy} on {args.split}", unit="ep", file=sys.stderr
    ) as bar:
        try:
            report = evaluate(player, policy, questions, lambda _: bar.update(), budget)
        finally:
            if player is not env:
                player.close()
    summary = report.summary()
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(report.model_dump_json(indent=1))
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"policy {report.policy} on {args.split}: {report.n} questions in {report.seconds:.2f} s")
    print(
        f"  success rate {report.success_rate:.3f}   mean return {report.mean_return:.3f}"
        f"   mean steps {report.mean_steps:.2f}   errors {report.errors}"
    )
    if report.tool_call_parse_rate is not None:
        print(f"  tool-call parse rate {report.tool_call_parse_rate:.3f}")
    for level, s in report.by_difficulty.items():
        print(
            f"  {level:<7} n={s.n:<5} success {s.success_rate:.3f}   mean return {s.mean_return:.3f}"
        )
    return 0


def _sft_data(env: SQLEnvironment, args: argparse.Namespace) -> int:
    from .sft import SFTOptions, iter_trajectories, write_jsonl

    if args.limit is not None and args.limit < 1:
        raise SQLEnvError(f"--limit must be at least 1, got {args.limit}")
    questions = [
        q
        for q in env.dataset.select(split=args.split)
        if not args.difficulty or q.difficulty in args.difficulty
    ]
    random.Random(args.seed).shuffle(questions)
    opts = SFTOptions(seed=args.seed)
    with tqdm(total=args.limit or len(questions), desc="sft-data", unit="traj", file=sys.stderr) as bar:

        def taken() -> Any:
            for n, trajectory in enumerate(iter_trajectories(env, questions, opts), 1):
                bar.update()
                yield trajectory
                if args.limit is not None and n >= args.limit:
                    return

        written = write_jsonl(taken(), args.out)
    print(f"wrote {written} trajectories to {args.out}")
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
