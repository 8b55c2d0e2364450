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
# Bytecode compiled at install (as pip does): with PYTHONDONTWRITEBYTECODE set, as it often is
# in containers and CI, every process would otherwise compile what it imports from source
# (importing the gateway took ~7 s of CPU instead of ~2.5 s, for every gateway and CLI call).
UV_PROJECT_ENVIRONMENT="$VENV" "$UV" sync --quiet --locked --compile-bytecode "${extras[@]}"
# The project's own packages are installed editable, so uv leaves them to us.
root="$(dirname "${BASH_SOURCE[0]}")/.."
"$VENV/bin/python" -m compileall -q -j 0 "$root"/{llm_contract,gateway,build_engines,local_runtime,bench}
export PATH="$PWD/$VENV/bin:$PATH"
