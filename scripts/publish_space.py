"""Publish SQLEnv to its Hugging Face Space (sqlenv/sql_env), or only assemble the folder.

A Docker Space builds the ``Dockerfile`` at its root with the Space root as the context,
and reads its settings from the YAML front matter of its ``README.md``. This script lays a
folder out the way ``deploy/Dockerfile`` expects a build context (the repository's own
paths), so the Dockerfile builds there unchanged:

    README.md          deploy/space/README.md (front matter: sdk docker, app_port 8000, base_path /web)
    Dockerfile         deploy/Dockerfile
    .dockerignore      deploy/.dockerignore
    openenv.yaml       deploy/openenv.yaml
    LICENSE
    deploy/requirements.txt, deploy/wheelhouse/README.md   (no wheels: the Space uses PyPI)
    packages/sqlenv-core/, packages/sqlenv-server/         (pyproject, README, LICENSE, src/)
    data/                                                  (databases and question splits)

Usage:
    uv run python scripts/publish_space.py --out /tmp/space        # assemble only
    uv run --with huggingface_hub python scripts/publish_space.py  # assemble and upload
    (a token from `hf auth login` or HF_TOKEN with write access to the Space's owner)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPACE_ID = "sqlenv/sql_env"
PACKAGES = ("sqlenv-core", "sqlenv-server")
# (source in the repository, destination in the Space)
FILES = (
    ("deploy/space/README.md", "README.md"),
    ("deploy/Dockerfile", "Dockerfile"),
    ("deploy/.dockerignore", ".dockerignore"),
    ("deploy/openenv.yaml", "openenv.yaml"),
    ("LICENSE", "LICENSE"),
    ("deploy/requirements.txt", "deploy/requirements.txt"),
    ("deploy/wheelhouse/README.md", "deploy/wheelhouse/README.md"),
)
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".DS_Store")


def assemble(out: Path, root: Path = ROOT) -> list[str]:
    """Lay the Space out in ``out`` (created, must be empty); returns its files, sorted."""
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise SystemExit(f"publish_space: {out} is not empty")
    for source, dest in FILES:
        target = out / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / source, target)
    for package in PACKAGES:
        src, dst = root / "packages" / package, out / "packages" / package
        dst.mkdir(parents=True)
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            shutil.copy2(src / name, dst / name)
        shutil.copytree(src / "src", dst / "src", ignore=_SKIP)
    shutil.copytree(root / "data", out / "data", ignore=_SKIP)
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())


def upload(folder: Path, space_id: str, *, private: bool) -> str:
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise SystemExit(
            "publish_space: huggingface_hub is needed to upload; run with "
            "`uv run --with huggingface_hub python scripts/publish_space.py`"
        ) from None
    api = HfApi()
    api.create_repo(space_id, repo_type="space", space_sdk="docker", private=private, exist_ok=True)
    commit = api.upload_folder(
        repo_id=space_id,
        repo_type="space",
        folder_path=str(folder),
        commit_message="Publish SQLEnv (scripts/publish_space.py)",
        # Files the repository no longer has are removed from the Space too.
        delete_patterns=["packages/**", "data/**", "deploy/**"],
    )
    return str(commit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", default=SPACE_ID, help=f"Space id (default {SPACE_ID})")
    parser.add_argument("--out", type=Path, help="assemble here and stop (no upload)")
    parser.add_argument("--private", action="store_true", help="create the Space private")
    args = parser.parse_args(argv)
    if args.out is not None:
        files = assemble(args.out)
        print(f"assembled {len(files)} files in {args.out}; build it with: docker build {args.out}")
        return 0
    with tempfile.TemporaryDirectory(prefix="sqlenv-space-") as tmp:
        files = assemble(Path(tmp) / "space")
        print(f"uploading {len(files)} files to https://huggingface.co/spaces/{args.space}")
        print(upload(Path(tmp) / "space", args.space, private=args.private))
    return 0


if __name__ == "__main__":
    sys.exit(main())
