"""``verify [GROUP ...]``: run the release checks, print one table, exit 1 on any failure.

Groups: manifest, dockerfile, notebook, docs, readme, numbers (the README's and docs'
measured numbers against benchmarks/results/ and data/manifest.json), image (builds and
runs the Docker image). With no group, all of them. The repository root is the nearest directory above
the current one that holds ``deploy/``, or ``--root``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from . import __version__, dockerfile, docs, image, manifest, notebook, numbers, readme
from .findings import Finding, find_root

__all__ = ["GROUPS", "main", "run"]

GROUPS: dict[str, Callable[..., list[Finding]]] = {
    "manifest": manifest.check,
    "dockerfile": dockerfile.check,
    "notebook": notebook.check,
    "docs": docs.check,
    "readme": readme.check,
    "numbers": numbers.check,
    "image": image.check,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="verify",
        description="Check SQLEnv's deploy files, notebook, docs and Docker image.",
        epilog="Exit status: 0 when every check passes, 1 when one fails, 2 on bad usage.",
    )
    parser.add_argument(
        "groups",
        nargs="*",
        metavar="GROUP",
        help=f"one or more of {', '.join(GROUPS)} (default: all)",
    )
    parser.add_argument(
        "--root",
        type=Path,
        help="repository root (default: found from the "
        "current directory: the nearest one holding deploy/)",
    )
    parser.add_argument(
        "--image",
        help="check this already-built image instead of building deploy/Dockerfile (image group)",
    )
    parser.add_argument(
        "--base-image",
        help="BASE_IMAGE build argument (image group; default "
        "$SQLENV_BASE_IMAGE, else the Dockerfile's default)",
    )
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument("--version", action="version", version=f"verify {__version__}")
    return parser


def run(
    root: Path,
    groups: Sequence[str],
    *,
    image_tag: str | None = None,
    base_image: str | None = None,
) -> list[Finding]:
    findings: list[Finding] = []
    for group in groups:
        if group == "image":
            findings.extend(image.check(root, image=image_tag, base_image=base_image))
        else:
            findings.extend(GROUPS[group](root))
    return findings


def _table(findings: Sequence[Finding], console: Console) -> None:
    table = Table(title="sqlenv verify", title_justify="left", show_lines=False)
    table.add_column("group", style="bold")
    table.add_column("check")
    table.add_column("result")
    table.add_column("reason", overflow="fold")
    for f in findings:
        table.add_row(f.group, f.check, "[green]pass[/]" if f.ok else "[red]FAIL[/]", f.reason)
    console.print(table)
    failed = sum(not f.ok for f in findings)
    summary = f"{len(findings) - failed} passed, {failed} failed"
    console.print(f"[red]{summary}[/]" if failed else f"[green]{summary}[/]")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    unknown = [g for g in args.groups if g not in GROUPS]
    if unknown:
        parser.error(f"unknown group(s) {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
    root = args.root.resolve() if args.root else find_root()
    if root is None or not root.is_dir():
        parser.error(
            "no repository root: run inside the repository (a directory holding "
            "deploy/) or pass --root"
        )
    groups = list(dict.fromkeys(args.groups)) or list(GROUPS)
    findings = run(root, groups, image_tag=args.image, base_image=args.base_image)
    if args.json:
        print(json.dumps([asdict(f) for f in findings], indent=2))
    else:
        # Wide enough for the reasons in a CI log, where there is no terminal to measure.
        width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "160"))
        _table(findings, Console(width=width, highlight=False))
    return 1 if any(not f.ok for f in findings) else 0


if __name__ == "__main__":
    sys.exit(main())
