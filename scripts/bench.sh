#!/usr/bin/env bash
# Print speed and memory figures against the targets in benchmarks/bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
exec .venv/bin/python benchmarks/bench.py "$@"
