"""The suite's one helpers module: the numbers and keys every test uses, and the typed
request helpers of the HTTP contract (send, verify, a wrong code, an error's shape).

Fixtures live in ``conftest.py``; the loopback servers (Dysmsapi, Redis, Cluster, Sentinel,
a live WSGI server) in ``tests/servers/``. Test modules import from here, never from each
other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

import flask_smscode

ACCESS_KEY_ID = "test-key-id"
ACCESS_KEY_SECRET = "test-key-secret"
PHONE = "13800138000"
E164 = "+8613800138000"
# The CLI's messages in English, whatever the machine's locale (C means untranslated).
ENGLISH = {"LANGUAGE": "", "LC_ALL": "C.UTF-8"}

# The stable error codes of the contract: the ErrorCode enum of the shipped document.
ERROR_CODES = frozenset(
    yaml.safe_load(
        (Path(flask_smscode.__file__).with_name("openapi.yaml")).read_text(encoding="utf-8")
    )["components"]["schemas"]["ErrorCode"]["enum"]
)


def send(client: Any, phone: str = PHONE, purpose: str | None = None, **kwargs: Any) -> Any:
    """``POST /sms/send`` as JSON (a missing purpose is the default, login)."""
    body = {"phone": phone} if purpose is None else {"phone": phone, "purpose": purpose}
    return client.post("/sms/send", json=body, **kwargs)


def verify(
    client: Any, code: str, phone: str = PHONE, purpose: str = "login", **kwargs: Any
) -> Any:
    """``POST /sms/verify`` as JSON."""
    return client.post(
        "/sms/verify", json={"phone": phone, "code": code, "purpose": purpose}, **kwargs
    )


def wrong(code: str, offset: int = 1) -> str:
    """Another well-formed code of the same length."""
    return f"{(int(code) + offset) % 10 ** len(code):0{len(code)}d}"


def error_of(response: Any) -> str:
    """The ``error`` code of a refusal, after checking the refusal's shape."""
    body = response.get_json() if hasattr(response, "get_json") else response.json()
    assert isinstance(body, dict) and body["ok"] is False, body
    assert body["error"] in ERROR_CODES, body
    assert isinstance(body["message"], str) and body["message"]
    return str(body["error"])


def assert_error(response: Any, status: int, error: str) -> dict[str, Any]:
    """Check a refusal's status, JSON shape and code; return its body."""
    text = response.get_data(as_text=True) if hasattr(response, "get_data") else response.text
    assert response.status_code == status, text
    assert error_of(response) == error, text
    body: dict[str, Any] = json.loads(text)
    return body
