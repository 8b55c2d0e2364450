# Sourced: puts the pinned uv (scripts/uv.requirements, hash-checked) in $UV, installed once
# into .cache/uv-<version>. PYTHON (default python3) is the interpreter uv uses.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
uv_version="$(sed -n 's/^uv==\([^ ]*\).*/\1/p' scripts/uv.requirements)"
uv_home=".cache/uv-$uv_version"
if [ ! -x "$uv_home/bin/uv" ]; then
  if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    echo "scripts/uv.sh: $PYTHON has no pip to fetch uv with (inside a venv made by uv?" \
      "deactivate it, or set PYTHON to a system python3)" >&2
    exit 1
  fi
  rm -rf "$uv_home"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    --no-deps --require-hashes \
    --target "$uv_home" -r scripts/uv.requirements
fi
UV="$PWD/$uv_home/bin/uv"
export UV_PYTHON="$PYTHON" UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1
