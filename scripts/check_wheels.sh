#!/usr/bin/env bash
# Build every package's wheel and sdist, check their metadata, install the wheels into a
# fresh virtual environment outside the checkout (dependencies from PyPI, the sqlenv-*
# packages only from the files just built), start the installed `sqlenv-server` with its
# packaged data and play an episode with the installed client (scripts/smoke_episode.py).
#
#   scripts/check_wheels.sh [DIST]     # DIST: where the files go (default dist/)
#
# CI runs it (.ci/run); the release workflow runs the same checks before it publishes
# (docs/releasing.md). Leaves nothing behind but DIST: the venv, the server and its log
# are removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dist=$(realpath -m "${1:-dist}")

rm -rf "$dist"
echo "== build: every package, sdist and wheel (the wheel built from the sdist)"
uv build --all-packages --no-sources --out-dir "$dist" 2>&1 | grep -E "^Successfully built" || true
packages=(packages/*/)
wheels=("$dist"/*.whl)
sdists=("$dist"/*.tar.gz)
if [ ${#wheels[@]} -ne ${#packages[@]} ] || [ ${#sdists[@]} -ne ${#packages[@]} ]; then
    echo "expected a wheel and an sdist for each of ${#packages[@]} packages; got:" >&2
    ls "$dist" >&2
    exit 1
fi
ls -l "$dist" | awk 'NR > 1 { printf "  %8.1f kB  %s\n", $5 / 1000, $9 }'

echo "== metadata: twine check --strict"
uvx --quiet --from 'twine>=6.1' twine check --strict "$dist"/*

work=$(mktemp -d /tmp/sqlenv-wheels.XXXXXX)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "== install into a clean venv (PyPI + these wheels only)"
uv venv --quiet --python 3.11 "$work/venv"
py=$work/venv/bin/python
uv pip install --quiet --python "$py" "${wheels[@]}"
"$py" - <<'PY'
import importlib.metadata as m
names = ["sqlenv-core", "sqlenv-server", "sqlenv-client", "sqlenv-data", "sqlenv-tools"]
for name in names:
    dist = m.distribution(name)
    assert "site-packages" in str(dist.locate_file("")), (name, dist.locate_file(""))
print("  installed:", ", ".join(f"{n} {m.version(n)}" for n in names))
PY
"$work/venv/bin/verify" --help >/dev/null
"$work/venv/bin/sqlenv" --help >/dev/null

echo "== smoke: the installed server with its packaged data, an episode with the installed client"
port=$("$py" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
mkdir "$work/cwd"
# From an empty folder outside the checkout, without SQLENV_DATA_DIR: the data must come
# from the sqlenv-data wheel, as for a pip user.
# exec: $! is then the server itself, so the cleanup's kill reaches it (a subshell's child
# would outlive it, running from the deleted venv).
(cd "$work/cwd" && exec env -u SQLENV_DATA_DIR "$work/venv/bin/sqlenv-server" --port "$port" \
    >"$work/server.log" 2>&1) &
server_pid=$!
for _ in $(seq 1 120); do
    if "$py" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=1)" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "the installed server exited:" >&2; cat "$work/server.log" >&2; exit 1
    fi
    sleep 0.5
done
(cd "$work/cwd" && env -u SQLENV_DATA_DIR "$py" -c "
import sqlenv_core.dataset as d
assert str(d.default_data_dir()).startswith('$work/venv/'), d.default_data_dir()
") || { echo "the server's data is not the packaged one" >&2; exit 1; }
(cd "$work/cwd" && "$py" "$root/scripts/smoke_episode.py" "http://127.0.0.1:$port")
echo "wheels OK: $dist"
