#!/usr/bin/env bash
# flask-smscode against its baselines: one table, medians of 3 runs (see bench/README.md).
# Starts its own redis-server, loopback Dysmsapi servers and gunicorn on 127.0.0.1, and
# stops them when done (about 2-4 minutes). Options go to bench/run.py: --quick,
# --results bench/RESULTS.md, --runs N.
# `bash scripts/bench.sh chaos` runs the chaos benchmark instead (bench/chaos.py: 10,000
# sends through Alibaba's and Tencent's loopback servers with faults injected, ~1 minute).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -c requirements/lock.txt -e '.[test]'
# `bash scripts/bench.sh replay [--results bench/RESULTS.md]`: the fraud replay on a simulated
# clock instead (bench/replay.py; seconds, nothing started).
if [ "${1:-}" = replay ]; then
  shift
  exec .venv/bin/python -m bench.replay "$@"
fi
exec .venv/bin/python -m bench.run "$@"
