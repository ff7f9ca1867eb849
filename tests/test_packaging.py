"""The package builds (sdist and wheel, ``python -m build``), and the wheel works where
nothing of this checkout is on the path: installed into a clean virtualenv, it imports,
finds its data files and registries, and ``flask smscode --help`` runs.

This is what ``pip install`` of a release will do; a file missing from the package data or
an entry point missing from ``pyproject.toml`` fails here, not on a user's machine. The
clean virtualenv installs the wheel's dependencies under ``requirements/lock.txt`` (the same
releases as the suite), from the package index pip is configured with.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "lock.txt"
DATA_FILES = (
    "flask_smscode/py.typed",
    "flask_smscode/openapi.yaml",
    "flask_smscode/locales/en.json",
    "flask_smscode/locales/zh.json",
    "flask_smscode/web/static/smscode.js",
    "flask_smscode/stores/lua/send.lua",
    "flask_smscode/stores/lua/common.lua",
)


def run(*args: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", out, ROOT)
    yield out


@pytest.fixture(scope="module")
def clean_venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv with only the built wheel (and its dependencies) installed."""
    home = tmp_path_factory.mktemp("venv") / "env"
    venv.EnvBuilder(with_pip=True, clear=True).create(home)
    [wheel] = dist.glob("*.whl")
    python = home / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-c", LOCK, wheel)
    return home


def test_sdist_and_wheel_are_built(dist: Path) -> None:
    [wheel] = dist.glob("flask_smscode-*.whl")
    [sdist] = dist.glob("flask_smscode-*.tar.gz")
    assert sdist.stat().st_size > 0
    names = set(zipfile.ZipFile(wheel).namelist())
    for data in DATA_FILES:
        assert data in names, f"{data} is not in the wheel (package data in pyproject.toml)"
    assert not any(name.startswith("tests/") for name in names)
    points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(points).decode()
    for group in ("[flask.commands]", "[flask_smscode.senders]", "[flask_smscode.stores]"):
        assert group in text


def test_the_wheel_imports_and_serves_from_a_clean_virtualenv(clean_venv: Path) -> None:
    script = textwrap.dedent("""
        import flask_smscode, pathlib
        from flask import Flask
        from flask_smscode import sms_bp, send_code, verify_code
        assert "site-packages" in flask_smscode.__file__, flask_smscode.__file__
        app = Flask("t")
        app.config.update(SECRET_KEY="k" * 32, TESTING=True,
                          SMSCODE_TEST_NUMBERS={"13800138000": "123456"})
        app.register_blueprint(sms_bp)
        client = app.test_client()
        assert client.get("/sms/static/smscode.js").status_code == 200
        assert client.get("/sms/openapi.json").status_code == 200
        sent = client.post("/sms/send", json={"phone": "13800138000"})
        assert sent.status_code == 200, sent.get_json()
        ok = client.post("/sms/verify", json={"phone": "13800138000", "code": "123456"})
        assert ok.status_code == 200 and ok.get_json()["token"], ok.get_json()
        print("ok", flask_smscode.__version__)
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    out = run(clean_venv / "bin" / "python", "-c", script, cwd=clean_venv, env=env)
    assert out.startswith("ok ")


def test_flask_smscode_help_runs_in_the_clean_virtualenv(clean_venv: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    out = run(clean_venv / "bin" / "flask", "smscode", "--help", cwd=clean_venv, env=env)
    for command in ("send", "status", "reset", "notify", "delivery", "doctor", "guard"):
        assert command in out
