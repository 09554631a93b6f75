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

from sqlenv_tools import image as img

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", help="an image built already (default: build one)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    reason = img.docker_unavailable_reason()
    if reason:
        sys.exit(f"bench_docker: {reason}")
    tag = args.image
    if tag is None:
        base = img.resolve_base_image()
        built = img.build_image(ROOT, "sqlenv:bench", base_image=base)
        if not built.ok:
            sys.exit(built.log[-2000:])
        tag = "sqlenv:bench"
        print(f"built {tag} in {built.seconds:.0f} s (BASE_IMAGE={base or 'default'})")
    print(f"image size: {img.image_size(tag) / 1e6:.0f} MB")

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
    return 0


if __name__ == "__main__":
    sys.exit(main())
