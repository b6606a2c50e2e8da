"""The locust side of `wirecheck load`: users, the stage shape and the per-process recorders.

Started by `wirecheck load` as ``locust -f <this file> --headless ...`` (and ``--processes N`` for
several worker processes); it reads the run's :class:`~load.plan.Plan` from ``WIRECHECK_LOAD_PLAN``.
Every process that runs users writes its own ``parts/requests-<pid>.jsonl`` and
``parts/health-<pid>.jsonl`` in the output folder; `wirecheck load` merges them afterwards, so raw
samples from all workers are pooled and nothing is averaged.

Distributed (``WIRECHECK_ROLE`` master or worker, locust ``--master`` / ``--worker``): a worker on
another machine has no plan file and no output folder. It gets the plan from the master and sends its
records back in batches over locust's messaging; the master writes them to the same parts files
(load/distributed.py).

Locust's defaults are wrong for streaming (research/load.md 2.5, 3.1), so:
* :class:`StreamUser` uses ``HttpUser`` and reads with urllib3's ``read1`` (one recv, no buffering),
  stamping perf_counter_ns per read (load/timing.py), with ``Accept-Encoding: identity``;
* the duration locust itself records is overridden with E2EL (its default for stream=True is the
  time to headers); our own records, not locust's bucketed histograms, feed the report;
* :class:`IterLinesUser` is the negative control only: ``FastHttpSession.iter_lines`` as locust users
  commonly write it. bench_accuracy shows how wrong it is.
"""

from __future__ import annotations

import locust  # noqa: I001  — must come first: it monkey-patches the stdlib for gevent
from locust import FastHttpUser, HttpUser, LoadTestShape, events, task
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import gevent.local
import psutil

from wirecheck.load.distributed import Collector, WorkerLink
from wirecheck.load.pacer import Pacer, share_offsets
from wirecheck.load.plan import PLAN_ENV, ROLE_ENV, Plan
from wirecheck.load.profiles import auth_headers, get_profile, request_body
from wirecheck.load.records import body_record, failed_record, stream_record
from wirecheck.load.timing import feed_timed, read_timed

ROLE = os.environ.get(ROLE_ENV, "local")  # local | master | worker (a remote worker: its plan comes by message)
PLAN: Plan = Plan.load(os.environ[PLAN_ENV]) if ROLE != "worker" else None  # type: ignore[assignment]


class _Wire(gevent.local.local):
    first: int | None = None


WIRE = _Wire()  # per greenlet: when the current request's first byte went to the socket


def _stamp_first_send() -> None:
    """Wrap urllib3's connection connect and send (what requests, hence HttpUser, goes through) to stamp when
    each request reached the network: its new connection's start, else its first write."""
    import urllib3.connection

    cls = urllib3.connection.HTTPConnection
    for name in ("connect", "send"):
        original = getattr(cls, name)

        def stamped(self, *args, _original=original, **kwargs):  # type: ignore[no-untyped-def]
            if WIRE.first is None:
                WIRE.first = time.perf_counter_ns()
            return _original(self, *args, **kwargs)

        setattr(cls, name, stamped)


_stamp_first_send()
PROFILE = get_profile(PLAN.profile) if PLAN else None
HEADERS = auth_headers(PROFILE, PLAN.api_key) if PLAN else {}
TICK_S = 0.010  # event-loop lag probe period


class _State:
    """Per-process run state, set when this process starts running users."""

    def __init__(self) -> None:
        self.t0: int | None = None          # perf ns at this process's start of the schedule
        self.epoch = time.time_ns() - time.perf_counter_ns()
        self.worker = ""                    # host:pid, set after locust forked its worker processes
        self.pacer: Pacer | None = None
        self.count = 0
        self.index_base = 0
        self.in_flight = 0
        self.lag: list[float] = []
        self.requests_file: Any = None
        self.health_file: Any = None
        self.greenlets: list[gevent.Greenlet] = []
        self.link: WorkerLink | None = None       # remote worker: the channel to the master
        self.collector: Collector | None = None   # distributed master
        self.master_t0: int | None = None         # remote worker: the run's start on the master's clock
        self.share: tuple[int | None, int] = (0, 1)
        self.ready = gevent.event.Event()

    def now(self) -> int:
        return time.perf_counter_ns() + self.epoch

    def next_index(self) -> int:
        self.count += 1
        return self.index_base + self.count

    def stage(self, t: int) -> int:
        return PLAN.stage_at((t - (self.t0 or t)) / 1e9)

    def write(self, record: dict) -> None:
        if self.link is not None:
            self.link.records.append(record)
        elif self.requests_file is not None:
            self.requests_file.write(json.dumps(record, separators=(",", ":")) + "\n")

    def write_health(self, line: dict) -> None:
        if self.link is not None:
            self.link.health.append(line)
        elif self.health_file is not None:
            self.health_file.write(json.dumps(line) + "\n")


STATE = _State()


def _start_process(environment: Any) -> None:
    if STATE.t0 is not None or PLAN is None:
        return
    runner = environment.runner
    index = getattr(runner, "worker_index", 0) or 0
    if STATE.link is not None:
        # The run starts at the master's t0, moved onto this clock: stages and schedule shares line up.
        STATE.t0 = STATE.master_t0 - STATE.link.offset_ns() - STATE.epoch  # type: ignore[operator]
        share, shares = STATE.share
    else:
        STATE.t0 = time.perf_counter_ns()
        STATE.epoch = time.time_ns() - time.perf_counter_ns()
        share, shares = index, max(1, PLAN.workers)
        parts = Path(PLAN.out_dir) / "parts"
        parts.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()
        (parts / f"worker-{pid}.json").write_text(json.dumps({"worker": STATE.worker, "t0_ns": STATE.t0 + STATE.epoch,
                                                              "index": index}))
        STATE.requests_file = open(parts / f"requests-{pid}.jsonl", "a", buffering=1)
        STATE.health_file = open(parts / f"health-{pid}.jsonl", "a", buffering=1)
    STATE.index_base = (share if share is not None else 100 + index) * 10_000_000
    if PLAN.mode == "rate":
        # Each worker paces its share of the rate; together they keep the total rate and its shape.
        rates, durations = [s.rate for s in PLAN.stages], [s.duration_s for s in PLAN.stages]
        offsets = share_offsets(rates, durations, PLAN.arrival, PLAN.seed, share, shares) if share is not None else []
        STATE.pacer = Pacer(offsets, STATE.t0)
    STATE.greenlets = [gevent.spawn(_lag_probe), gevent.spawn(_health_loop, environment)]
    STATE.ready.set()


def _install_plan(environment: Any, plan_json: str, t0_ns: int, share: int | None, shares: int) -> None:
    """Remote worker: the plan from the master (before its spawn message, or just after for a late joiner)."""
    global PLAN, PROFILE, HEADERS
    if PLAN is not None:
        return
    PLAN = Plan.from_json(plan_json)
    PROFILE = get_profile(PLAN.profile)
    HEADERS = auth_headers(PROFILE, PLAN.api_key)
    STATE.master_t0, STATE.share = t0_ns, (share, shares)
    if environment.runner.worker_state in ("spawning", "running"):
        _start_process(environment)


def _lag_probe() -> None:
    """How late a 10 ms sleep wakes up: the event loop's lag, which delays every timestamp."""
    while True:
        before = time.perf_counter()
        gevent.sleep(TICK_S)
        STATE.lag.append(max(0.0, (time.perf_counter() - before - TICK_S) * 1000))


def _health_loop(environment: Any) -> None:
    proc = psutil.Process()
    proc.cpu_percent(None)
    while True:
        gevent.sleep(1.0)
        lag, STATE.lag = STATE.lag, []
        line = {"worker": STATE.worker, "t_ns": time.perf_counter_ns() + STATE.epoch, "cpu_pct": proc.cpu_percent(None),
                "loop_lag_ms": [round(x, 3) for x in lag], "in_flight": STATE.in_flight,
                "users": environment.runner.user_count if environment.runner else None}
        STATE.write_health(line)


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    STATE.worker = f"{socket.gethostname()}:{os.getpid()}"
    if ROLE == "master" and isinstance(environment.runner, MasterRunner):
        STATE.collector = Collector(environment, PLAN.to_json(), PLAN.out_dir, PLAN.more_runs, STATE.now)
    elif ROLE == "worker" and isinstance(environment.runner, WorkerRunner):
        STATE.link = WorkerLink(environment, STATE.worker, STATE.now,
                                lambda *a: _install_plan(environment, *a))
        STATE.greenlets.append(gevent.spawn(_mark_ready_file))


def _mark_ready_file() -> None:
    """Tell the `wirecheck load --worker` wrapper this locust worker reached a master (it waits for that
    before deciding a rate search is over)."""
    path = os.environ.get("WIRECHECK_WORKER_READY_FILE")
    if path:
        Path(path).write_text("connected\n")


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, MasterRunner):
        if STATE.collector is not None:
            STATE.collector.start()
    else:
        STATE.worker = f"{socket.gethostname()}:{os.getpid()}"
        _start_process(environment)


@events.test_stop.add_listener
def _on_test_stop(environment: Any, **_: Any) -> None:
    if STATE.collector is not None and isinstance(environment.runner, MasterRunner):
        STATE.collector.finish()


@events.quitting.add_listener
def _on_quit(environment: Any, **_: Any) -> None:
    if STATE.link is not None:
        STATE.link.flush(final=True)  # a no-op after the master's stop already took the last batch
    for g in STATE.greenlets:
        g.kill(block=False)
    for f in (STATE.requests_file, STATE.health_file):
        if f is not None:
            f.flush()


def _wait_for_slot() -> int | None:
    """Open loop: sleep until this user's slot; returns the scheduled perf ns (None in closed loop)."""
    if STATE.t0 is None:
        STATE.ready.wait()  # a remote worker's users wait for the plan from the master
    if STATE.pacer is None:
        return None
    slot = STATE.pacer.claim()
    if slot is None:
        raise StopUser()  # the schedule is spent
    delay = (slot - time.perf_counter_ns()) / 1e9
    if delay > 0:
        gevent.sleep(delay)
    return slot


def _error_text(status: int, body: bytes) -> str:
    try:
        err = json.loads(body).get("error")
        message = err.get("message") if isinstance(err, dict) else err
    except (ValueError, AttributeError):
        message = body[:200].decode("utf-8", "replace")
    return f"{status}: {message}"


class _Common:
    """The parts both users share."""

    def _prepare(self) -> tuple[int | None, dict, int, int]:
        slot = _wait_for_slot()
        body = request_body(PROFILE, PLAN.model, STATE.next_index(), PLAN.input_tokens, PLAN.output_tokens,
                            PLAN.extra_body, PLAN.seed)
        t_send = time.perf_counter_ns()
        return slot, body, t_send, STATE.stage(t_send)

    @staticmethod
    def _lag(slot: int | None, t_send: int) -> int | None:
        return None if slot is None else t_send - slot


class StreamUser(_Common, HttpUser):
    """The measuring user: exact read path (see module docstring)."""

    @task
    def one_request(self) -> None:
        slot, body, t_decided, stage = self._prepare()
        common = {"profile": PLAN.profile, "stage": stage, "worker": STATE.worker,
                  "send_ns": t_decided + STATE.epoch, "lag_ns": self._lag(slot, t_decided),
                  "max_tokens": body.get("max_tokens") or body.get("max_output_tokens")}
        STATE.in_flight += 1
        headers_ns = None
        t_send = t_decided
        WIRE.first = None
        try:
            with self.client.post(PROFILE.path, json=body, headers=HEADERS, stream=True, catch_response=True,
                                  name=PLAN.profile, timeout=(10, PLAN.request_timeout_s)) as resp:
                # Times count from the request's first byte on the socket, not from when the client began
                # building it: requests' own preparation (~1-2 ms) is load-generator overhead, kept as prep_ns.
                if WIRE.first is not None:
                    t_send = WIRE.first
                    common.update(send_ns=t_send + STATE.epoch, prep_ns=t_send - t_decided)
                headers_ns = time.perf_counter_ns() - t_send
                status = resp.status_code or 0
                if status != 200:
                    record = failed_record(status=status, headers_ns=headers_ns if status else None,
                                           done_ns=time.perf_counter_ns() - t_send,
                                           error=_error_text(status, resp.content or b"") if status else
                                           f"transport: {getattr(resp, 'error', None)}", **common)
                else:
                    request_id = resp.headers.get("x-request-id") or resp.headers.get("request-id")
                    if PROFILE.stream:
                        timed = read_timed(resp.raw.read1, time.perf_counter_ns)
                        done_ns = time.perf_counter_ns() - t_send
                        parsed = PROFILE.parse_stream([(n, d) for _, n, d in timed.events])
                        record = stream_record(request_id=request_id, status=status, headers_ns=headers_ns,
                                               timed=timed, parsed=parsed, t_send=t_send, done_ns=done_ns,
                                               error=None, **common)
                    else:
                        content = resp.raw.read()
                        done_ns = time.perf_counter_ns() - t_send
                        try:
                            parsed = PROFILE.parse_body(json.loads(content))
                            error = None
                        except (ValueError, AttributeError) as exc:
                            parsed, error = None, f"body is not JSON: {exc}"
                        record = body_record(request_id=request_id, status=status, headers_ns=headers_ns,
                                             done_ns=done_ns, parsed=parsed, nbytes=len(content), error=error,
                                             **common)
                resp.request_meta["response_time"] = (record["last_token_ns"] or record["done_ns"]) / 1e6
                resp.request_meta["response_length"] = record["bytes"]
                if record["ok"]:
                    resp.success()
                else:
                    resp.failure(record["error"])
        except gevent.GreenletExit:
            STATE.write(failed_record(status=0, headers_ns=headers_ns, done_ns=time.perf_counter_ns() - t_send,
                                      error="cancelled: the run stopped mid-request", **common))
            raise
        except Exception as exc:  # noqa: BLE001 — a broken stream is a measured error, not a crash
            STATE.write(failed_record(status=0, headers_ns=headers_ns, done_ns=time.perf_counter_ns() - t_send,
                                      error=f"transport: {type(exc).__name__}: {exc}", **common))
            return
        finally:
            STATE.in_flight -= 1
        STATE.write(record)


class IterLinesUser(_Common, FastHttpUser):
    """Negative control: locust's FastHttpSession.iter_lines, each line stamped as it is yielded."""

    @task
    def one_request(self) -> None:
        slot, body, t_send, stage = self._prepare()
        common = {"profile": PLAN.profile, "stage": stage, "worker": STATE.worker, "send_ns": t_send + STATE.epoch,
                  "lag_ns": self._lag(slot, t_send), "max_tokens": body.get("max_tokens")}
        chunks: list[tuple[int, bytes]] = []
        try:
            for line in self.client.iter_lines(PROFILE.path, method="POST", json=body, headers=HEADERS):
                chunks.append((time.perf_counter_ns(), line.encode() + b"\n"))
        except Exception as exc:  # noqa: BLE001
            STATE.write(failed_record(status=0, headers_ns=None, done_ns=time.perf_counter_ns() - t_send,
                                      error=f"transport: {type(exc).__name__}: {exc}", **common))
            return
        timed = feed_timed(chunks)
        parsed = PROFILE.parse_stream([(n, d) for _, n, d in timed.events])
        STATE.write(stream_record(request_id=None, status=200, headers_ns=0, timed=timed, parsed=parsed,
                                  t_send=t_send, done_ns=time.perf_counter_ns() - t_send, error=None, **common))


# Exactly one user class is active: locust picks from those defined here unless told by name. A remote
# worker keeps both: the master's spawn messages name the one to run.
if PLAN is None:
    pass
elif PLAN.reader == "locust-iter-lines":
    StreamUser.weight = 0  # type: ignore[attr-defined]
    StreamUser.abstract = True
else:
    IterLinesUser.abstract = True


class StagesShape(LoadTestShape):
    """Users per stage (steps or a linear ramp); a fixed pool of idle users for open-loop stages."""

    def tick(self) -> tuple[int, float] | None:
        return PLAN.users_at(self.get_run_time()) if PLAN else None


__all__ = ["StreamUser", "IterLinesUser", "StagesShape", "locust"]
