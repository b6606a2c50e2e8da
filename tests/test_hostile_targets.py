"""The suites against hostile targets (issue 19): a target that never answers, sends headers then nothing, drips a
byte every few seconds, or sends an endless body. A full `pytest --target` run against each ends on its own, within
the deadlines it spends, exits 1 and reports every check it could not judge as failed, saying what it observed.

The full runs go as users run them (`python -m pytest --pyargs wirecheck.suites --target URL`), all at once, each
against its own server (tests/hostile_targets.py). After STALL_LIMIT exchanges in a row run out of time a run
stops sending, so a full run meets the hostile server only in its first few exchanges: the client paths it never
reaches there (model discovery, the openai and anthropic SDKs) are driven against each server directly below.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from wirecheck.spec.profiles import load_profile
from wirecheck.suites.target import Target
from wirecheck.suites.wire import MAX_BODY

from .hostile_targets import HostileServer

DEADLINE = 2.0  # --deadline of every run: small, so the whole file stays well under a minute of waiting
# What one timed-out exchange may cost beyond its deadline: a drip read that was under way when the deadline
# passed (0.5 s), or an SDK call, which `bounded` waits for until the deadline plus 2 s.
SLACK = 2.0
ALLOWANCE = 10.0  # seconds of scheduling noise: six sessions share the CPU, and not all of it evenly
OUTER = 240  # seconds: a run still going then is killed, and that is a failure (it would have hung)
RUNS = {  # name: (mode, seconds between dripped bytes)
    "silent": ("silent", 0.0),
    "headers-only": ("headers-only", 0.0),
    "drip-5s": ("drip", 5.0),  # the drip: slower than the deadline, a per-read timeout catches it
    "drip-0.5s": ("drip", 0.5),  # faster than any per-read timeout: only a deadline on the whole exchange ends it
    "endless": ("endless", 0.0),
}
# Every failure says what was observed: no answer within the deadline, a body cut off, or (past STALL_LIMIT)
# that the exchange was not sent because the target had stopped answering.
OBSERVED = re.compile(r"within the [\d.]+s deadline|within the deadline|without ending|did not end|timed out|"
                      r"not sent")
NOTHING = r"no complete response within the deadline \([\d.]+s, 0 bytes read\)"
FIRST = {  # what the first failures of a run (before the target counts as unresponsive) say, by run
    "silent": NOTHING,
    "headers-only": NOTHING,
    "drip-5s": NOTHING,  # the first byte would come after 5 s
    "drip-0.5s": r"no complete response within the deadline \([\d.]+s, [1-9]\d* bytes read\)",
    "endless": r"the body passed 16 MiB without ending",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Run:
    def __init__(self, name: str, url: str, out: Path) -> None:
        self.name, self.report = name, out / f"{name}.json"
        self.args = [sys.executable, "-m", "pytest", "--pyargs", "wirecheck.suites", "--target", url, "--model", "m",
                     "--deadline", str(DEADLINE), "-p", "no:cacheprovider", "-q", "--report", str(self.report)]
        self.killed, self.output, self.wall, self.records = False, "", 0.0, []
        self.proc = subprocess.Popen(self.args, cwd=out, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.start = time.monotonic()
        self.waiter = threading.Thread(target=self._wait, daemon=True)  # so each wall time is its own
        self.waiter.start()

    def _wait(self) -> None:
        try:
            self.output, _ = self.proc.communicate(timeout=OUTER)
        except subprocess.TimeoutExpired:
            self.killed = True
            self.proc.kill()
            self.output, _ = self.proc.communicate()
        self.wall = time.monotonic() - self.start
        if self.report.is_file():
            self.records = json.loads(self.report.read_text())["checks"]

    def tail(self) -> str:
        return "\n".join(self.output.splitlines()[-30:])


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Run]:
    """Every hostile run, plus "refused": the same session against a port nobody listens on, where every
    exchange fails at once. It is the yardstick: a hostile run may take that long plus the deadlines it spends."""
    out = tmp_path_factory.mktemp("hostile")
    servers = {name: HostileServer(mode, interval) for name, (mode, interval) in RUNS.items()}
    urls = {name: server.__enter__() for name, server in servers.items()}
    try:
        started = {name: Run(name, url, out) for name, url in
                   [("refused", f"http://127.0.0.1:{_free_port()}/v1"), *urls.items()]}
        for run in started.values():
            run.waiter.join()
    finally:
        for server in servers.values():
            server.__exit__(None, None, None)
    print("\nhostile runs: " + ", ".join(f"{r.name} {r.wall:.1f}s" for r in started.values()))
    return started


def test_the_yardstick_run_fails_fast(runs) -> None:
    refused = runs["refused"]
    assert not refused.killed and refused.proc.returncode == 1, refused.tail()
    assert not [r for r in refused.records if r["result"] == "pass"]


@pytest.mark.parametrize("name", sorted(RUNS))
def test_a_full_run_against_a_hostile_target_ends_with_failures(runs, name: str) -> None:
    run = runs[name]
    assert not run.killed, f"{name}: still running after {OUTER}s, killed:\n{run.tail()}"
    # The bound: what the same session costs when every exchange fails at once (start-up, collection, the
    # checks, the report), plus the deadlines actually spent. Exchanges time out one after another (the suites
    # send one at a time), and after STALL_LIMIT in a row every later exchange fails at once without being sent.
    # Measured on a busy 2-core VM, all six at once: refused 38-41 s, the stalling modes 40-45 s, endless 23-32 s.
    bound = runs["refused"].wall + Target.STALL_LIMIT * (DEADLINE + SLACK) + ALLOWANCE
    assert run.wall <= bound, f"{name}: {run.wall:.1f}s, over {bound:.1f}s:\n{run.tail()}"
    assert run.proc.returncode == 1, f"{name}: exit {run.proc.returncode}:\n{run.tail()}"
    assert run.records, f"{name}: no report:\n{run.tail()}"
    passed = [r["id"] for r in run.records if r["result"] == "pass"]
    assert not passed, f"{name}: passed against a target that never completes an answer: {passed}"
    failed = [r for r in run.records if r["result"] == "fail"]
    assert len(failed) >= 40, f"{name}: only {len(failed)} failures"
    unclear = [f"{r['id']}: {r['message']}" for r in failed if not OBSERVED.search(r["message"])]
    assert not unclear, f"{name}: failures that do not say what was observed:\n" + "\n".join(unclear)
    assert any(re.search(FIRST[name], r["message"]) for r in failed), "\n".join(r["message"] for r in failed[:5])
    not_sent = [r for r in failed if "not sent" in r["message"]]
    assert not_sent and all("did not complete within the 2s deadline, so the target is treated as unresponsive"
                            in r["message"] for r in not_sent)


# ----------------------------------------------------------- the client paths a full run stops short of

HELLO = [{"role": "user", "content": "hi"}]


def _openai(target):
    from wirecheck.suites import test_sdk

    return test_sdk.make_client(target, test_sdk.Observed(), strict=True)


def _anthropic(target):
    from wirecheck.suites import test_sdk_anthropic

    return test_sdk_anthropic.make_client(target)


def _drain(opened: list, stream) -> list:
    opened.append(stream)  # `bounded` closes what is registered here when it gives up
    return list(stream)


SDK_CALLS = {  # one non-streamed and one streamed call through each SDK, as the suites make them
    "openai create": (_openai, lambda c, t, opened: c.chat.completions.create(model=t.model, messages=HELLO,
                                                                             max_tokens=4)),
    "openai stream": (_openai, lambda c, t, opened: _drain(opened, c.chat.completions.create(
        model=t.model, messages=HELLO, max_tokens=4, stream=True))),
    "anthropic create": (_anthropic, lambda c, t, opened: c.messages.create(model=t.model, max_tokens=4,
                                                                           messages=HELLO)),
    "anthropic stream": (_anthropic, lambda c, t, opened: _drain(opened, c.messages.create(
        model=t.model, max_tokens=4, messages=HELLO, stream=True))),
}
PATHS = ["model discovery", *SDK_CALLS]


class Call:
    """One client path against one hostile server, run in a thread of its own: how long it took, what it raised,
    the target it counted stalls on, and whether the SDK's worker thread was still reading a second later."""

    def __init__(self, name: str, path: str, url: str) -> None:
        self.name, self.path, self.url = name, path, url
        self.what = f"{path} against {name}"  # also names `bounded`'s worker thread
        self.took, self.error, self.reading = 0.0, None, False
        self.target = Target(base_url=url, api_key="sk-hostile", profile=load_profile("reference"), model="m",
                             embedding_model="m", deadline=DEADLINE)
        self.thread = threading.Thread(target=self._run, name=f"hostile {self.what}", daemon=True)

    def _run(self) -> None:
        from wirecheck.suites.plugin import _first_model
        from wirecheck.suites.test_sdk import bounded
        from wirecheck.suites.test_sdk_anthropic import run

        client = None
        start = time.monotonic()
        try:
            if self.path == "model discovery":
                _first_model(self.url, None, load_profile("openai"), DEADLINE)
            else:
                make, fn = SDK_CALLS[self.path]
                client = make(self.target)
                start = time.monotonic()  # the client is built (an SDK's first import is not the target's doing)
                runner = run if self.path.startswith("anthropic") else bounded
                runner(self.target, self.what, lambda opened: fn(client, self.target, opened))
        except BaseException as exc:  # noqa: BLE001 - judged by the tests
            self.error = exc
        self.took = time.monotonic() - start
        workers = [t for t in threading.enumerate() if t.name == f"wirecheck-sdk {self.what}"]
        for worker in workers:
            worker.join(1.0)
        self.reading = any(w.is_alive() for w in workers)
        if client is not None:
            client.close()


@pytest.fixture(scope="module")
def calls() -> dict[tuple[str, str], Call]:
    """Model discovery and each SDK path against every hostile server, all at once (each waits out deadlines)."""
    from wirecheck.suites import test_sdk, test_sdk_anthropic  # noqa: F401 - imported once, before the threads

    servers = {name: HostileServer(mode, interval) for name, (mode, interval) in RUNS.items()}
    urls = {name: server.__enter__() for name, server in servers.items()}
    try:
        started = {(name, path): Call(name, path, url) for name, url in urls.items() for path in PATHS}
        for call in started.values():
            call.thread.start()
        for call in started.values():
            call.thread.join(OUTER)
    finally:
        for server in servers.values():
            server.__exit__(None, None, None)
    return started


@pytest.mark.parametrize("name", sorted(RUNS))
def test_model_discovery_is_bounded(calls, name: str) -> None:
    """Without --model the plugin lists /models first: it gives up within the deadline, asking for --model."""
    call = calls[name, "model discovery"]
    assert isinstance(call.error, pytest.UsageError) and "pass --model" in str(call.error), repr(call.error)
    assert OBSERVED.search(str(call.error)), str(call.error)
    assert call.took < DEADLINE + SLACK, f"{call.took:.1f}s"


@pytest.mark.parametrize("path", sorted(SDK_CALLS))
@pytest.mark.parametrize("name", sorted(RUNS))
def test_sdk_calls_are_bounded(calls, name: str, path: str) -> None:
    """Each SDK call fails within the deadline, saying what it saw, counts as a stall, and its thread stops
    reading: `bounded` stops waiting at deadline + 2 s, but a thread still reading a dripping or endless body
    would go on for ever (an endless non-streamed body into memory)."""
    from wirecheck.suites.registry import CheckFailed

    call = calls[name, path]
    assert not call.thread.is_alive(), "the call itself never returned"
    assert isinstance(call.error, CheckFailed), repr(call.error)
    assert OBSERVED.search(str(call.error)), str(call.error)
    assert call.took < DEADLINE + SLACK, f"{call.took:.1f}s"
    assert call.target.stalls == 1, "a call that ran out of time counts toward the target's stalls"
    assert not call.reading, "the SDK call's thread is still reading"


def _raw_target(url: str) -> Target:
    return Target(base_url=url, api_key=None, profile=load_profile("openai"), model="m", embedding_model="m",
                  deadline=DEADLINE)


def test_a_dripped_status_line_is_bounded() -> None:
    """Before the headers are complete there is no response to close, and a byte every 0.2 s keeps each read
    inside httpx's timeout: the raw path (model discovery included) still ends at the deadline, and its client
    works afterwards."""
    from wirecheck.suites.plugin import _first_model
    from wirecheck.suites.wire import Wire

    with HostileServer("drip-head", 0.2) as url:
        target = _raw_target(url)
        wire = Wire(target)
        try:
            exchanges = [wire.get("models"), wire.post("chat/completions", {"model": "m", "messages": []})]
        finally:
            wire.close()
        took, exc = _timed(lambda: _first_model(url, None, load_profile("openai"), DEADLINE))
    for ex in exchanges:
        assert ex.timed_out and not ex.error and ex.elapsed < DEADLINE + 0.5, (ex.describe(), ex.elapsed)
        assert "no complete response within the deadline" in ex.describe()
    assert target.stalls == 2
    assert isinstance(exc, pytest.UsageError) and took < DEADLINE + 0.5, (exc, took)


def _timed(fn):
    start = time.monotonic()
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - returned for the test to judge
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


def test_an_endless_body_is_read_only_up_to_the_cap() -> None:
    """The raw path reads at most MAX_BODY of an endless body, and reports it as cut off, not as an answer."""
    from wirecheck.suites.wire import Wire

    with HostileServer("endless") as url:
        target = _raw_target(url)
        wire = Wire(target)
        try:
            ex = wire.post("chat/completions", {"model": "m", "messages": [], "stream": True})
        finally:
            wire.close()
    assert ex.too_large and len(ex.body) <= MAX_BODY + 1024 * 1024, len(ex.body)
    assert "without ending" in ex.describe() and ex.error and target.stalls == 1
