#!/usr/bin/env bash
# Make a Docker engine available on a Debian machine without one (CI here): install
# Debian's docker.io (and debootstrap, for deploy/build-base-image.sh) if missing, start
# dockerd in the background if no daemon answers, and wait until `docker info` works.
# Needs root. Does nothing when a daemon already answers.
set -euo pipefail

if docker info >/dev/null 2>&1; then
    echo "docker: daemon running ($(docker info --format '{{.ServerVersion}}'))"
    exit 0
fi

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
    echo "docker: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

log=${DOCKERD_LOG:-/var/log/sqlenv-dockerd.log}
echo "docker: starting dockerd (log: $log)"
setsid nohup dockerd >"$log" 2>&1 </dev/null &
for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
        echo "docker: daemon running ($(docker info --format '{{.ServerVersion}}'))"
        exit 0
    fi
    sleep 1
done
echo "docker: dockerd did not answer within 60 s; last lines of $log:" >&2
tail -20 "$log" >&2
exit 1
