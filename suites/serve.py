"""Start `wirecheck serve` the way a user does, on a free loopback port, and stop it afterwards."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from wirecheck.extras import requirement_message


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MissingExtra(ValueError):
    """`wirecheck serve` cannot run here: the reference server's extra is not installed (the message says which)."""


class ReferenceServer:
    def __init__(self, *args: str, command: list[str] | None = None, env: dict[str, str] | None = None,
                 cwd: Path | str | None = None) -> None:
        if command is None and (message := requirement_message("starting the reference server", "server")):
            raise MissingExtra(message + "; or pass --target URL to check a running endpoint")
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        # This interpreter's own wirecheck, never another one that happens to be first on PATH.
        base = command or [sys.executable, "-m", "wirecheck", "serve"]
        fd, name = tempfile.mkstemp(prefix=f"wirecheck-{self.port}-", suffix=".log")
        os.close(fd)
        self.log = Path(name)
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen([*base, "--port", str(self.port), *args],
                                     stdout=self._log_file, stderr=subprocess.STDOUT, env=env, cwd=cwd)

    def wait_ready(self, timeout: float = 120.0, path: str = "/health") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.logs()}")
            try:
                if httpx.get(self.base_url + path, timeout=1).status_code < 500:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"server not ready in {timeout}s:\n{self.logs()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log_file.close()

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def running(*args: str, command: list[str] | None = None, path: str = "/health") -> Iterator[ReferenceServer]:
    server = ReferenceServer(*args, command=command)
    try:
        server.wait_ready(path=path)
        yield server
    finally:
        server.stop()
