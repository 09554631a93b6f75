#!/usr/bin/env bash
# Fill deploy/wheelhouse/ with every wheel deploy/Dockerfile installs (the pins in
# deploy/requirements.txt, plus hatchling to build sqlenv-core and sqlenv-server from source),
# for CPython 3.11 on manylinux x86_64, so the image builds with no network inside the build.
# Usage: deploy/build-wheelhouse.sh   (uses this machine's pip and its index settings)
set -euo pipefail
cd "$(dirname "$0")/.."

house=deploy/wheelhouse
mkdir -p "$house"
find "$house" -name '*.whl' -delete
python3 -m pip download --quiet --disable-pip-version-check --dest "$house" \
    --only-binary=:all: --implementation cp --python-version 3.11 \
    --abi cp311 --abi abi3 --abi none \
    --platform manylinux_2_36_x86_64 --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
    -r deploy/requirements.txt 'hatchling>=1.25' 2> >(grep -v "is ignored: it is neither" >&2)
echo "wheel house: $(find "$house" -name '*.whl' | wc -l) wheels, $(du -sh "$house" | cut -f1)"
