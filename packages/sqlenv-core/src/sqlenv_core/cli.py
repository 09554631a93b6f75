"""sqlenv: evaluate policies, export SFT warm-up data, play an episode by hand, or
build a data directory from your own questions and databases.

Policies beyond the built-in oracle and random come from other packages through the
sqlenv.policies entry-point group: sqlenv-client registers hf (a Hugging Face causal LM,
with its trl extra) and openai (any OpenAI-compatible endpoint). An entry point names a
factory called with the model options given on the command line (model, base_url,
api_key, max_new_tokens, temperature, seed, budget) that returns a
sqlenv_core.policies.Policy.

sqlenv eval --server URL plays the episodes on servers instead of in-process, through
the pool entry point of the sqlenv.remote group (sqlenv-client's pooled session, which
restarts an episode on a live replica when one dies); the questions and the oracle's
gold still come from the local data directory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from tqdm import tqdm

from . import __version__
from .config import DEFAULT_BUDGET, EnvConfig
from .dataset import DATA_DIR_ENV, load_dataset
from .env import SQLEnvironment
from .errors import SQLEnvError
from .evaluation import evaluate, sample_questions
from .policies import OraclePolicy, Policy, RandomPolicy
from .schemas import ActionType, SQLObservation

__all__ = ["POLICY_GROUP", "main"]

POLICY_GROUP = "sqlenv.policies"
REMOTE_GROUP = "sqlenv.remote"
BUILTIN_POLICIES = ("oracle", "random")
LEVELS = ("easy", "medium", "hard", "extra")
_INSTALL_HINT = {
    "hf": 'pip install "sqlenv-client[trl]"',
    "openai": "pip install sqlenv-client",
}
_DESCRIPTION = """Evaluate policies, export SFT warm-up data, play an episode by hand, or
build a data directory from your own questions and databases (docs/data.md)."""
_EPILOG = f"""The data directory is --data-dir, else ${DATA_DIR_ENV}, else the bundled data/.
--data-dir and --budget may come before or after the command. More policies come from
other packages through the {POLICY_GROUP} entry points (sqlenv-client adds hf and openai).
Run 'sqlenv COMMAND --help' for a command's options."""


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


def _common(defaults: bool) -> argparse.ArgumentParser:
    """--data-dir and --budget, accepted before and after the command. After it they
    default to SUPPRESS, so they never overwrite a value given before it."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("data and episodes")
    group.add_argument(
        "--data-dir",
        metavar="DIR",
        default=None if defaults else argparse.SUPPRESS,
        help=f"data directory (default: ${DATA_DIR_ENV}, else the bundled data/)",
    )
    group.add_argument(
        "--budget",
        type=int,
        metavar="N",
        default=DEFAULT_BUDGET if defaults else argparse.SUPPRESS,
        help=f"steps per episode, ANSWER included (default: {DEFAULT_BUDGET})",
    )
    return common


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
    parser = argparse.ArgumentParser(
        prog="sqlenv",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common(defaults=True)],
    )
    parser.add_argument("--version", action="version", version=f"sqlenv-core {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = [_common(defaults=False)]

    ev = sub.add_parser(
        "eval",
        help="evaluate a policy on one or more splits",
        description="Play every question of the split(s) once with a policy and report the"
        " success rate, mean return and steps, per split and per difficulty.",
        parents=common,
    )
    extra = sorted(set(_discovered_policies()) - set(BUILTIN_POLICIES))
    missing = [name for name in _INSTALL_HINT if name not in extra]
    more = f"; {', '.join(missing)} with sqlenv-client" if missing else ""
    ev.add_argument(
        "--policy",
        required=True,
        metavar="NAME",
        help=f"the policy: {', '.join([*BUILTIN_POLICIES, *extra])}{more}",
    )
    ev.add_argument(
        "--split",
        action="append",
        metavar="NAME",
        help="a split of the data directory; repeat for several (default: eval)",
    )
    ev.add_argument(
        "--limit", type=int, metavar="N", help="evaluate the first N questions of each split"
    )
    ev.add_argument(
        "--sample",
        type=int,
        metavar="N",
        help="evaluate a fixed random sample of N questions of each split (see --sample-seed)",
    )
    ev.add_argument(
        "--sample-seed", type=int, default=0, metavar="N", help="seed of --sample (default: 0)"
    )
    ev.add_argument(
        "--seed", type=int, default=0, metavar="N", help="seed of the policy (default: 0)"
    )
    ev.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    ev.add_argument(
        "--out", metavar="FILE", help="also write the full report, episodes included, to FILE"
    )
    ev.add_argument(
        "--server",
        action="append",
        metavar="URL",
        help="play on a SQLEnv server instead of in-process; repeat for several replicas "
        "(needs sqlenv-client: an episode whose replica dies is restarted on a live one)",
    )
    models = ev.add_argument_group("model policies (hf, openai)")
    models.add_argument("--model", help="a Hugging Face id or local path, or the served model name")
    models.add_argument(
        "--base-url",
        metavar="URL",
        help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1",
    )
    models.add_argument(
        "--api-key", metavar="KEY", help="API key of the endpoint (default: $OPENAI_API_KEY)"
    )
    models.add_argument("--max-new-tokens", type=int, metavar="N", help="tokens generated per turn")
    models.add_argument(
        "--temperature", type=float, metavar="T", help="sampling temperature (default: 0, greedy)"
    )

    sft = sub.add_parser(
        "sft-data",
        help="export oracle trajectories as tool-calling chats for SFT",
        description="Write the oracle's episodes as tool-calling chats (JSON lines), the"
        " warm-up data for supervised fine-tuning before GRPO.",
        parents=common,
    )
    sft.add_argument(
        "--split", default="train", metavar="NAME", help="the split to export (default: train)"
    )
    sft.add_argument("--out", required=True, metavar="FILE", help="JSON lines file to write")
    sft.add_argument("--limit", type=int, metavar="N", help="export at most N trajectories")
    sft.add_argument(
        "--difficulty",
        choices=LEVELS,
        action="append",
        help="keep this level; repeat for several (default: all)",
    )
    sft.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="question order and plan variation (default: 0)",
    )

    play = sub.add_parser(
        "play",
        help="play one episode in the terminal",
        description="Play one episode yourself: the question and the table names are shown;"
        " type actions at the prompt ('help' lists them).",
        parents=common,
    )
    play.add_argument("--question-id", metavar="ID", help="play this question (e.g. dev_0042)")
    play.add_argument(
        "--split", metavar="NAME", help="draw from this split (default: train, if the data has it)"
    )
    play.add_argument("--db-id", metavar="DB", help="draw from the questions on this database")
    play.add_argument("--difficulty", choices=LEVELS, help="draw from this difficulty level")
    play.add_argument(
        "--seed", type=int, metavar="N", help="seed of the draw (default: a random question)"
    )

    data = sub.add_parser(
        "data",
        help="build a data directory from your own questions and databases",
        description="Build data directories that every SQLEnv consumer reads (docs/data.md).",
    )
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    build = data_sub.add_parser(
        "build",
        help="build one split into a data directory",
        description="Read a question file, run every gold query on its database, and write"
        " the split into the data directory beside its other splits (one split per call;"
        " run again to add more). Questions that cannot be used are listed with a reason"
        " in questions/excluded.jsonl. Atomic: a failed build leaves the directory as it was.",
        epilog="Formats: spider (a JSON list of {db_id, question, query}), bird (a JSON list"
        " of {question_id, db_id, question, evidence, SQL, difficulty}), jsonl (one"
        " {id?, db_id, question, gold_sql, difficulty?, evidence?} per line). Databases:"
        " DIR/<db_id>/<db_id>.sqlite.",
    )
    build.add_argument(
        "--format",
        required=True,
        choices=("spider", "bird", "jsonl"),
        help="the question file's format",
    )
    build.add_argument(
        "--questions",
        required=True,
        action="append",
        type=Path,
        metavar="FILE",
        help="question file; repeat to build one split from several",
    )
    build.add_argument(
        "--databases",
        required=True,
        type=Path,
        metavar="DIR",
        help="folder of <db_id>/<db_id>.sqlite",
    )
    build.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="data directory to create or add to"
    )
    build.add_argument(
        "--split", default="train", metavar="NAME", help="the split to write (default: train)"
    )
    build.add_argument(
        "--source",
        metavar="NAME",
        help="source name and id prefix of the questions (default: the file name's stem)",
    )
    build.add_argument(
        "--question-field",
        metavar="FIELD",
        help="the field holding the question text (e.g. SpiderSynQuestion)",
    )
    build.add_argument(
        "--timeout",
        type=float,
        default=2.0,
        metavar="S",
        help="deadline per gold query in seconds (default: 2.0)",
    )
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _check_output(path: str | None, flag: str) -> None:
    """Fail before any work when ``path`` cannot be written (14.4: not after the run)."""
    if path is None:
        return
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        raise SQLEnvError(f"{flag} {path} is a directory")
    if not folder.is_dir():
        raise SQLEnvError(f"{flag} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (
        target.exists() and not os.access(target, os.W_OK)
    ):
        raise SQLEnvError(f"{flag} {path} is not writable")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "data":
            return _data_build(args)
        if args.budget < 1:
            raise SQLEnvError(f"--budget must be at least 1, got {args.budget}")
        _check_output(getattr(args, "out", None), "--out")
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


def _data_build(args: argparse.Namespace) -> int:
    from .databuild import BuildSpec, build_split

    spec = BuildSpec(
        format=args.format,
        questions=tuple(args.questions),
        databases=args.databases,
        out=args.out,
        split=args.split,
        timeout_s=args.timeout,
        source=args.source,
        question_field=args.question_field,
    )
    result = build_split(spec, progress=not args.quiet)
    rows = result.summary_rows()
    width = max(len(label) for label, _ in rows)
    print(f"split {spec.split} of {spec.out}")
    for label, n in rows:
        print(f"  {label:<{width}}  {n:>6}")
    copied = len(result.databases_copied)
    held = ", ".join(
        f"{name} ({info['questions']})" for name, info in result.manifest["splits"].items()
    )
    print(f"  databases: {len({q.db_id for q in result.kept})} used, {copied} copied")
    print(f"  the directory's splits (questions): {held}")
    if result.excluded:
        print(
            f"  excluded questions and their reasons: {spec.out / 'questions' / 'excluded.jsonl'}"
        )
    return 0


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


def _eval_splits(env: SQLEnvironment, asked: list[str] | None) -> list[str]:
    """The splits to evaluate: those asked for, else eval (or every split without one)."""
    if asked:
        return list(dict.fromkeys(asked))
    return ["eval"] if "eval" in env.dataset.split_sizes else list(env.dataset.splits)


def _eval(env: SQLEnvironment, args: argparse.Namespace) -> int:
    for flag, value in (("--limit", args.limit), ("--sample", args.sample)):
        if value is not None and value < 1:
            raise SQLEnvError(f"{flag} must be at least 1, got {value}")
    splits = _eval_splits(env, args.split)
    questions = []
    for split in splits:
        chosen = sample_questions(env.dataset.select(split=split), args.sample, args.sample_seed)
        questions += chosen[: args.limit]
    policy = _make_policy(env, args)
    label = ", ".join(splits)
    with tqdm(
        total=len(questions), desc=f"{args.policy} on {label}", unit="ep", file=sys.stderr
    ) as bar:
        player = _remote_env(args.server) if args.server else env
        budget = args.budget if args.server else None  # the server's own default may differ
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
    print(f"policy {report.policy} on {label}: {report.n} questions in {report.seconds:.2f} s")
    print(
        f"  success rate {report.success_rate:.3f}   mean return {report.mean_return:.3f}"
        f"   mean steps {report.mean_steps:.2f}   errors {report.errors}"
    )
    if report.tool_call_parse_rate is not None:
        print(f"  tool-call parse rate {report.tool_call_parse_rate:.3f}")
    for split, ss in report.by_split.items():
        if len(report.by_split) > 1:
            print(
                f"  {split}: n={ss.n}   success {ss.success_rate:.3f}   mean return {ss.mean_return:.3f}"
            )
        indent = "    " if len(report.by_split) > 1 else "  "
        for level, s in ss.by_difficulty.items():
            print(
                f"{indent}{level:<7} n={s.n:<5} success {s.success_rate:.3f}   mean return {s.mean_return:.3f}"
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
    with tqdm(
        total=args.limit or len(questions), desc="sft-data", unit="traj", file=sys.stderr
    ) as bar:

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
    print(
        f"Question {state.question_id} ({state.split}, {state.difficulty}, database {state.db_id})"
    )
    print(f"  {obs.question}")
    print(f"Tables: {', '.join(obs.tables)}   Budget: {obs.budget_remaining} steps")
    print(_HELP)
    while not obs.done:
        try:
            line = input(f"[{obs.budget_remaining} left] > ").strip()
        except EOFError:
            print()
            return _gave_up(env)
        if not line:
            continue
        if line.lower() in {"quit", "exit"}:
            return _gave_up(env)
        if line.lower() == "help":
            print(_HELP)
            continue
        head, _, rest = line.partition(" ")
        kind = _SHORT.get(head.upper(), head.upper())
        if kind not in ActionType.__members__:
            print(f"unknown action {head!r}; no step used.\n{_HELP}")
            continue
        obs = env.step({"action_type": kind, "argument": rest})
        _show(obs)
    final = env.state
    print(
        f"\nEpisode over: {'correct' if final.correct else 'not correct'}; return {final.total_reward:+.3f} "
        f"in {final.step_count} steps"
    )
    print(f"Gold SQL: {final.gold_sql}")
    return 0


def _gave_up(env: SQLEnvironment) -> int:
    """Say how the episode ended when the player leaves it unanswered (exit status 1)."""
    state = env.state
    print(
        f"Gave up after {state.step_count} step{'' if state.step_count == 1 else 's'}"
        f" (return {state.total_reward:+.3f}). Gold SQL: {env.question.gold_sql}"
    )
    return 1


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
