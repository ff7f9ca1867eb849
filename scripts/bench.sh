#!/usr/bin/env bash
# flask-smscode against its baselines: one table, medians of 3 runs (see bench/README.md).
# Starts its own redis-server, loopback Dysmsapi servers and gunicorn on 127.0.0.1, and
# stops them when done (about 2-4 minutes). Options go to bench/run.py: --quick,
# --results bench/RESULTS.md, --runs N.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -c requirements/lock.txt -e '.[test]'
exec .venv/bin/python -m bench.run "$@"
