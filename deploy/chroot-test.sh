#!/usr/bin/env bash
# Builds and tests narwhal on another Debian release, in a chroot made with debootstrap:
#
#   deploy/chroot-test.sh [--root DIR] [--mirror URL] RELEASE [TARGET...]
#
#   RELEASE  a Debian suite debootstrap knows (bookworm, trixie, ...)
#   TARGET   make targets (and variables) to run inside (default: test), e.g.
#            integration 'PYTEST_ARGS=-rs tests/integration/test_interpreters.py'
#            runs one integration test file (the Makefile's PYTEST_ARGS)
#   --root   where the release's root lives (default: build/chroot/RELEASE); it is made
#            once and kept, so later runs only refresh the packages and the source copy
#   --mirror the Debian mirror (default: http://deb.debian.org/debian)
#
# A maintainer's tool to check that one source tree builds and passes on a release other
# than the machine's own; `make test` does not run it. Needs root (debootstrap, mount,
# chroot).
#
# What it does, each step announced:
#   1. installs the host's debootstrap and rsync if missing;
#   2. bootstraps a minimal root of RELEASE once (into DIR.partial, renamed when complete:
#      an interrupted bootstrap is started again, never half-used);
#   3. points apt at RELEASE, RELEASE-updates and RELEASE-security, copies resolv.conf
#      and the host's local CA certificates;
#   4. copies the source tree to /src/narwhal inside (rsync, honouring .gitignore, so the
#      chroot's own build folders and node_modules stay, and builds are incremental);
#   5. in a private mount namespace, mounts /proc, /sys, /dev, /dev/pts and a tmpfs on
#      /dev/shm, runs deploy/install-deps.sh and then `make TARGET...` inside, and
#      unmounts on the way out (trap, also on failure).
#
# Why a private mount namespace: the mounts exist only for this run's processes, so even
# a killed run cannot leave the host's /dev bound under build/ where `rm -rf build` would
# walk into it.
set -euo pipefail

say() { echo "chroot-test: $*" >&2; }
die() { say "error: $*"; exit 1; }
seconds_since() { echo $(($(date +%s) - $1)); }

# Step 5 runs in a second invocation of this script inside `unshare --mount`.
if [ "${1:-}" = "--inside-namespace" ]; then
    shift
    root="$1"
    shift
    mounted=()
    unmount_all() {
        local i
        for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
            say "unmount ${mounted[i]}"
            umount -R "${mounted[i]}" || umount -lR "${mounted[i]}" || say "could not unmount ${mounted[i]}"
        done
    }
    trap unmount_all EXIT
    trap 'exit 130' INT TERM HUP # through the EXIT trap
    mount_at() { # mount_at TARGET mount-arguments...
        local target="$root$1"
        shift
        say "mount $* on $target"
        mkdir -p "$target"
        mount "$@" "$target"
        mounted+=("$target")
    }
    mount_at /proc -t proc proc
    mount_at /sys --rbind /sys
    mount_at /dev --bind /dev
    mount_at /dev/pts --bind /dev/pts
    mount_at /dev/shm -t tmpfs -o mode=1777,nosuid,nodev shm

    # A clean environment: nothing of the host's PATH (another python3) leaks in.
    run_inside() {
        chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
            PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            DEBIAN_FRONTEND=noninteractive /bin/bash -c "$1"
    }
    start=$(date +%s)
    say "inside: bash deploy/install-deps.sh"
    run_inside "cd /src/narwhal && bash deploy/install-deps.sh"
    say "install-deps took $(seconds_since "$start") s"
    start=$(date +%s)
    say "inside: make $*"
    # Each argument quoted for the shell inside, so that a variable with spaces
    # ('PYTEST_ARGS=-rs tests/integration/test_x.py') stays one argument of make.
    run_inside "cd /src/narwhal && make $(printf '%q ' "$@")"
    say "make $* passed in $(seconds_since "$start") s"
    exit 0
fi

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

src="$(cd "$(dirname "$0")/.." && pwd)"
root=""
mirror="http://deb.debian.org/debian"
while [ $# -gt 0 ]; do
    case "$1" in
        --root) root="${2:?--root needs a folder}"; shift 2 ;;
        --mirror) mirror="${2:?--mirror needs a URL}"; shift 2 ;;
        -h | --help) usage ;;
        -*) say "unknown option $1"; usage ;;
        *) break ;;
    esac
done
[ $# -ge 1 ] || usage
release="$1"
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(test)
root="${root:-$src/build/chroot/$release}"
root="$(realpath -m "$root")"

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, mount, chroot)"
case "$root" in
    / | "$src") die "refusing root folder $root" ;;
esac

total_start=$(date +%s)

# One run per root at a time: two would sync, install and build over each other.
mkdir -p "$(dirname "$root")"
exec 9>"$root.lock"
flock -n 9 || die "another chroot-test run is using $root"

# 1. Host tools.
host_missing=()
for tool in debootstrap rsync; do
    command -v "$tool" >/dev/null || host_missing+=("$tool")
done
if [ ${#host_missing[@]} -gt 0 ]; then
    say "installing on the host: ${host_missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${host_missing[@]}"
fi

# 2. The release's root, made once. The marker is written last: a root without it is
# an interrupted bootstrap.
marker="$root/etc/narwhal-chroot-release"
if [ -f "$marker" ]; then
    say "reusing $release root at $root (made $(cat "$marker"))"
else
    [ ! -e "$root" ] || die "$root exists but is not a finished $release root; remove it first"
    partial="$root.partial"
    if [ -e "$partial" ]; then
        say "removing the interrupted bootstrap at $partial"
        rm -rf --one-file-system "$partial"
    fi
    say "bootstrapping Debian $release (minbase) from $mirror into $partial"
    start=$(date +%s)
    debootstrap --variant=minbase --include=ca-certificates "$release" "$partial" "$mirror"
    date -u +"%Y-%m-%d %H:%M UTC" >"$partial/etc/narwhal-chroot-release"
    mv "$partial" "$root"
    say "bootstrap took $(seconds_since "$start") s"
fi

# 3. apt sources (the release with its updates and security fixes) and DNS.
sources="deb $mirror $release main
deb $mirror $release-updates main
deb http://security.debian.org/debian-security $release-security main"
if [ "$(cat "$root/etc/apt/sources.list" 2>/dev/null)" != "$sources" ]; then
    say "writing $root/etc/apt/sources.list ($release, $release-updates, $release-security)"
    echo "$sources" >"$root/etc/apt/sources.list"
    # install-deps refreshes the lists only when a package is missing: do it now for
    # the new sources, in the root's own apt.
    chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin apt-get update -q
fi
say "copying /etc/resolv.conf"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
# A network whose proxy re-signs TLS is trusted on the host through CA certificates
# added under /usr/local/share/ca-certificates; npm (the Node.js client tests) and any
# other TLS client inside need the same trust.
local_cas=/usr/local/share/ca-certificates
if [ -n "$(ls -A "$local_cas" 2>/dev/null)" ]; then
    say "trusting the host's local CA certificates ($local_cas) inside"
    rsync -a --delete "$local_cas/" "$root$local_cas/"
    chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin update-ca-certificates
fi

# 4. The source tree, as the working copy has it (uncommitted changes included). The
# .gitignore rules keep the chroot's build folders and node_modules out of the copy and
# safe from --delete.
say "syncing $src -> $root/src/narwhal"
mkdir -p "$root/src/narwhal"
rsync -a --delete --exclude=/.git --filter=':- .gitignore' "$src/" "$root/src/narwhal/"

# 5. Mounts, dependencies and the targets, in a private mount namespace.
say "running in $release: install-deps, then make ${targets[*]}"
status=0
unshare --mount --propagation private -- "$BASH" "$0" --inside-namespace "$root" "${targets[@]}" 9>&- \
    || status=$?
if [ "$status" -eq 0 ]; then
    say "$release: make ${targets[*]} PASSED (total $(seconds_since "$total_start") s)"
else
    say "$release: FAILED with status $status (total $(seconds_since "$total_start") s)"
fi
exit "$status"
