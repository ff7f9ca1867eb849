#!/usr/bin/env bash
# Set up .venv and start the demo site on http://127.0.0.1:5000 (memory store, console
# sender: the code is printed in this terminal; accounts and the SECRET_KEY are kept in
# instance/). Environment variables configure it:
# REDIS_URL, SMSCODE_* keys, ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET, PORT, HOST.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
# The prometheus extra: the demo serves /metrics through prometheus_client.
.venv/bin/python -m pip install -q --disable-pip-version-check -c requirements/lock.txt \
  -e '.[prometheus]'
exec .venv/bin/python demo_app.py "$@"
