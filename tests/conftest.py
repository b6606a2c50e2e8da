"""Shared fixtures: the reference server started the way users start it, on a free loopback port."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from wirecheck.suites.serve import ReferenceServer as Server
from wirecheck.suites.serve import running as running_server


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
