"""Locust's distributed mode, wired for exact records: what the master and a remote worker say to each other.

Everything goes over locust's own master/worker channel (``register_message`` / ``send_message``); a
worker needs nothing from the master's disk.

  worker -> master  wc_ping  {t1}                       clock exchange (load/clock.py), 10 at start, then 1/s
  master -> worker  wc_pong  {t1, t2, t3}
  master -> worker  wc_plan  {plan, t0_ns, share, shares} at the master's test start (before its spawn
                                                        messages, so before any user runs); late joiners on connect
  worker -> master  wc_batch {worker, host, index, records, health, clock, final}   at least once a second
  master -> worker  wc_stop  {}                         the run is over: stop users, send the final batch
  master -> worker  wc_bye   {more}                     whether another run (a rate-search probe) follows

The master writes each worker's batches, moved onto its own clock (load/merge.py), to the same
``parts/`` files the single-machine path writes, so the report pools every raw sample the same way.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent

from .clock import Exchange, estimate
from .merge import health_on_master_clock, records_on_master_clock, worker_status

FLUSH_S = 1.0           # a worker that dies loses at most this much of its records
SYNC_BURST = 10         # quick exchanges at start, so the first estimate is already tight
SYNC_EVERY_S = 1.0      # then one a second: follows drift, and a quiet moment gives a low round trip
FINAL_WAIT_S = 15.0     # past the stop timeout, how long the master waits for workers' last batches
MORE_RUNS_EXIT = 10     # a worker's exit code when the master said another run follows


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


class WorkerLink:
    """Remote worker side. ``now`` is this process's clock (epoch ns); ``on_plan(plan_json, t0_ns, share, shares)``
    installs the plan."""

    def __init__(self, environment: Any, worker: str, now: Callable[[], int],
                 on_plan: Callable[[str, int, int | None, int], None]) -> None:
        self.env, self.runner, self.worker, self.now, self.on_plan = environment, environment.runner, worker, now, on_plan
        self.exchanges: list[Exchange] = []
        self.records: list[dict] = []
        self.health: list[dict] = []
        self.finished = False
        self.flushing: gevent.Greenlet | None = None
        r = self.runner
        r.register_message("wc_pong", self._pong)
        r.register_message("wc_plan", self._plan)
        r.register_message("wc_stop", self._stop)
        r.register_message("wc_bye", self._bye)
        self.greenlets = [gevent.spawn(self._sync)]

    def clock(self) -> dict | None:
        est = estimate(self.exchanges)
        return est.as_json() if est else None

    def offset_ns(self) -> int:
        est = estimate(self.exchanges)
        return est.offset_ns if est else 0

    def _sync(self) -> None:
        n = 0
        while True:
            self.runner.send_message("wc_ping", {"t1": self.now()})
            n += 1
            gevent.sleep(0.05 if n < SYNC_BURST else SYNC_EVERY_S)

    def _pong(self, environment: Any, msg: Any, **_: Any) -> None:
        t4 = self.now()
        d = msg.data
        self.exchanges.append(Exchange(d["t1"], d["t2"], d["t3"], t4))
        del self.exchanges[:-200]

    def _plan(self, environment: Any, msg: Any, **_: Any) -> None:
        d = msg.data
        self.on_plan(d["plan"], d["t0_ns"], d["share"], d["shares"])
        if self.flushing is None:
            self.flushing = gevent.spawn(self._flush_loop)
            self.greenlets.append(self.flushing)

    def _flush_loop(self) -> None:
        while not self.finished:
            gevent.sleep(FLUSH_S)
            self.flush()

    def flush(self, final: bool = False) -> None:
        if self.finished:
            return
        records, self.records = self.records, []
        health, self.health = self.health, []
        self.finished = final
        self.runner.send_message("wc_batch", {"worker": self.worker, "host": socket.gethostname(),
                                              "index": getattr(self.runner, "worker_index", None),
                                              "records": records, "health": health, "clock": self.clock(),
                                              "final": final})

    def _stop(self, environment: Any, msg: Any, **_: Any) -> None:
        # Not in the receive loop: stopping waits for in-flight requests (the stop timeout).
        def stop() -> None:
            self.runner.stop()
            self.flush(final=True)
        gevent.spawn(stop)

    def _bye(self, environment: Any, msg: Any, **_: Any) -> None:
        self.env.process_exit_code = MORE_RUNS_EXIT if msg.data.get("more") else 0


class Collector:
    """Master side: answers clock pings, hands out the plan and schedule shares, writes workers' batches to
    ``parts/`` on the master's clock, and records how each worker ended."""

    def __init__(self, environment: Any, plan_json: str, out_dir: str, more_runs: bool,
                 now: Callable[[], int]) -> None:
        self.env, self.runner, self.plan_json, self.now, self.more_runs = (environment, environment.runner, plan_json,
                                                                          now, more_runs)
        self.parts = Path(out_dir) / "parts"
        self.parts.mkdir(parents=True, exist_ok=True)
        self.t0: int | None = None
        self.meta: dict[str, dict] = {}   # locust client id -> worker metadata (parts/worker-*.json)
        self.files: dict[str, tuple[Any, Any]] = {}
        r = self.runner
        r.register_message("wc_ping", self._ping)
        r.register_message("wc_batch", self._batch)
        environment.events.worker_connect.add_listener(self._connect)
        self.watcher: gevent.Greenlet | None = None
        self.finishing = False

    def _ping(self, environment: Any, msg: Any, **_: Any) -> None:
        t2 = self.now()
        self.runner.send_message("wc_pong", {"t1": msg.data["t1"], "t2": t2, "t3": self.now()}, client_id=msg.node_id)

    def _live(self) -> list[str]:
        c = self.runner.clients
        return sorted(n.id for n in c.ready + c.spawning + c.running)

    def start(self) -> None:
        """At the master's test start, before its spawn messages: the plan, and each worker's share."""
        self.t0 = self.now()
        ids = self._live()
        for k, cid in enumerate(ids):
            self._send_plan(cid, k, len(ids))
        self.watcher = gevent.spawn(self._watch)

    def _send_plan(self, cid: str, share: int | None, shares: int) -> None:
        self.meta.setdefault(cid, {"client_id": cid, "share": share, "shares": shares, "status": "running",
                                   "finished": False, "records": 0})
        self.runner.send_message("wc_plan", {"plan": self.plan_json, "t0_ns": self.t0, "share": share,
                                             "shares": shares}, client_id=cid)

    def _connect(self, client_id: str, **_: Any) -> None:
        if self.t0 is not None and client_id not in self.meta:  # joined mid-run: closed-loop users only
            self._send_plan(client_id, None, 0)

    def _batch(self, environment: Any, msg: Any, **_: Any) -> None:
        d = msg.data
        meta = self.meta.setdefault(msg.node_id, {"client_id": msg.node_id, "share": None, "shares": 0,
                                                  "status": "running", "finished": False, "records": 0})
        offset = (d.get("clock") or {}).get("offset_ns") or 0
        if msg.node_id not in self.files:
            name = _safe(d["worker"])
            self.files[msg.node_id] = (open(self.parts / f"requests-{name}.jsonl", "a", buffering=1),
                                       open(self.parts / f"health-{name}.jsonl", "a", buffering=1))
        req_f, health_f = self.files[msg.node_id]
        for r in records_on_master_clock(d["records"], offset):
            req_f.write(json.dumps(r, separators=(",", ":")) + "\n")
        for h in health_on_master_clock(d["health"], offset):
            health_f.write(json.dumps(h, separators=(",", ":")) + "\n")
        meta.update(worker=d["worker"], host=d["host"], index=d["index"], clock=d.get("clock"),
                    records=meta["records"] + len(d["records"]), last_batch_ns=self.now())
        if d.get("final"):
            meta.update(finished=True, status="ok")
        self._write_meta(msg.node_id)

    def _write_meta(self, cid: str) -> None:
        meta = self.meta[cid]
        if "worker" not in meta:
            return  # no batch yet: nothing of it to report
        body = {**meta, "remote": True, "t0_ns": self.t0}
        (self.parts / f"worker-{_safe(meta['worker'])}.json").write_text(json.dumps(body))

    def _state(self, cid: str) -> str | None:
        node = self.runner.clients.get(cid)
        return node.state if node is not None else None

    def _watch(self) -> None:
        while True:
            gevent.sleep(1.0)
            for cid, meta in self.meta.items():
                if meta["finished"]:
                    continue
                status = "missing" if self._state(cid) == "missing" else "running"
                if status != meta["status"]:
                    meta["status"] = status
                    self._write_meta(cid)

    def finish(self) -> None:
        """At the master's test stop: have every worker stop and send its last batch, wait for them (not for
        workers locust reports missing), mark how each ended, and say whether another run follows."""
        if self.t0 is None or self.finishing:
            return
        self.finishing = True
        for cid in self._live():
            self.runner.send_message("wc_stop", {}, client_id=cid)
        deadline = time.monotonic() + (self.env.stop_timeout or 0) + FINAL_WAIT_S
        while time.monotonic() < deadline:
            waiting = [cid for cid, m in self.meta.items() if not m["finished"] and self._state(cid) not in
                       (None, "missing")]
            if not waiting:
                break
            gevent.sleep(0.1)
        if self.watcher is not None:
            self.watcher.kill(block=False)
        for cid, meta in self.meta.items():
            state = "missing" if meta["status"] == "missing" else self._state(cid)  # locust forgets the dead
            meta["status"] = worker_status(state, meta["finished"])
            self._write_meta(cid)
        for f in (f for pair in self.files.values() for f in pair):
            f.flush()
        for cid in self._live():
            self.runner.send_message("wc_bye", {"more": self.more_runs}, client_id=cid)
