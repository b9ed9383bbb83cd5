#!/usr/bin/env bash
# podman as narwhal's scripts and tests run it: runc (crun and the default cgroup setup
# do not work on hosts without systemd), the host's network (no netavark/slirp needed),
# and deploy/container/containers.conf. Usage: deploy/container/podman.sh ARGS...
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo --preserve-env=CONTAINERS_CONF); fi
# A build sees the host's CA bundle (read-only, never copied into the image), so pip in
# the build reaches PyPI through a TLS-inspecting proxy that the host trusts.
bundle=/etc/ssl/certs/ca-certificates.crt
build_extra=()
if [ -f "$bundle" ]; then build_extra=(--volume "$bundle:/run/host-ca.crt:ro"); fi
case "${1:-}" in
    build) shift; exec "${sudo[@]}" podman --runtime runc build --network host "${build_extra[@]}" "$@" ;;
    run | create) cmd="$1"; shift; exec "${sudo[@]}" podman --runtime runc "$cmd" --network host "$@" ;;
    *) exec "${sudo[@]}" podman --runtime runc "$@" ;;
esac
