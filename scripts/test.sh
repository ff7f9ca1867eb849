#!/usr/bin/env bash
# Set up everything the suite needs on a fresh Debian/Ubuntu machine, then run it all:
# the quality gates (ruff check, ruff format --check, mypy --strict on the package), unit
# tests, the behaviour suite on memory:// and on a private redis-server, the loopback
# Alibaba Cloud SMS server, and the browser tests of the demo in headless Chromium (their
# screenshots go to test-output/screenshots/).
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -m "not browser" -x`).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
# The dashboard's queries and the alert rules run against a real Prometheus (promtool too).
{ [ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ]; } || missing+=(prometheus)
# The speed benchmark's smoke test (tests/bench/test_run.py): wrk drives the load, valgrind's
# callgrind counts instructions.
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
# A CJK font, or the browser tests' screenshots show Chinese as empty boxes.
fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || dpkg -s fonts-noto-cjk >/dev/null 2>&1 \
  || missing+=(fonts-noto-cjk)
# shellcheck source=scripts/apt-install.sh
source scripts/apt-install.sh

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
# Exact versions from requirements/lock.txt (refresh: bash scripts/lock.sh), so the gates and
# the suite see the same releases on every machine and day; the package keeps its ranges.
.venv/bin/python -m pip install -q --disable-pip-version-check -c requirements/lock.txt \
  -e '.[test]'

# Quality gates first: any lint finding, unformatted file or strict-typing error fails the
# run (and so CI) before a single test runs. SMSCODE_SKIP_GATES=1 skips them while iterating.
if [ "${SMSCODE_SKIP_GATES:-0}" != "1" ]; then
  echo "ruff check, ruff format --check, mypy --strict"
  .venv/bin/ruff check .
  .venv/bin/ruff format --check .
  .venv/bin/mypy
fi
exec .venv/bin/python -m pytest "$@"
