# Sourced by scripts/up and scripts/test: a virtual environment holding exactly the versions
# in uv.lock (no resolving: a pyproject.toml that disagrees with the lock is an error, and
# `scripts/lock` re-locks), with the project installed editable.
# VENV (default .venv) and PYTHON (default python3) can be overridden.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/uv.sh"
VENV="${VENV:-.venv}"
extras=()
for extra in ${1//,/ }; do
  extras+=(--extra "$extra")
done
UV_PROJECT_ENVIRONMENT="$VENV" "$UV" sync --quiet --locked "${extras[@]}"
export PATH="$PWD/$VENV/bin:$PATH"
