#!/usr/bin/env bash
# Installs every Debian package narwhal needs to build, test and benchmark, on Debian 12
# (bookworm) or Debian 13 (trixie). Idempotent: packages already present are left alone,
# and the package lists are refreshed only when something is missing.
#
# The names are the same on both releases but one (the form parser, below); the versions
# are not (Boost 1.74 / 1.83, Catch2 2 / 3, pybind11 2.10 / 2.13, Python 3.11 / 3.13), and
# the build handles both.
# Python packages from PyPI (current frameworks, uvicorn, granian) are not installed
# here: `make venv` puts them in a virtualenv in the build folder from a pinned file.
set -euo pipefail

release="unknown"
if [ -r /etc/os-release ]; then
    release="$(. /etc/os-release && echo "${VERSION_CODENAME:-unknown}")"
fi
case "$release" in
    bookworm | trixie) ;;
    *) echo "install-deps: Debian '$release' is not one narwhal is tested on (bookworm, trixie);" \
            "trying Debian 13's package names" >&2 ;;
esac

# Starlette's and FastAPI's form parser, python-multipart: Debian 12 calls it
# python3-multipart; Debian 13 renamed it python3-python-multipart and gave the old name
# to an unrelated parser with the same import name, which FastAPI refuses to load.
case "$release" in
    bookworm) form_parser=python3-multipart ;;
    *) form_parser=python3-python-multipart ;;
esac

packages=(
    # toolchain
    build-essential cmake ninja-build ccache pkg-config clang-format
    # C++ libraries
    libboost-dev libssl-dev libfmt-dev libtomlplusplus-dev libsimdjson-dev catch2
    # embedding CPython (the distribution's interpreter: 3.11 on bookworm, 3.13 on trixie),
    # and venv for the pinned PyPI test environment
    python3 python3-dev python3-venv pybind11-dev
    # PyYAML: --log-config reads .yaml/.yml logging configurations with it
    python3-yaml
    # Python test and app dependencies
    python3-pytest python3-pytest-xdist python3-httpx python3-websockets python3-starlette
    python3-fastapi
    "$form_parser" python3-django python3-quart python3-falcon python3-anyio
    python3-uvloop python3-httptools python3-uvicorn python3-django-channels
    # clients and load tools; real WebSocket clients (node `ws`, headless Chromium)
    curl wrk nodejs npm chromium
    # callgrind for loadtests/instructions.py (instructions per request)
    valgrind
    # real load balancers in front of narwhal in the tests (nginx's stream module sends
    # the PROXY protocol), and the Prometheus text parser that reads /metrics
    nginx libnginx-mod-stream haproxy python3-prometheus-client
    # the container image: a base from Debian's packages, built and run with podman (runc)
    podman runc debootstrap
    # systemd: socket activation, Type=notify and the watchdog through libsystemd; the
    # systemd package's systemd-analyze verifies deploy/systemd/ in the tests
    libsystemd-dev systemd
    # --pubsub-redis: hiredis's async client carries publications between servers, and
    # the tests start their own redis-server (and use its redis-cli)
    libhiredis-dev redis-server
)

# Optional groups, named on the command line: `fuzz` for `make fuzz` (libFuzzer needs
# clang and its runtime; too heavy to install for everyone).
for group in "$@"; do
    case "$group" in
        fuzz) packages+=(clang libclang-rt-dev) ;;
        *) echo "install-deps: unknown group '$group' (known: fuzz)" >&2; exit 2 ;;
    esac
done

# A package counts as present when it is installed, or when an installed package
# Provides it (NodeSource's `nodejs` provides and conflicts with Debian's `npm`:
# asking apt for `npm` there would fail).
provided="$(dpkg-query -W -f='${db:Status-Abbrev}|${Provides}\n' 2>/dev/null \
    | awk -F'|' '$1 ~ /^ii/ { print $2 }' | tr ',' '\n' | sed 's/([^)]*)//; s/^ *//; s/ *$//' | sort -u)"
installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" \
        || grep -qxF "$1" <<<"$provided"
}

missing=()
for p in "${packages[@]}"; do
    if ! installed "$p"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#packages[@]} packages present (Debian $release)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing on Debian $release: ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
