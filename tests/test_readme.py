"""Every Python and shell example in README.md runs, so the README cannot drift from the code.

Python blocks run in order in one namespace (a reader pastes them one after another), in a
fresh interpreter; shell blocks run with bash from the repository root, as written
(``.venv/bin/flask ...``). One substitution: the README's Redis URL
``redis://127.0.0.1:6379/0`` is pointed at a private redis-server (the shared one is never
touched). A block that cannot run here (it needs the package index, Alibaba Cloud's real
keys, or never ends) is preceded by ``<!-- illustration: why -->`` and is only compiled
(``compile()`` / ``bash -n``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_REDIS = "redis://127.0.0.1:6379/0"
SHELLS = {"bash", "sh", "shell"}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
ILLUSTRATION = re.compile(r"<!--\s*illustration\b[^>]*-->\s*$")

RUNNER = textwrap.dedent("""
    import json, sys, traceback
    namespace = {"__name__": "__readme__"}
    for line, code in json.load(sys.stdin):
        try:
            exec(compile(code, f"README.md:{line}", "exec"), namespace)
        except BaseException:
            traceback.print_exc()
            print(f"README.md block at line {line} failed", file=sys.stderr)
            sys.exit(1)
""")


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int
    illustration: bool

    @property
    def where(self) -> str:
        return f"README.md:{self.line}"


def readme_blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    blocks = []
    for found in FENCE.finditer(text):
        before = text[: found.start()].rstrip("\n").rsplit("\n", 1)[-1]
        blocks.append(
            Block(
                found.group(1),
                found.group(2),
                text.count("\n", 0, found.start()) + 1,
                bool(ILLUSTRATION.search(before)),
            )
        )
    return blocks


BLOCKS = readme_blocks()
PYTHON = [b for b in BLOCKS if b.language == "python"]
SHELL = [b for b in BLOCKS if b.language in SHELLS]


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
    text = README.read_text(encoding="utf-8")
    for marker in re.findall(r"<!--\s*illustration\b([^>]*)-->", text):
        assert marker.strip(" :"), "say why a block is only an illustration"


def test_python_examples_run_in_order(tmp_path: Path, readme_redis: str) -> None:
    runnable = [
        (b.line, b.code.replace(README_REDIS, readme_redis)) for b in PYTHON if not b.illustration
    ]
    # The aliyun example reads its AccessKey from the environment, as it says; nothing is
    # sent (the blueprint builds the client lazily, on the first send).
    env = _env(
        tmp_path,
        ALIBABA_CLOUD_ACCESS_KEY_ID="LTAI-readme-test",
        ALIBABA_CLOUD_ACCESS_KEY_SECRET="readme-test-secret",
    )
    done = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps(runnable),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("block", [b for b in PYTHON if b.illustration], ids=lambda b: b.where)
def test_python_illustrations_compile(block: Block) -> None:
    compile(block.code, block.where, "exec")


@pytest.mark.parametrize("block", [b for b in SHELL if not b.illustration], ids=lambda b: b.where)
def test_shell_examples_run(block: Block, tmp_path: Path, readme_redis: str) -> None:
    flask = ROOT / ".venv" / "bin" / "flask"
    if ".venv/bin/" in block.code and not flask.exists():
        pytest.fail(f"{flask} is missing: the README's commands assume scripts/test.sh's .venv")
    script = "set -euo pipefail\n" + block.code.replace(README_REDIS, readme_redis)
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=ROOT,
        env=_env(tmp_path),
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
