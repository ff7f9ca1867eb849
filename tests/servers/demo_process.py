"""The demo site as a real process (``python demo_app.py`` or gunicorn) on a loopback port,
its terminal output collected line by line by a thread, so a test can read the codes the
console sender prints exactly as a person at the terminal would. Bounded waits; always
stopped by the caller (``stop()``)."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 20.0
# What the demo reads from the environment: cleared so the machine's own settings never leak.
DEMO_VARIABLES = {"REDIS_URL", "SECRET_KEY", "FLASK_DEBUG", "DEMO_CHALLENGE", "HOST", "PORT"}


def demo_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any SMSCODE_*, FLASK_*, GUNICORN_* or demo
    variable, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SMSCODE_", "FLASK_", "GUNICORN_")) and key not in DEMO_VARIABLES
    }
    env.update(extra)
    return env


class DemoProcess:
    """``command`` run from the repository root, serving on ``url``; stdout and stderr are
    read as one stream of lines."""

    def __init__(self, command: Sequence[str], url: str, env: Mapping[str, str]) -> None:
        self.url = url
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            list(command),
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_until_up(self, path: str = "/login") -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the demo exited with {self.process.returncode}:\n{self.output}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"the demo did not answer on {self.url}:\n{self.output}")

    def mark(self) -> int:
        """A position in the output: :meth:`wait_for` can look only at what came after it."""
        with self._changed:
            return len(self.lines)

    def wait_for(self, pattern: str, since: int = 0, timeout: float = 10.0) -> re.Match[str]:
        """The first output line after ``since`` matching ``pattern``, waiting up to
        ``timeout`` seconds for it."""
        wanted = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[since:]:
                    found = wanted.search(line)
                    if found:
                        return found
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(
                        f"no line matching {pattern!r} in the demo's output:\n{self.output}"
                    )
                self._changed.wait(left)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()
