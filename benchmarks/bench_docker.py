"""The Docker image: size, `docker run` to healthy, and SIGTERM to exit, over several runs.

    uv run python benchmarks/bench_docker.py                  # builds deploy/Dockerfile first
    uv run python benchmarks/bench_docker.py --image sqlenv --runs 10

Each run starts a fresh container and times, from just before `docker run`: the first 200
from `/health` (polled every 50 ms from the host), and Docker's own HEALTHCHECK turning
`healthy`; then `docker stop` (SIGTERM) until the container has exited, with its exit code.
The build uses BASE_IMAGE from $SQLENV_BASE_IMAGE, else the local base image when present.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import machine  # benchmarks/machine.py: this script's folder is on sys.path
from sqlenv_tools import image as img

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", help="an image built already (default: build one)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--out",
        type=Path,
        help="also write the results, command and machine here "
        "(benchmarks/results/docker.json is what the docs quote)",
    )
    args = parser.parse_args()
    reason = img.docker_unavailable_reason()
    if reason:
        sys.exit(f"bench_docker: {reason}")
    before = machine.describe()
    builds = img.Builds()  # an image built here is removed at the end, with its layers
    try:
        return _bench(args, builds, before)
    finally:
        builds.remove_all()


def _bench(args: argparse.Namespace, builds: img.Builds, before: dict) -> int:
    tag = args.image
    if tag is None:
        base = img.resolve_base_image()
        blocker = img.build_blocker(ROOT, base, builds)
        if blocker:
            sys.exit(f"bench_docker: cannot build here: {blocker}")
        built = builds.build(ROOT, "sqlenv-bench", base_image=base)
        if not built.ok:
            sys.exit(built.log[-2000:])
        tag = built.tag
        print(f"built {tag} in {built.seconds:.0f} s (BASE_IMAGE={base or 'default'})")
    size_mb = img.image_size(tag) / 1e6
    print(f"image size: {size_mb:.0f} MB")

    health, docker_healthy, stop, codes = [], [], [], []
    for _ in range(args.runs):
        container = img.Container.start(tag)
        try:
            health.append(container.wait_health())
            docker_healthy.append(container.wait_docker_healthy())
            time.sleep(0.5)
            seconds, code = container.stop()
            stop.append(seconds)
            codes.append(code)
        finally:
            container.remove()

    def row(name: str, values: list[float]) -> str:
        return (
            f"| {name} | {statistics.median(values):.2f} s | {min(values):.2f} s | "
            f"{max(values):.2f} s |"
        )

    print(f"\n{args.runs} runs\n")
    print("| measure | median | min | max |\n|---|---|---|---|")
    print(row("`docker run` to `/health` 200", health))
    print(row("`docker run` to HEALTHCHECK healthy", docker_healthy))
    print(row("`docker stop` (SIGTERM) to exit", stop))
    print(f"\nexit codes: {sorted(set(codes))}")
    if args.out is not None:

        def stats(values: list[float]) -> dict[str, float]:
            return {
                "median": round(statistics.median(values), 3),
                "min": round(min(values), 3),
                "max": round(max(values), 3),
            }

        results = {
            "runs": args.runs,
            "image_size_mb": round(size_mb, 1),
            "run_to_health_s": stats(health),
            "run_to_healthcheck_healthy_s": stats(docker_healthy),
            "sigterm_to_exit_s": stats(stop),
            "exit_codes": sorted(set(codes)),
        }
        machine.record(args.out, "docker", results, before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
