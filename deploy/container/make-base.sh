#!/usr/bin/env bash
# narwhal's base image, made from the distribution's own packages: debootstrap of a
# minimal Debian (the host's release unless one is named) into a folder, imported into
# podman as localhost/narwhal-base:RELEASE. No registry is needed, and the image holds the
# same packages (and python3) as the machine the project is tested on. Idempotent: an
# existing image is kept (--force makes it again).
#
#   deploy/container/make-base.sh [--force] [RELEASE]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
force=0
if [ "${1:-}" = "--force" ]; then force=1; shift; fi
release="${1:-$(. /etc/os-release && echo "$VERSION_CODENAME")}"
tag="localhost/narwhal-base:$release"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
podman=("$here/podman.sh")

if [ "$force" -eq 0 ] && "${podman[@]}" image exists "$tag"; then
    echo "make-base: $tag present"
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
work="$(mktemp -d)"
trap '"${sudo[@]}" rm -rf "$work"' EXIT
echo "make-base: debootstrap $release from $mirror"
"${sudo[@]}" debootstrap --variant=minbase "$release" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
# What a container never reads: package lists are fetched again by any build that installs.
"${sudo[@]}" rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin \
    "$work/rootfs/usr/share/doc/"* "$work/rootfs/usr/share/man/"* "$work/rootfs/usr/share/info/"*
"${sudo[@]}" tar -C "$work/rootfs" --numeric-owner -c . \
    | "${podman[@]}" import --change 'CMD ["/bin/bash"]' - "$tag" >/dev/null
echo "make-base: $tag made"
