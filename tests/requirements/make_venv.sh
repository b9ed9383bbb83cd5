#!/usr/bin/env bash
# make_venv.sh PYTHON REQUIREMENTS VENV
#
# Creates VENV with `PYTHON -m venv` and installs REQUIREMENTS into it: pinned versions,
# every file checked against its hash, wheels only (nothing is compiled here), no
# dependency resolution at install time (the file already lists every package).
#
# The venv is reused while it was made from the same requirements file (its sha256) and
# the same interpreter; otherwise it is made anew, so a stale package never survives an
# edit of the file. The stamp is written last: a half-made venv is never taken as done.
set -euo pipefail

python="$1"
requirements="$2"
venv="$3"
stamp="$venv/.narwhal-requirements"

want="$(sha256sum "$requirements" | cut -d' ' -f1) $("$python" -c 'import sys; print(sys.version.split()[0])')"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$venv/bin/python" -c '' 2>/dev/null; then
    echo "venv: $venv is up to date with $requirements"
    exit 0
fi

echo "venv: creating $venv from $requirements"
rm -rf "$venv"
"$python" -m venv "$venv"

pip_log="$(mktemp)"
trap 'rm -f "$pip_log"' EXIT
if ! "$venv/bin/python" -m pip install --disable-pip-version-check --no-input \
        --require-hashes --no-deps --only-binary=:all: -r "$requirements" 2>&1 | tee "$pip_log"; then
    rm -rf "$venv"
    if grep -qE 'NewConnectionError|ConnectTimeout|ReadTimeout|Failed to establish|Name or service not known|Temporary failure in name resolution|Network is unreachable|ProxyError|SSLError' "$pip_log"; then
        cause="PyPI (or the index that PIP_INDEX_URL names) could not be reached from this machine."
    else
        cause="pip failed, and not for the network: see its output above."
    fi
    cat >&2 <<EOF

venv: could not install $requirements into $venv:
  $cause
  This virtualenv holds the current framework releases that the integration tests
  tests/integration/test_pypi_*.py run against (make integration, make asan, make test);
  those tests fail until it exists. \`make run\` and \`make build\` do not need it.
EOF
    exit 1
fi

echo "$want" >"$stamp"
echo "venv: $venv ready"
