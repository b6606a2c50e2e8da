"""Launch locust headless for one plan, show progress while it runs, then analyse what it wrote."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from .analysis import analyse
from .outputs import read_parts, write_run
from .plan import PLAN_ENV, ROLE_ENV, Plan
from .sweep import SLO

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
GRACE_S = 30.0  # how long in-flight requests may finish after the last stage
WORKERS_WAIT_S = 120  # distributed: how long the master waits for --expect-workers to connect


def locust_command(plan: Plan) -> list[str]:
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", plan.target,
           "--only-summary", "--loglevel", "WARNING", "--stop-timeout", str(int(min(plan.request_timeout_s, GRACE_S))),
           "--exit-code-on-error", "0"]
    if plan.distributed:
        cmd += ["--master", "--expect-workers", str(plan.workers), "--expect-workers-max-wait", str(WORKERS_WAIT_S),
                "--master-bind-host", plan.master_bind_host, "--master-bind-port", str(plan.master_bind_port)]
    elif plan.workers > 1:
        cmd += ["--processes", str(plan.workers)]
    return cmd


class Progress:
    """Counts finished requests from the parts files as they grow; prints one line per second on a
    terminal, one every 5 s otherwise."""

    def __init__(self, plan: Plan, quiet: bool) -> None:
        self.plan, self.quiet = plan, quiet
        self.tty = sys.stderr.isatty()
        self.sizes: dict[Path, int] = {}
        self.done = self.errors = 0
        self.start = time.monotonic()
        self.last_print = 0.0

    def poll(self) -> None:
        for path in (Path(self.plan.out_dir) / "parts").glob("requests-*.jsonl"):
            size = path.stat().st_size
            old = self.sizes.get(path, 0)
            if size > old:
                with path.open("rb") as f:
                    f.seek(old)
                    chunk = f.read(size - old)
                complete = chunk.rfind(b"\n") + 1  # count whole lines only
                self.done += chunk[:complete].count(b"\n")
                self.errors += chunk[:complete].count(b'"ok":false')
                self.sizes[path] = old + complete
        if self.quiet:
            return
        now = time.monotonic()
        if now - self.last_print < (1.0 if self.tty else 5.0):
            return
        self.last_print = now
        t = now - self.start
        i = self.plan.stage_at(t)
        line = (f"  stage {i + 1}/{len(self.plan.stages)} [{self.plan.stages[i].label}] "
                f"{min(t, self.plan.total_s):5.0f}/{self.plan.total_s:.0f}s  requests {self.done}  errors {self.errors}")
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def finish(self) -> None:
        if self.tty and not self.quiet:
            print(file=sys.stderr)


def run_locust(plan: Plan, out_dir: Path, quiet: bool = False) -> None:
    plan_path = out_dir / "plan.json"
    plan_path.write_text(plan.to_json())
    env = {**os.environ, PLAN_ENV: str(plan_path.resolve()), "PYTHONUNBUFFERED": "1",
           ROLE_ENV: "master" if plan.distributed else "local"}
    log = (out_dir / "locust.log").open("wb")
    progress = Progress(plan, quiet)
    proc = subprocess.Popen(locust_command(plan), env=env, stdout=log, stderr=subprocess.STDOUT)
    limit = time.monotonic() + plan.total_s + GRACE_S + 60 + (WORKERS_WAIT_S if plan.distributed else 0)
    try:
        while proc.poll() is None:
            progress.poll()
            if time.monotonic() > limit:
                proc.terminate()
                break
            time.sleep(0.25)
        proc.wait(timeout=30)
    except BaseException:
        proc.kill()
        raise
    finally:
        log.close()
        progress.finish()
    if proc.returncode not in (0, None):
        tail = (out_dir / "locust.log").read_text(errors="replace")[-3000:]
        hint = (f"\n(no {plan.workers} worker(s) connected to port {plan.master_bind_port} within {WORKERS_WAIT_S} s?)"
                if plan.distributed and "Gave up waiting for workers" in tail else "")
        raise RuntimeError(f"locust exited {proc.returncode}:\n{tail}{hint}")


def run_plan(plan: Plan, out_dir: Path, env: dict, slos: list[SLO], quiet: bool = False) -> dict:
    """Run locust for ``plan`` and write every output file; returns run.json's content."""
    run_locust(plan, out_dir, quiet)
    requests, health, workers = read_parts(out_dir)
    if not workers:
        tail = (out_dir / "locust.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"locust ran no user (see {out_dir / 'locust.log'}):\n{tail}")
    t0 = min(w["t0_ns"] for w in workers)
    run, series = analyse(plan, requests, health, t0, env, slos, workers)
    write_run(out_dir, run, series, requests, health)
    write_html(out_dir)
    return run


def write_html(out_dir: Path) -> Path | None:
    try:
        from .report_html import write_report
    except ImportError:  # the report module is optional while it is being built
        return None
    return write_report(out_dir)
