#!/usr/bin/env bash
# The `train` dependency group with a CPU build of torch instead of PyPI's CUDA build.
#
# uv.lock resolves torch from PyPI, whose Linux wheel pulls about 3 GB of CUDA packages
# (nvidia-*, cuda-*, triton). This installs the group exactly as locked except those, then
# the CPU wheel of the locked torch version on top:
#
#   scripts/sync-train-cpu.sh                            # CPU wheel from download.pytorch.org
#   scripts/sync-train-cpu.sh --find-links /opt/wheels   # or from a folder of wheels (CI here)
#
# Afterwards run with `uv run --no-sync ...`: a plain `uv run --group train` would sync the
# locked CUDA build back (docs/training.md).
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(awk '$0 == "name = \"torch\"" { getline; gsub(/version = |"/, ""); print; exit }' uv.lock)
[ -n "$version" ] || { echo "sync-train-cpu: no torch in uv.lock" >&2; exit 1; }
skip=()
for name in torch $(grep -oE '^name = "(nvidia-[^"]+|cuda-[^"]+|triton)"' uv.lock | cut -d'"' -f2 | sort -u); do
    skip+=(--no-install-package "$name")
done
uv sync --locked --group train "${skip[@]}"
if [ $# -eq 0 ]; then
    set -- --index-url https://download.pytorch.org/whl/cpu
fi
uv pip install --no-deps "$@" "torch==${version}+cpu"
if uv pip list 2>/dev/null | grep -qiE '^(nvidia-|cuda-|triton )'; then
    echo "sync-train-cpu: CUDA packages are installed:" >&2
    uv pip list | grep -iE '^(nvidia-|cuda-|triton )' >&2
    exit 1
fi
echo "train group ready with torch ${version}+cpu; run with: uv run --no-sync ..."
