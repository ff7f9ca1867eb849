"""``flask smscode suppress list|add|remove`` against the app's real store."""

from __future__ import annotations

import json

from flask import Flask

from flask_smscode import get_service
from flask_smscode.cli import smscode
from tests.helpers import E164, ENGLISH, PHONE


def run(app: Flask, *args: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(smscode, ["suppress", *args], env=ENGLISH)
    return result.exit_code, result.output


def test_add_list_remove(app: Flask) -> None:
    code, output = run(app, "add", PHONE)
    assert code == 0 and "is on the suppression list" in output
    assert PHONE not in output  # masked
    assert get_service(app).suppression.is_suppressed(E164)
    code, output = run(app, "add", "+86 138 0013 8000")
    assert code == 0 and "already" in output
    code, output = run(app, "list")
    assert code == 0 and "1 number(s) on the suppression list." in output and "cli" in output
    assert E164 not in output
    code, output = run(app, "list", "--full", "--json")
    listed = json.loads(output)
    assert listed["count"] == 1 and listed["numbers"][0]["phone"] == E164
    assert listed["numbers"][0]["source"] == "cli"
    code, output = run(app, "remove", PHONE)
    assert code == 0 and "taken off" in output
    code, output = run(app, "remove", PHONE)
    assert code == 1 and "is not on the suppression list" in output


def test_an_invalid_phone_is_an_error_line(app: Flask) -> None:
    code, output = run(app, "add", "12345")
    assert code == 1 and "Error: invalid_phone" in output
