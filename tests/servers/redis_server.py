"""Private redis-server processes for the suite, on free loopback ports.

Tests never touch the machine's shared Redis on 6379 unless ``$REDIS_URL`` says so, and
even then they only delete keys under their own random prefix.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A throw-away ``redis-server`` that a test may stop, restart, freeze or kill.

    No persistence unless ``appendonly=True`` (an AOF in the server's own temp dir, which a
    restart on the same object reuses). ``args`` are extra ``redis-server`` options.
    """

    def __init__(
        self, port: int | None = None, *, appendonly: bool = False, args: Sequence[str] = ()
    ) -> None:
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="smscode-redis-"))
        self.appendonly = appendonly
        self.args = list(args)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--appendfsync",
                "always",
                "--dir",
                str(self.dir),
                "--logfile",
                str(self.dir / "log"),
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {self.port}")
                time.sleep(0.05)
        client.close()
        return self

    def pause(self) -> None:
        """SIGSTOP: Redis stalls (a slow fork, a swapped-out host) with its sockets open."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT: Redis runs again and executes whatever was queued on its sockets."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: a crash; nothing is flushed (``start`` brings it back on the same port)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def client_pause(self, milliseconds: int) -> None:
        """``CLIENT PAUSE <ms> ALL`` from a connection of our own: every client's commands
        wait (queued, then executed) until the pause ends."""
        with redis.Redis(port=self.port, socket_timeout=5) as client:
            client.execute_command("CLIENT PAUSE", milliseconds, "ALL")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a frozen server cannot act on SIGTERM
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
