"""``flask smscode receipts consume``: the real command in a subprocess, consuming the
loopback MNS server's queues into a real Redis, stopped with SIGTERM in the middle of its
work: it exits 0 and no message is lost (what it did not record stays in the queue)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_smscode import get_service
from flask_smscode.cli import smscode
from flask_smscode.cli.receipts import receipt_consumer
from tests.helpers import ENGLISH
from tests.servers.mns_server import REPLY_QUEUE, MnsServer, queue_config, sms_up

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_SOURCE = """
import json, os, time
from flask import Flask
from flask_smscode import reply_received, sms_bp

app = Flask("receipts_app")
app.config.update(SECRET_KEY="test-secret-key", TESTING=True, **json.loads(os.environ["T_CONFIG"]))
app.register_blueprint(sms_bp)


@reply_received.connect_via(app)
def slow_receiver(sender, **kwargs):  # an app's slow receiver: SIGTERM lands mid-batch
    time.sleep(0.02)
"""


@pytest.fixture
def mns() -> Iterator[MnsServer]:
    with MnsServer(visibility_timeout=1.0) as server:
        yield server


@pytest.mark.redis
def test_sigterm_during_a_batch_loses_nothing(
    tmp_path: Path,
    mns: MnsServer,
    sms_server: Any,
    aliyun_config: dict[str, Any],
    redis_url: str,
    key_prefix: str,
) -> None:
    config = {
        **aliyun_config,
        **queue_config(mns, sms_server),
        "SMSCODE_ALIYUN_MNS_MESSAGE_TYPES": ["SmsUp"],
        "SMSCODE_STORAGE_URI": redis_url,
        "SMSCODE_KEY_PREFIX": key_prefix,
    }
    phones = [f"1380013{i:04d}" for i in range(150)]
    ids = [mns.send_json(REPLY_QUEUE, sms_up(p, "TD", i)) for i, p in enumerate(phones)]
    (tmp_path / "receipts_app.py").write_text(APP_SOURCE, encoding="utf-8")
    env = {
        **os.environ,
        **ENGLISH,
        "T_CONFIG": json.dumps(config),
        "PYTHONPATH": str(REPO_ROOT),
        "FLASK_APP": "receipts_app",
    }
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "flask", "smscode", "receipts", "consume"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while not mns.deleted and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.005)
        process.send_signal(signal.SIGTERM)  # while the first batches are being recorded
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "Stopped:" in out
    done_by_the_command = len(mns.deleted)
    assert 0 < done_by_the_command < len(ids)  # stopped in the middle of its work
    # What the command deleted, it had recorded: those numbers are suppressed.
    app = Flask("check")  # the same store, seen from this process
    app.config.update(SECRET_KEY="test-secret-key", TESTING=True, **config)
    consumer = receipt_consumer(app)
    suppression = get_service(app).suppression
    deleted_phones = {"+86" + phones[ids.index(m)] for m in mns.deleted}
    assert suppression.suppressed(sorted(deleted_phones)) == deleted_phones
    # The rest is still in the queue (none lost): a second consumer records it all.
    deadline = time.monotonic() + 30
    while mns.pending(REPLY_QUEUE) and time.monotonic() < deadline:
        consumer.run_batch("SmsUp")
    assert mns.pending(REPLY_QUEUE) == 0
    assert sorted(mns.deleted) == sorted(ids)  # each deleted exactly once
    assert len(suppression.entries()) == len(phones)
    sms_server.token_issuer = None


def test_consume_without_an_account_id_is_an_error_line(app: Flask) -> None:
    result = app.test_cli_runner().invoke(smscode, ["receipts", "consume"], env=ENGLISH)
    assert result.exit_code == 1
    assert "SMSCODE_ALIYUN_MNS_ACCOUNT_ID" in result.output
