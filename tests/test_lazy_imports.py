"""`import flask_smscode` stays cheap: heavy dependencies load with the first name that needs
them, the Alibaba SDK only with the first SendSms call. What is loaded is asserted, not how
long it took (CI times nothing; bench/ measures the milliseconds)."""

from __future__ import annotations

import json
import subprocess
import sys

import flask_smscode

HEAVY = ("aliyunsdkcore", "limits", "redis", "phonenumbers")


def loaded_after(code: str) -> list[str]:
    """Heavy modules in sys.modules after running ``code`` in a fresh interpreter."""
    probe = (
        f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    return list(json.loads(out.strip().splitlines()[-1]))


def test_import_loads_no_heavy_dependency() -> None:
    assert loaded_after("import flask_smscode") == []


def test_the_sdk_waits_for_the_first_call() -> None:
    loaded = loaded_after(
        "from flask_smscode import sms_bp, AliyunSms, get_service\n"
        "from flask import Flask\n"
        "app = Flask('x'); app.config['SECRET_KEY'] = 'k'\n"
        "app.register_blueprint(sms_bp)"
    )
    assert "aliyunsdkcore" not in loaded


def test_every_public_name_resolves() -> None:
    namespace: dict[str, object] = {}
    exec("from flask_smscode import *", namespace)
    assert set(flask_smscode.__all__) <= set(namespace)
    assert set(flask_smscode.__all__) <= set(dir(flask_smscode))
    assert flask_smscode.AliyunSms.__module__ == "flask_smscode.aliyun.client"


def test_unknown_names_raise_attribute_error() -> None:
    try:
        flask_smscode.no_such_name
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_the_blueprint_import_line_loads_only_the_web_layer() -> None:
    """`from flask_smscode import sms_bp` is an app's import line (issue 14: +40 ms at most
    over `import flask`): the service, the stores, the senders, phonenumbers and the
    version lookup load when the app is set up (register_blueprint), not with it."""
    probe = (
        "from flask_smscode import sms_bp\nimport json, sys\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('flask_smscode',"
        " 'phonenumbers', 'redis', 'limits')))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    loaded = set(json.loads(out.strip().splitlines()[-1]))
    later = {
        "flask_smscode._version",
        "flask_smscode.core.service",
        "flask_smscode.core.deliveries",
        "flask_smscode.stores",
        "flask_smscode.stores.memory",
        "flask_smscode.senders",
        "flask_smscode.senders.reports",
        "flask_smscode.events",
        "flask_smscode.metrics",
        "phonenumbers",
        "redis",
        "limits",
    }
    assert loaded & later == set()
    assert "flask_smscode.web.blueprint" in loaded


def test_version_is_looked_up_on_first_use() -> None:
    assert loaded_after("import flask_smscode") == []
    assert isinstance(flask_smscode.__version__, str) and flask_smscode.__version__
