#!/usr/bin/env bash
# flask-smscode against its baselines (see bench/README.md): wrk load on gunicorn, worker CPU
# per request (median of 5 interleaved reps of 8 s), callgrind instructions per request,
# Redis memory, the notification, the import line, the durability setting. Starts its own
# redis-servers, loopback Dysmsapi servers and gunicorn on 127.0.0.1 and stops them when done
# (about 10 minutes; it prints its expected duration). Options go to bench/run.py: --quick,
# --results bench/RESULTS.md, --reps N, --seconds N, --callgrind-requests N.
# `bash scripts/bench.sh chaos` runs the chaos benchmark instead (bench/chaos.py: 10,000
# sends through Alibaba's and Tencent's loopback servers with faults injected, ~1 minute).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -c requirements/lock.txt -e '.[test]'
# The speed run's load generator (wrk, C, keep-alive) and instruction counter (valgrind);
# the other benchmarks (replay, soak, chaos) need neither.
missing=()
case "${1:-}" in
  replay | soak | chaos) ;;
  *)
    command -v wrk >/dev/null || missing+=(wrk)
    command -v valgrind >/dev/null || missing+=(valgrind)
    ;;
esac
# shellcheck source=scripts/apt-install.sh
source scripts/apt-install.sh
# `bash scripts/bench.sh replay [--results bench/RESULTS.md]`: the fraud replay on a simulated
# clock instead (bench/replay.py; seconds, nothing started).
if [ "${1:-}" = replay ]; then
  shift
  exec .venv/bin/python -m bench.replay "$@"
fi
# `bash scripts/bench.sh soak [--topology sentinel|cluster] [--duration 120] [--results …]`:
# the soak (bench/soak.py): gunicorn with threads on Sentinel then Cluster, a fault a minute;
# about 5 minutes; exits non-zero when an anomaly count is not zero.
if [ "${1:-}" = soak ]; then
  shift
  exec .venv/bin/python -m bench.soak "$@"
fi
exec .venv/bin/python -m bench.run "$@"
