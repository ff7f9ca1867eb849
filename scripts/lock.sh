#!/usr/bin/env bash
# Refresh requirements/lock.txt: the exact versions the test command and the demo install.
# It resolves the newest releases that the ranges in pyproject.toml admit (the test and
# prometheus extras included) in a throw-away virtualenv and writes them down, so that the
# gates (ruff, mypy) and the suite run against the same releases on every machine and day
# until the next refresh. Run it, then `bash scripts/test.sh`, then commit the lock.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check '.[test,prometheus]'
{
  echo "# The locked test, gate and demo toolchain: exact versions, refreshed by"
  echo "# \`bash scripts/lock.sh\` (see the README, Development). Used as a pip constraints file"
  echo "# by scripts/test.sh and scripts/demo.sh; the package's own ranges stay in pyproject.toml."
  "$tmp/venv/bin/python" -m pip freeze --disable-pip-version-check --exclude flask-smscode \
    | LC_ALL=C sort -f
} > requirements/lock.txt
echo "wrote requirements/lock.txt ($(grep -vc '^#' requirements/lock.txt) packages)"
