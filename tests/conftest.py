"""Shared fixtures: the reference server started the way users start it, on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        exe = shutil.which("wirecheck")
        command = [exe] if exe else [sys.executable, "-m", "reference_server.cli"]
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"wirecheck-serve-{self.port}.log"
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen([*command, "serve", "--port", str(self.port), *args],
                                     stdout=self._log_file, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log.read_text()}")
            try:
                if httpx.get(self.base_url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"server not ready in {timeout}s:\n{self.log.read_text()}")

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
def running_server(*args: str) -> Iterator[Server]:
    srv = Server(*args)
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    with running_server("--max-body-bytes", "200000") as srv:
        yield srv


@pytest.fixture(scope="session")
def keyed_server() -> Iterator[Server]:
    with running_server("--api-key", "sk-test-one", "--api-key", "sk-test-two") as srv:
        yield srv


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll until predicate() is true; returns its last value (tests assert on it)."""
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(interval)
    return bool(predicate())


@pytest.fixture(scope="session")
def client(server: Server):
    openai = pytest.importorskip("openai")
    # Strict validation: the SDK's own pydantic models must accept every response we send.
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0,
                         _strict_response_validation=True)


@pytest.fixture(scope="session")
def loose_client(server: Server):
    """The SDK as users construct it (its base64 embedding path only works without strict validation)."""
    import openai

    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="session")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=60) as c:
        yield c
