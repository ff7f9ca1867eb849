"""Where the package's log lines go when the app configured no logging (``ensure_log_handler``).

The unit tests run with logging as an unconfigured process has it: :func:`bare_logging`
takes pytest's own capture handlers off the root (they would count as the app's
configuration) and restores them, and the package logger's handlers and level, after.

The last test runs the demo as ``gunicorn demo_app:app`` on a free loopback port, as a
newcomer would, and reads a code from gunicorn's stderr to sign up with.
"""

from __future__ import annotations

import io
import logging
import logging.config
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.logging import default_handler

from flask_smscode import sms_bp
from flask_smscode.events import ensure_log_handler
from tests.helpers import PHONE
from tests.servers.demo_process import DemoProcess, demo_environment
from tests.servers.redis_server import free_port

PACKAGE_LOGGER = "flask_smscode"


@contextmanager
def bare_logging() -> Iterator[logging.Logger]:
    """Logging as in a process that configured none, for the ``with`` block; yields the
    package's logger. (Not a fixture: pytest adds its handlers again for each test phase.)"""
    root = logging.getLogger()
    package = logging.getLogger(PACKAGE_LOGGER)
    saved_root = (list(root.handlers), root.level)
    saved_package = (list(package.handlers), package.level, package.propagate)
    for handler in saved_root[0]:
        root.removeHandler(handler)
    for handler in saved_package[0]:
        package.removeHandler(handler)
    root.setLevel(logging.WARNING)
    package.setLevel(logging.NOTSET)
    try:
        yield package
    finally:
        for logger in (root, package):
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
        for handler in saved_root[0]:
            root.addHandler(handler)
        root.setLevel(saved_root[1])
        for handler in saved_package[0]:
            package.addHandler(handler)
        package.setLevel(saved_package[1])
        package.propagate = saved_package[2]


def _app(name: str = "logging_app") -> Flask:
    app = Flask(name)
    app.config.update(SECRET_KEY="logging-test-key", TESTING=True)
    app.register_blueprint(sms_bp)  # init_app: the wiring happens here
    return app


def test_an_app_without_logging_config_gets_flasks_default_handler() -> None:
    errors = io.StringIO()  # the request's wsgi.errors: gunicorn's error log
    with bare_logging() as package:
        app = _app()
        assert package.handlers == [default_handler]
        assert package.level == logging.INFO
        sent = app.test_client().post("/sms/send", json={"phone": PHONE}, errors_stream=errors)
    assert sent.status_code == 200
    lines = errors.getvalue().splitlines()
    assert re.fullmatch(
        r"\[[^]]+\] INFO in console: smscode console sender: code \d{6} sent to "
        r"138\*\*\*\*8000 for login \(debug/testing only\)",
        lines[0],
    ), lines
    assert re.match(r"\[[^]]+\] INFO in events: smscode event=send .* outcome=sent ", lines[1])


def _basic_config(_: logging.Logger) -> None:
    logging.basicConfig(level=logging.WARNING, stream=io.StringIO())


def _dict_config(_: logging.Logger) -> None:
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"out": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout"}},
            "root": {"handlers": ["out"], "level": "INFO"},
        }
    )


def _package_handler(package: logging.Logger) -> None:
    package.addHandler(logging.StreamHandler(io.StringIO()))


def _warnings_only_on_the_root(_: logging.Logger) -> None:
    handler = logging.StreamHandler(io.StringIO())
    handler.setLevel(logging.WARNING)
    logging.getLogger().addHandler(handler)


@pytest.mark.parametrize(
    "configure",
    [_basic_config, _dict_config, _package_handler, _warnings_only_on_the_root],
    ids=lambda f: f.__name__.strip("_"),
)
def test_an_app_with_its_own_logging_config_gets_no_extra_handler(
    configure: Callable[[logging.Logger], None],
) -> None:
    root = logging.getLogger()
    with bare_logging() as package:
        configure(package)
        before = (list(root.handlers), list(package.handlers), package.level)
        _app()
        after = (list(root.handlers), list(package.handlers), package.level)
        again = ensure_log_handler()
    assert after == before and default_handler not in after[1]
    assert again is False


def test_a_second_app_adds_nothing_and_a_chosen_level_stays() -> None:
    with bare_logging() as package:
        package.setLevel(logging.WARNING)  # "warnings only", set before the app
        _app("first")
        _app("second")
        handlers, level = list(package.handlers), package.level
        info = package.isEnabledFor(logging.INFO)
    assert handlers == [default_handler]
    assert level == logging.WARNING and not info


# -- the demo under gunicorn -----------------------------------------------------------------
class GunicornDemo(DemoProcess):
    """``gunicorn demo_app:app`` on a free loopback port (tests/servers/demo_process.py
    collects its output: gunicorn's error log is its stderr)."""

    def __init__(self, tmp_path: Path) -> None:
        binary = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
        assert binary, "gunicorn is missing (the test extra installs it)"
        port = free_port()
        # HOME: gunicorn 22+ puts its control socket under ~/.gunicorn.
        env = demo_environment(DEMO_INSTANCE_PATH=str(tmp_path / "instance"), HOME=str(tmp_path))
        command = [binary, "--bind", f"127.0.0.1:{port}", "--workers", "1", "demo_app:app"]
        super().__init__(command, f"http://127.0.0.1:{port}", env)


@pytest.fixture
def gunicorn_demo(tmp_path: Path) -> Iterator[GunicornDemo]:
    demo = GunicornDemo(tmp_path)
    try:
        yield demo
    finally:
        demo.stop()


def test_gunicorn_shows_the_console_senders_code(gunicorn_demo: GunicornDemo) -> None:
    """No logging configuration anywhere (the demo has none, gunicorn configures only its own
    loggers): the code still reaches gunicorn's error log, and it signs the phone up."""
    with requests.Session() as session:
        session.trust_env = False  # never through a proxy
        gunicorn_demo.wait_until_up()
        sent = session.post(
            f"{gunicorn_demo.url}/sms/send", json={"phone": PHONE, "purpose": "signup"}, timeout=10
        )
        assert sent.status_code == 200, sent.text
        code = gunicorn_demo.wait_for(
            r"^\[[^]]+\] INFO in console: smscode console sender: code (\d{6}) sent to "
            r"138\*\*\*\*8000 for signup \(debug/testing only\)$"
        ).group(1)
        verified = session.post(
            f"{gunicorn_demo.url}/sms/verify",
            json={"phone": PHONE, "code": code, "purpose": "signup"},
            timeout=10,
        )
        assert verified.status_code == 200, verified.text
        assert verified.json()["token"]
    gunicorn_demo.wait_for(r"INFO in events: smscode event=send .*purpose=signup outcome=sent ")
    gunicorn_demo.wait_for(r"INFO in events: smscode event=verify .*outcome=verified")
