"""Every Python and shell example in README.md runs, so the README cannot drift from the code.

What the comment on the line before a block says decides how it runs:

- No comment: Python blocks run in order in one namespace (a reader pastes them one after
  another), in a fresh interpreter whose working directory is a temporary folder; shell
  blocks run with bash from the repository root, as written (``.venv/bin/flask ...``). One
  substitution: the README's Redis URL ``redis://127.0.0.1:6379/0`` is pointed at a private
  redis-server (the shared one is never touched).
- ``<!-- runs against the loopback Dysmsapi server -->`` (Python): the block calls Alibaba
  Cloud as a reader's app would, and reaches the suite's loopback server instead
  (``tests/servers/dysmsapi_server.py``, which checks every signature as the real gateway does). The
  blocks' interpreter starts that server, has the test AccessKey in
  ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``_SECRET`` (where the README says the keys come from),
  and just before the block sets ``app`` to a fresh Flask app whose settings
  (:data:`LOOPBACK_CONFIG`) point at the server: ``SMSCODE_ALIYUN_ENDPOINT`` its
  ``127.0.0.1:port``, ``SMSCODE_ALIYUN_PROTOCOL = "http"``, sign name 阿里云短信测试. The
  block builds its client from ``app.config``. ``<!-- runs against the loopback Dysmsapi
  server: <setup> -->`` first runs the named step of :data:`SETUPS` (a code sent and Alibaba's
  push of its delivery report, say). Afterwards the test checks what the server received:
  every call signed right and answered OK, each kind of call of the README made.
- ``<!-- runs against the loopback vendor servers -->`` (Python): a vendor's settings (Tencent,
  PNVS, routing across vendors). The block runs in the test's own interpreter with ``app``
  already configured for the loopback Tencent, Dypnsapi and Dysmsapi servers (endpoints,
  ``http``, test credentials in the vendors' environment variables, and the other vendors'
  settings "as usual"); then the test registers the blueprint, sends a code over HTTP to a
  number of every allowed region, reads each code at the server that carried it and verifies
  it, and checks every request each server received was signed right. So a vendor's
  example is the configuration that really sends and verifies through that vendor's SDK.
- ``<!-- runs against an app served on a loopback port -->`` (shell): the test serves an app
  with the blueprint on a free loopback port (``tests/servers/live_server.py``) and points the
  README's ``http://127.0.0.1:5000`` at it; the block runs in a temporary folder whose
  ``.venv`` links to the repository's, so the files it writes stay out of the checkout.
- ``<!-- file: path -->`` (any language): the block is a file's content, written to that path
  under the Python blocks' working directory before they run (the low-code element's
  ``e.json`` and ``sms.json`` that ``AliyunSms.from_element`` reads).
- ``<!-- illustration: why -->``: a block that cannot run here (it starts a server that never
  ends, needs the package index, or is a fragment of another project's file) is only
  compiled (``compile()`` / ``bash -n``).

Whatever the comment, the Python blocks' interpreter reaches loopback only: any other host
name fails to resolve there, so no example can call the real Alibaba Cloud from a test.

The sample outputs are kept true here too: the console sender's line, the OutIds of code
sends, the ``flask smscode`` session and the log lines gunicorn shows are compared with
real ones, only digits (codes, times, counts) and OutIds being free.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.logging import default_handler

from flask_smscode import AliyunSms, sms_bp
from flask_smscode.aliyun.loaders import ELEMENT_TYPE, credentials_from_json, element_sms_json
from flask_smscode.core.outids import OutIds
from flask_smscode.senders.console import ConsoleSender
from tests.helpers import ACCESS_KEY_ID, ACCESS_KEY_SECRET, E164, PHONE
from tests.servers.dysmsapi_server import DysmsapiServer
from tests.servers.live_server import live_server
from tests.servers.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_REDIS = "redis://127.0.0.1:6379/0"
README_APP = "http://127.0.0.1:5000"
SHELLS = {"bash", "sh", "shell"}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
ILLUSTRATION = re.compile(r"<!--\s*illustration\b[^>]*-->\s*$")
LOOPBACK = re.compile(r"<!--\s*runs against the loopback Dysmsapi server\b:?\s*(.*?)\s*-->\s*$")
VENDORS = re.compile(r"<!--\s*runs against the loopback vendor servers\s*-->\s*$")
SERVED = re.compile(r"<!--\s*runs against an app served on a loopback port\s*-->\s*$")
FILE = re.compile(r"<!--\s*file:\s*(\S+)\s*-->\s*$")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
REPORT_SECRET = "readme-report-secret-0123456789abcdef"
LOOPBACK_CONFIG: dict[str, Any] = {
    "SECRET_KEY": "readme-loopback-secret-key",
    "TESTING": True,  # the memory store's several-workers warning is for production
    "SMSCODE_SENDER": "aliyun",
    "SMSCODE_ALIYUN_SIGN_NAME": "阿里云短信测试",
    "SMSCODE_ALIYUN_TEMPLATE_CODE": "SMS_123456789",
    "SMSCODE_ALIYUN_PROTOCOL": "http",
    "SMSCODE_ALIYUN_REPORT_SECRET": REPORT_SECRET,
}
# The Dysmsapi actions the README's examples call: each must have reached the server.
README_ACTIONS = {"SendSms", "SendBatchSms", "QuerySendDetails"}
# How the test interpreter starts the blocks' one (ROOT appended: it imports this module).
RUN_BLOCKS = (
    f"import sys; sys.path.append({str(ROOT)!r}); "
    "from tests.test_readme import run_blocks; run_blocks()"
)


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int
    illustration: bool
    loopback: str | None = None  # the setup's name ("" for none) under the loopback marker
    file: str | None = None  # the path a file block is written to
    served: bool = False  # a shell block run against an app served on loopback
    vendors: bool = False  # a Python block run against the loopback vendor servers

    @property
    def where(self) -> str:
        return f"README.md:{self.line}"


def readme_blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    blocks = []
    for found in FENCE.finditer(text):
        before = text[: found.start()].rstrip("\n").rsplit("\n", 1)[-1]
        loopback = LOOPBACK.search(before)
        file = FILE.search(before)
        blocks.append(
            Block(
                found.group(1),
                found.group(2),
                text.count("\n", 0, found.start()) + 1,
                bool(ILLUSTRATION.search(before)),
                loopback.group(1) if loopback else None,
                file.group(1) if file else None,
                bool(SERVED.search(before)),
                bool(VENDORS.search(before)),
            )
        )
    return blocks


BLOCKS = readme_blocks()
PYTHON = [b for b in BLOCKS if b.language == "python"]
SHELL = [b for b in BLOCKS if b.language in SHELLS]


# -- the blocks' interpreter ----------------------------------------------------------------
def _after_a_failed_report(app: Flask, server: DysmsapiServer) -> None:
    """A login code to PHONE through the app's ``aliyun`` sender, then Alibaba's push of its
    delivery report, failed with ``MK:0001``, to the app's receiver over real HTTP."""
    from flask_smscode import send_code

    app.register_blueprint(sms_bp)
    with app.app_context():
        send_code(PHONE)
    report = server.delivery_report(server.last_sms(PHONE), success=False, err_code="MK:0001")
    with live_server(app) as base:
        status, answer = server.push_reports(f"{base}/sms/reports/{REPORT_SECRET}", [report])
    assert server.push_accepted(status, answer), (status, answer)


# The steps a loopback marker may name after a colon, run after ``app`` is set.
SETUPS: dict[str, Callable[[Flask, DysmsapiServer], None]] = {
    "after a code to 13800138000 and Alibaba's push of its failed report": _after_a_failed_report,
}


def _loopback_only() -> None:
    """Make any host name but loopback fail to resolve in this interpreter."""
    resolve = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and name not in LOOPBACK_HOSTS:
            raise socket.gaierror(socket.EAI_NONAME, f"README examples reach loopback only: {name}")
        return resolve(host, *args, **kwargs)

    socket.getaddrinfo = guarded


def run_blocks() -> None:
    """Run the plan on stdin (blocks, files, where to write the summary): the entry point of
    the blocks' interpreter, started by :func:`test_python_examples_run_in_order`."""
    plan = json.load(sys.stdin)
    _loopback_only()
    for name, content in plan["files"].items():
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).write_text(content, encoding="utf-8")
    server = DysmsapiServer({ACCESS_KEY_ID: ACCESS_KEY_SECRET})
    server.start()
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    try:
        for line, code, setup in plan["blocks"]:
            try:
                if setup is not None:
                    app = Flask("readme_loopback")
                    app.config.update(plan["config"], SMSCODE_ALIYUN_ENDPOINT=server.endpoint)
                    namespace["app"] = app
                    if setup:
                        SETUPS[setup](app, server)
                exec(compile(code, f"README.md:{line}", "exec"), namespace)
            except BaseException:
                traceback.print_exc()
                print(f"README.md block at line {line} failed", file=sys.stderr)
                sys.exit(1)
    finally:
        summary = {
            "requests": [
                {"action": r.action, "signature_ok": r.signature_ok, "code": r.code}
                for r in server.requests
            ],
            "errors": server.errors,
        }
        Path(plan["summary"]).write_text(json.dumps(summary), encoding="utf-8")
        server.stop()


# -- the tests ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def readme_redis() -> Iterator[str]:
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.cleanup()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SMSCODE_", "FLASK_", "ALIBABA_CLOUD_"))
        and k not in {"REDIS_URL", "SECRET_KEY", "DEMO_INSTANCE_PATH"}
    }
    # The demo keeps its key and accounts here instead of the repository's instance/.
    env.update(
        DEMO_INSTANCE_PATH=str(tmp_path / "instance"),
        LANG="en_US.UTF-8",
        LC_ALL="en_US.UTF-8",
        **extra,
    )
    return env


def test_readme_has_examples_of_both_kinds() -> None:
    assert len([b for b in PYTHON if not b.illustration]) >= 4
    assert len([b for b in SHELL if not b.illustration]) >= 1
    assert len([b for b in PYTHON if b.loopback is not None]) >= 3
    text = README.read_text(encoding="utf-8")
    for marker in re.findall(r"<!--\s*illustration\b([^>]*)-->", text):
        assert marker.strip(" :"), "say why a block is only an illustration"
    for block in BLOCKS:
        assert block.loopback in (None, "", *SETUPS), f"{block.where}: unknown setup"
        assert not (block.loopback is not None and block.illustration), block.where
        if block.file is not None:
            assert not Path(block.file).is_absolute() and ".." not in Path(block.file).parts


def test_python_examples_run_in_order(tmp_path: Path, readme_redis: str) -> None:
    plan = {
        "blocks": [
            (b.line, b.code.replace(README_REDIS, readme_redis), b.loopback)
            for b in PYTHON
            if not b.illustration and not b.vendors
        ],
        "files": {b.file: b.code for b in BLOCKS if b.file is not None},
        "config": LOOPBACK_CONFIG,
        "summary": str(tmp_path / "dysmsapi-summary.json"),
    }
    # The AccessKey is read from the environment, as the README says.
    env = _env(
        tmp_path,
        ALIBABA_CLOUD_ACCESS_KEY_ID=ACCESS_KEY_ID,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=ACCESS_KEY_SECRET,
    )
    done = subprocess.run(
        [sys.executable, "-c", RUN_BLOCKS],
        input=json.dumps(plan),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(Path(plan["summary"]).read_text(encoding="utf-8"))
    requests = summary["requests"]
    assert not summary["errors"], summary["errors"]
    assert {r["action"] for r in requests} >= README_ACTIONS, requests
    assert all(r["signature_ok"] and r["code"] == "OK" for r in requests), requests


def test_python_illustrations_compile() -> None:
    for block in PYTHON:
        if block.illustration:
            compile(block.code, block.where, "exec")


# One number per region a vendor example may allow, and the servers' answers to find its code.
REGION_PHONES = {"CN": "+8613800138000", "HK": "+85251234567", "US": "+12025550123"}
README_REPORT_SECRET = "readme-tencent-report-secret-0123456789ab"


def _vendor_servers() -> tuple[Any, Any, Any]:
    from tests.servers.dypnsapi_server import DypnsapiServer
    from tests.servers.tencent_server import TencentServer

    tencent = TencentServer(sdk_app_ids=("1400006666",))
    tencent.set_sign("腾讯云")
    for template in ("1110", "1111"):
        tencent.set_template(template, "验证码为：{1}，{2}分钟内有效")
    tencent.set_template("1112", "Your code is {1}.", international=1)
    return (
        tencent,
        DypnsapiServer({ACCESS_KEY_ID: ACCESS_KEY_SECRET}),
        DysmsapiServer({ACCESS_KEY_ID: ACCESS_KEY_SECRET}),
    )


@pytest.mark.parametrize("block", [b for b in PYTHON if b.vendors], ids=lambda b: b.where)
def test_vendor_examples_send_and_verify(block: Block, monkeypatch: pytest.MonkeyPatch) -> None:
    from flask_smscode.config import regions_from_config
    from tests.helpers import send, verify
    from tests.servers.tencent_server import SECRET_ID, SECRET_KEY

    # Credentials where the README says they come from: the vendors' own variables.
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", SECRET_ID)
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ACCESS_KEY_SECRET)
    monkeypatch.setenv("SMSCODE_TENCENT_REPORT_SECRET", README_REPORT_SECRET)
    tencent, pnvs, aliyun = servers = _vendor_servers()
    with ExitStack() as stack:
        for server in servers:
            server.start()
            stack.callback(server.stop)
        app = Flask("readme_vendors")
        app.config.update(
            SECRET_KEY="readme-vendors-key",
            TESTING=True,
            # every vendor "as usual", pointed at its loopback server
            SMSCODE_ALIYUN_ENDPOINT=aliyun.endpoint,
            SMSCODE_ALIYUN_PROTOCOL="http",
            SMSCODE_ALIYUN_SIGN_NAME="阿里云短信测试",
            SMSCODE_ALIYUN_TEMPLATE_CODE="SMS_123456789",
            SMSCODE_ALIYUN_INTL_TEMPLATE_CODE="SMS_INTL_CODE",
            SMSCODE_TENCENT_ENDPOINT=tencent.endpoint,
            SMSCODE_TENCENT_PROTOCOL="http",
            SMSCODE_TENCENT_SDK_APP_ID="1400006666",
            SMSCODE_TENCENT_SIGN_NAME="腾讯云",
            SMSCODE_TENCENT_TEMPLATE_ID="1110",
            SMSCODE_TENCENT_INTL_TEMPLATE_ID="1112",
            SMSCODE_PNVS_ENDPOINT=pnvs.endpoint,
            SMSCODE_PNVS_PROTOCOL="http",
        )
        exec(compile(block.code, block.where, "exec"), {"app": app, "os": os})
        app.register_blueprint(sms_bp)
        _, allowed = regions_from_config(app.config)
        client = app.test_client()
        carried = set()
        for region in allowed or REGION_PHONES:
            phone = REGION_PHONES[region]
            answer = send(client, phone)
            assert answer.status_code == 200, (block.where, phone, answer.get_json())
            for name, server in zip(("tencent", "pnvs", "aliyun"), servers, strict=True):
                if server.messages_to(phone):
                    carried.add(name)
                    code = server.last_code(phone)
                    break
            else:
                pytest.fail(f"{block.where}: no loopback server got the SMS to {phone}")
            assert verify(client, code, phone).status_code == 200, (block.where, phone)
        assert carried, block.where
        for server in servers:
            assert not server.errors, server.errors
            assert all(r.signature_ok for r in server.requests), block.where


@pytest.mark.parametrize("block", [b for b in SHELL if not b.illustration], ids=lambda b: b.where)
def test_shell_examples_run(block: Block, tmp_path: Path, readme_redis: str) -> None:
    flask = ROOT / ".venv" / "bin" / "flask"
    if ".venv/bin/" in block.code and not flask.exists():
        pytest.fail(f"{flask} is missing: the README's commands assume scripts/test.sh's .venv")
    code = block.code.replace(README_REDIS, readme_redis)
    with ExitStack() as stack:
        cwd, env = ROOT, _env(tmp_path)
        if block.served:
            app = Flask("readme_served")
            app.config.update(SECRET_KEY="readme-served-key", TESTING=True)
            app.register_blueprint(sms_bp)
            code = code.replace(README_APP, stack.enter_context(live_server(app)))
            cwd = tmp_path / "work"
            cwd.mkdir()
            (cwd / ".venv").symlink_to(ROOT / ".venv")
            env.update(HOME=str(tmp_path), PATH=f"{Path(sys.executable).parent}:{env['PATH']}")
        done = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + code],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, f"{block.where}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("block", [b for b in SHELL if b.illustration], ids=lambda b: b.where)
def test_shell_illustrations_parse(block: Block) -> None:
    done = subprocess.run(
        ["bash", "-n", "-c", block.code], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0 and done.stderr == "", f"{block.where}\n{done.stderr}"


# -- the low-code element's files -----------------------------------------------------------
def test_the_element_files_load_through_the_loader_and_send(tmp_path: Path) -> None:
    """The README's ``e.json`` and ``sms.json``, as written, through the loader; a server that
    knows the README's (placeholder) AccessKey then accepts a send signed with it."""
    files = {b.file: b.code for b in BLOCKS if b.file is not None}
    assert {"elements/sms/e.json", "elements/sms/sms.json"} <= set(files)
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content, encoding="utf-8")
    folder = tmp_path / "elements" / "sms"
    assert json.loads(files["elements/sms/e.json"])["type"] == ELEMENT_TYPE
    assert element_sms_json(folder) == folder / "." / "sms.json"
    key_id, secret, sign_name = credentials_from_json(folder / "sms.json")
    with DysmsapiServer({key_id: secret}, sign_names={sign_name}) as server:
        sms = AliyunSms.from_element(folder, endpoint=server.endpoint, protocol="http")
        [answer] = sms.send_message(PHONE, {"name": "张三", "time": "22:00"}, "SMS_NOTIFY")
        assert answer.ok
        [request] = server.requests
        assert request.signature_ok and request.access_key_id == key_id


# -- sample outputs -------------------------------------------------------------------------
def _shape(line: str) -> str:
    """A line with its free parts blanked: OutIds of code sends, then every run of digits
    (codes, masked numbers' digits, times, latencies, counts)."""
    return re.sub(r"\d+", "<n>", re.sub(r"\b[0-9a-z]{16}\b", "<OutId>", line))


def _text_block(start: str) -> list[str]:
    """The lines of the README's one ``text`` block that starts with a match of ``start``."""
    found = [b for b in BLOCKS if b.language == "text" and re.match(start, b.code)]
    assert len(found) == 1, f"{len(found)} text blocks start with {start!r}"
    return found[0].code.splitlines()


def test_the_console_sender_samples_are_its_real_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="flask_smscode.console"):
        ConsoleSender({}, show_code=True).send(E164, "123456", "signup", out_id="x")
    [real] = [r.getMessage() for r in caplog.records if r.name == "flask_smscode.console"]
    text = README.read_text(encoding="utf-8")
    samples = re.findall(r"smscode console sender: [^`\n]*", text)
    assert len(samples) >= 3, samples  # the walk, the command-line session, gunicorn
    for sample in samples:
        purpose = sample.rsplit(" for ", 1)[-1].split()[0]
        assert _shape(sample) == _shape(real.replace("signup", purpose)), sample


def test_the_outid_samples_have_the_real_shape() -> None:
    real = OutIds(b"readme").new(E164)
    shape = re.compile(rf"[0-9a-z]{{{len(real)}}}")
    assert shape.fullmatch(real)
    text = README.read_text(encoding="utf-8")
    samples = re.findall(
        r"OutId of last send: (\S+)|\(OutId (\S+)\)|\"out_id\": \"([^\"]+)\""
        r"|event=send [^\n`]*?out_id=(\S+)",
        text,
    )
    found = [next(s for s in groups if s) for groups in samples]
    assert len(found) >= 6, found
    assert all(shape.fullmatch(s) for s in found), found


def test_the_command_line_session_is_real_output(tmp_path: Path, readme_redis: str) -> None:
    """The session's commands up to ``reset`` (the demo's console sender), run as written
    with stderr and stdout in one stream as a terminal shows them."""
    session: list[tuple[str, list[str]]] = []
    for line in _text_block(r"\$ export REDIS_URL="):
        if line.startswith("$ "):
            session.append((line[2:], []))
        else:
            session[-1][1].append(re.sub(r"\s+<- .*$", "", line))
    upto = next(i for i, (command, _) in enumerate(session) if " smscode reset " in command)
    session = session[: upto + 1]
    mark = f"=== {uuid.uuid4().hex} ==="
    script = "".join(
        f"echo '{mark}'\n{command.replace(README_REDIS, readme_redis)}\n" for command, _ in session
    )
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=ROOT,
        env=_env(
            tmp_path,
            PYTHONUNBUFFERED="1",  # stdout and stderr interleaved as on a terminal
            SMSCODE_KEY_PREFIX=f"readme-session-{uuid.uuid4().hex[:8]}",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    )
    outputs = done.stdout.split(mark + "\n")[1:]
    assert len(outputs) == len(session), done.stdout
    for (command, expected), output in zip(session, outputs, strict=True):
        real = [line for line in output.splitlines() if "setlocale" not in line]
        assert [_shape(x) for x in expected] == [_shape(x) for x in real], (command, real)


def test_the_gunicorn_sample_is_what_the_default_handler_writes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The lines the README shows under gunicorn, as Flask's default handler formats the
    records of a signup code (tests/test_logging.py shows gunicorn writing them)."""
    app = Flask("readme_gunicorn")
    app.config.update(SECRET_KEY="x", TESTING=True)
    app.register_blueprint(sms_bp)
    with caplog.at_level(logging.INFO, logger="flask_smscode"):
        sent = app.test_client().post("/sms/send", json={"phone": PHONE, "purpose": "signup"})
    assert sent.status_code == 200
    formatter = default_handler.formatter
    assert formatter is not None
    real = [formatter.format(r) for r in caplog.records if r.name.startswith("flask_smscode")]
    sample = _text_block(r"\[[^]\n]*\] INFO in console: ")
    assert [_shape(x) for x in sample] == [_shape(x) for x in real], real
