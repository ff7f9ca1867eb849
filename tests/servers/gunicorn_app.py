"""An app as operators run it: real gunicorn, several workers, ``PROMETHEUS_MULTIPROC_DIR``
set, the package's gunicorn hooks (``on_starting``, ``child_exit``) in a gunicorn.conf.py,
a real Redis and the loopback Dysmsapi server as provider, ``/metrics`` served by
:func:`flask_smscode.metrics.metrics_view`.

``gunicorn 'tests.servers.gunicorn_app:create_app()'`` reads its settings from
``METRICS_APP_*`` variables; :func:`start_gunicorn` writes the config file, starts the
process on a free loopback port and waits until it answers. The caller stops it.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from flask import Flask

from flask_smscode import sms_bp
from flask_smscode.config import SETTINGS
from flask_smscode.metrics import metrics_view
from tests.helpers import ACCESS_KEY_ID, ACCESS_KEY_SECRET
from tests.servers.demo_process import ROOT, DemoProcess, demo_environment
from tests.servers.redis_server import free_port

SECRET_KEY = "metrics-app-secret-not-for-production"
REPORT_SECRET = "metrics-report-secret-0123456789-abcdefghij"  # a path segment, 32+
GLOBAL_LIMIT = 100_000  # per hour: the guard's budget gauge, never reached here

# gunicorn.conf.py as the README shows it: the two hooks are the package's.
GUNICORN_CONF = """\
from flask_smscode.metrics import child_exit, on_starting  # noqa: F401
"""


def create_app() -> Flask:
    """The app gunicorn serves (each worker builds its own)."""
    app = Flask("metrics_app")
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        SMSCODE_STORAGE_URI=os.environ["METRICS_APP_REDIS_URL"],
        SMSCODE_KEY_PREFIX=os.environ["METRICS_APP_PREFIX"],
        SMSCODE_PURPOSES=["login", "signup"],
        SMSCODE_SENDER="aliyun",
        SMSCODE_ALIYUN_ACCESS_KEY_ID=ACCESS_KEY_ID,
        SMSCODE_ALIYUN_ACCESS_KEY_SECRET=ACCESS_KEY_SECRET,
        SMSCODE_ALIYUN_SIGN_NAME="TestSign",
        SMSCODE_ALIYUN_TEMPLATE_CODE="SMS_123456789",
        SMSCODE_ALIYUN_ENDPOINT=os.environ["METRICS_APP_PROVIDER"],
        SMSCODE_ALIYUN_PROTOCOL="http",
        SMSCODE_ALIYUN_TIMEOUT_SECONDS=2,
        SMSCODE_ALIYUN_REPORT_SECRET=REPORT_SECRET,
        # One client address (the test) sends to many numbers of one block: raised so only
        # what a test induces is refused.
        SMSCODE_IP_SEND_LIMITS="1000000/hour",
        SMSCODE_IP_VERIFY_LIMITS="1000000/hour",
        SMSCODE_PREFIX_SEND_LIMITS=os.environ.get("METRICS_APP_PREFIX_LIMITS", "1000000/hour"),
        SMSCODE_GLOBAL_SEND_LIMITS=f"{GLOBAL_LIMIT}/hour",
        SMSCODE_GUARD_MIN_SENDS=1_000_000,
    )
    if "SMSCODE_GUARD_SOURCE_SENDS" in SETTINGS:  # one source (the test) leaves many unverified
        app.config["SMSCODE_GUARD_SOURCE_SENDS"] = 0
    app.register_blueprint(sms_bp)
    app.add_url_rule("/metrics", "metrics", metrics_view)
    return app


class GunicornApp(DemoProcess):
    """The gunicorn master; ``workers()`` lists its worker processes."""

    def workers(self) -> list[int]:
        """The pids of the master's children (its workers), from /proc."""
        master = self.process.pid
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...: comm may hold spaces, so split after the last ")"
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                pids.append(int(entry.name))
        return sorted(pids)

    def wait_for_workers(self, count: int, timeout: float = 20.0) -> list[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.workers()
            if len(pids) == count:
                return pids
            time.sleep(0.1)
        raise AssertionError(f"gunicorn has {self.workers()} workers, not {count}:\n{self.output}")

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request on a new connection (so gunicorn may hand it to any worker)."""
        host, port = self.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            data = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        ctype = response.getheader("Content-Type") or ""
        return response.status, (json.loads(raw) if "json" in ctype else raw.decode())


def start_gunicorn(
    tmp: Path,
    *,
    redis_url: str,
    prefix: str,
    provider: str,
    workers: int = 4,
    worker_class: str = "sync",
    threads: int = 1,
    multiproc_dir: Path | None = None,
    env: dict[str, str] | None = None,
) -> GunicornApp:
    """gunicorn with ``workers`` workers on a free loopback port, multiprocess mode in
    ``multiproc_dir`` (default ``tmp/prom``, created), ``env`` added to its environment
    (``METRICS_APP_PREFIX_LIMITS``); started and answering."""
    multiproc_dir = multiproc_dir or tmp / "prom"
    multiproc_dir.mkdir(parents=True, exist_ok=True)
    conf = tmp / "gunicorn.conf.py"
    conf.write_text(GUNICORN_CONF)
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "-c",
        str(conf),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        worker_class,
        "--threads",
        str(threads),
        "--graceful-timeout",
        "2",
        "tests.servers.gunicorn_app:create_app()",
    ]
    environment = demo_environment(
        **(env or {}),
        PROMETHEUS_MULTIPROC_DIR=str(multiproc_dir),
        METRICS_APP_REDIS_URL=redis_url,
        METRICS_APP_PREFIX=prefix,
        METRICS_APP_PROVIDER=provider,
        PYTHONPATH=str(ROOT),
    )
    app = GunicornApp(command, f"http://127.0.0.1:{port}", environment)
    try:
        app.wait_until_up("/metrics")
        app.wait_for_workers(workers)
    except BaseException:
        app.stop()
        raise
    return app


def stop_quietly(app: GunicornApp) -> None:
    """Stop gunicorn (TERM, then KILL after 10 s: DemoProcess.stop)."""
    try:
        app.stop()
    except subprocess.SubprocessError:  # pragma: no cover - stop() already waited
        pass
