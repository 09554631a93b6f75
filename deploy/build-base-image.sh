#!/usr/bin/env bash
# Build a local Debian bookworm base image with Python 3.11 for machines that reach no image
# registry (CI here): debootstrap (minbase + python3, python3-venv, ca-certificates), prune
# what an image does not need, `docker import`. Then build with
#   docker build -f deploy/Dockerfile --build-arg BASE_IMAGE=sqlenv-base:bookworm .
# Usage: deploy/build-base-image.sh [TAG]   (default sqlenv-base:bookworm; set MIRROR to change
# the Debian mirror). Does nothing if the image already exists. Needs root, docker, debootstrap.
set -euo pipefail

TAG=${1:-sqlenv-base:bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

if docker image inspect "$TAG" >/dev/null 2>&1; then
    echo "base image $TAG exists"
    exit 0
fi

rootfs=$(mktemp -d /tmp/sqlenv-base.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 || {
    tail -20 "$rootfs.log" >&2
    exit 1
}
rm -f "$rootfs.log"
# Caches, package lists, documentation and translations: about half the tree.
rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/locale/* "$rootfs"/tmp/*
tar --numeric-owner -C "$rootfs" -c . |
    docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["python3"]' - "$TAG" >/dev/null
docker image ls "$TAG"
