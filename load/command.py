"""`wirecheck load`: run a locust load profile against a target and write the run's report.

    wirecheck load [--target URL] --profile chat-stream --users 1,8,32 --duration 30s --out DIR
    wirecheck load --profile chat-stream --rate 2,4 --arrival poisson --duration 30s --out DIR
    wirecheck load --profile chat-stream --slo 'ttft_p99_ms<=500' --max-rate 32 --duration 20s --out DIR
    wirecheck load --master --expect-workers 3 --target URL --rate 20 --out DIR     (locust's distributed mode)
    wirecheck load --worker --master-host HOST                                      (on each load machine)

Locust runs headless in child processes (``--workers N`` forks N worker processes); this process
plans the stages, shows progress, then pools every worker's raw records and computes the figures.
Without --target it starts `wirecheck serve` (the tiny model) on a free loopback port.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import sys
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from .plan import Plan, Stage, parse_duration, parse_rates, parse_users
from .profiles import PROFILES, Profile, auth_headers, get_profile
from .runner import run_plan
from .search import rate_search
from .summary import print_summary
from .sweep import parse_slos

DESCRIPTION = __doc__
KEY_ENVS = ("WIRECHECK_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY")
# Distributed runs read these when the flag is not given (container recipes in docs/load.md).
ENV_ROLE, ENV_MASTER_HOST, ENV_MASTER_PORT = "WIRECHECK_ROLE", "WIRECHECK_MASTER_HOST", "WIRECHECK_MASTER_PORT"
ENV_EXPECT, ENV_BIND_HOST = "WIRECHECK_EXPECT_WORKERS", "WIRECHECK_MASTER_BIND_HOST"
ENV_IDLE = "WIRECHECK_WORKER_IDLE_S"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", metavar="URL", help="base URL, with or without /v1 (default: start `wirecheck serve` "
                                                    "with the tiny model on a free loopback port)")
    p.add_argument("--profile", default="chat-stream", choices=sorted(PROFILES), help="what each request is "
                                                                                      "(default: %(default)s)")
    load = p.add_mutually_exclusive_group()
    load.add_argument("--users", help="closed loop: concurrent users per stage, e.g. 1,8,32; or a linear ramp "
                                      "LOW-HIGH, e.g. 1-64 (default: 1,4,8)")
    load.add_argument("--rate", help="open loop: requests/s per stage (all workers together), e.g. 2 or 1,2,4")
    p.add_argument("--arrival", default="poisson", choices=["poisson", "constant"],
                   help="open-loop inter-arrival times (default: %(default)s)")
    p.add_argument("--slo", help="objectives, comma-separated, e.g. 'ttft_p99_ms<=500,tpot_p50_ms<=40'; with "
                                 "--max-rate, search for the highest rate meeting them")
    p.add_argument("--max-rate", type=float, help="rate search: highest rate to try (starts at --start-rate and "
                                                  "doubles, then bisects)")
    p.add_argument("--start-rate", type=float, default=1.0, help="rate search: first rate (default: %(default)s)")
    p.add_argument("--search-steps", type=int, default=3, help="rate search: bisections (default: %(default)s)")
    p.add_argument("--duration", default="30s", help="time per stage, e.g. 30s, 2m (default: %(default)s)")
    p.add_argument("--warmup", help="left out at the start of each stage (default: 10%% of it, at most 30s)")
    p.add_argument("--workers", type=int, default=1, help="locust worker processes (default: %(default)s)")
    p.add_argument("--model", help="model id (default: the target's first /v1/models entry)")
    p.add_argument("--api-key", help=f"key for the target (default: ${', $'.join(KEY_ENVS)})")
    p.add_argument("--input-tokens", type=int, default=64, help="prompt length, about (default: %(default)s)")
    p.add_argument("--output-tokens", type=int, default=64, help="max_tokens per request (default: %(default)s)")
    p.add_argument("--extra-body", default=None, metavar="JSON",
                   help="fields merged into every request, e.g. '{\"ignore_eos\": true}' (default: "
                        "'{\"min_tokens\": N}' for the embedded server, else none)")
    p.add_argument("--request-timeout", default="120s", help="per-request read deadline (default: %(default)s)")
    p.add_argument("--reader", default="exact", choices=["exact", "locust-iter-lines"],
                   help="stream read path; locust-iter-lines is a negative control that shows locust's "
                        "coalescing error (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="prompts and Poisson arrivals (default: %(default)s)")
    p.add_argument("--out", default="load-out", help="output folder (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    d = p.add_argument_group("distributed (locust's master/worker mode, workers on other machines)")
    role = d.add_mutually_exclusive_group()
    role.add_argument("--master", action="store_true", default=None,
                      help=f"run the plan with remote workers and write the report here (or ${ENV_ROLE}=master)")
    role.add_argument("--worker", action="store_true", default=None,
                      help=f"be a load generator for a --master; takes its plan from it (or ${ENV_ROLE}=worker)")
    d.add_argument("--expect-workers", type=int, default=_env_int(ENV_EXPECT, 1),
                   help=f"master: start once this many workers joined; open-loop rates are split among them "
                        f"(default: ${ENV_EXPECT} or 1)")
    d.add_argument("--master-bind-host", default=os.environ.get(ENV_BIND_HOST, "*"),
                   help=f"master: interface to listen on (default: ${ENV_BIND_HOST} or all)")
    d.add_argument("--master-bind-port", type=int, default=_env_int(ENV_MASTER_PORT, 5557),
                   help=f"master: port to listen on (default: ${ENV_MASTER_PORT} or 5557)")
    d.add_argument("--master-host", default=os.environ.get(ENV_MASTER_HOST),
                   help=f"worker: the master's address (default: ${ENV_MASTER_HOST})")
    d.add_argument("--master-port", type=int, default=_env_int(ENV_MASTER_PORT, 5557),
                   help=f"worker: the master's port (default: ${ENV_MASTER_PORT} or 5557)")
    d.add_argument("--worker-idle", type=float, default=_env_float(ENV_IDLE, 30.0),
                   help=f"worker: after a rate-search probe, how long to wait for the next one's master "
                        f"(default: ${ENV_IDLE} or 30 s)")


def _env_int(name: str, default: int) -> int | str:
    return os.environ.get(name) or default  # argparse applies type=int to a string default: bad values exit 2


def _env_float(name: str, default: float) -> float | str:
    return os.environ.get(name) or default


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except ValueError as exc:
        print(f"wirecheck load: {exc}", file=sys.stderr)
        return 2


def run_load(argv: list[str]) -> int:
    """The CLI as a function (benchmarks call it)."""
    parser = argparse.ArgumentParser(prog="wirecheck load")
    configure(parser)
    return run(parser.parse_args(argv))


def role(args: argparse.Namespace) -> str:
    """local, master or worker: the flags, else $WIRECHECK_ROLE."""
    if args.master:
        return "master"
    if args.worker:
        return "worker"
    env = os.environ.get(ENV_ROLE, "").strip().lower()
    if env and env not in ("master", "worker", "local"):
        raise ValueError(f"${ENV_ROLE} must be master or worker, not {env!r}")
    return env or "local"


def check_distributed(args: argparse.Namespace, mode: str) -> None:
    for name in ("master_bind_port", "master_port"):
        if not 1 <= getattr(args, name) <= 65535:
            raise ValueError(f"--{name.replace('_', '-')} must be a port, 1..65535")
    if mode == "worker":
        if not args.master_host:
            raise ValueError(f"--worker needs --master-host (or ${ENV_MASTER_HOST})")
        given = [f"--{k.replace('_', '-')}" for k in ("target", "users", "rate", "slo", "max_rate", "model", "api_key",
                                                       "extra_body") if getattr(args, k) is not None]
        if args.workers != 1:
            given.append("--workers")
        if given:
            raise ValueError(f"a --worker takes its whole plan from the master: drop {', '.join(given)}")
    elif mode == "master":
        if args.expect_workers < 1:
            raise ValueError("--expect-workers must be >= 1")
        if args.workers != 1:
            raise ValueError("--master runs its users on remote workers: use --expect-workers, not --workers")
    if args.worker_idle <= 0:
        raise ValueError("--worker-idle must be > 0")


def _run(args: argparse.Namespace) -> int:
    mode = role(args)
    check_distributed(args, mode)
    if mode == "worker":
        from .remote_worker import run_worker
        return run_worker(args.master_host, args.master_port, args.worker_idle, quiet=args.quiet)
    duration = parse_duration(args.duration)
    if args.workers < 1:
        raise ValueError("--workers must be >= 1")
    slos = parse_slos(args.slo) if args.slo else []
    if args.max_rate is not None and not slos:
        raise ValueError("--max-rate searches for the highest rate meeting --slo; give --slo too")
    if args.max_rate is not None and (args.rate or args.users):
        raise ValueError("a rate search (--max-rate) chooses its own rates: drop --rate/--users")
    profile = get_profile(args.profile)
    out_dir = Path(args.out)
    if out_dir.exists():
        shutil.rmtree(out_dir / "parts", ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    api_key = args.api_key or next((os.environ[k] for k in KEY_ENVS if os.environ.get(k)), None)
    server = None
    if args.target:
        from wirecheck.suites.target import normalise_base_url
        root, note = normalise_base_url(args.target)
        if note:
            print(f"wirecheck load: {note}", file=sys.stderr)
    else:
        from wirecheck.suites.serve import ReferenceServer
        server = ReferenceServer()
        print(f"wirecheck load: starting `wirecheck serve` (tiny) on {server.base_url}", file=sys.stderr)
        server.wait_ready()
        root = server.base_url + "/v1"
    try:
        model = args.model or resolve_model(root, profile, api_key)
        extra = json.loads(args.extra_body) if args.extra_body else {}
        if not isinstance(extra, dict):
            raise ValueError("--extra-body must be a JSON object")
        if args.extra_body is None and server is not None and profile.path in ("/v1/chat/completions",
                                                                               "/v1/completions"):
            extra = {"min_tokens": args.output_tokens}  # the reference server honours it: fixed output length
        base = Plan(target=root.removesuffix("/v1"), profile=args.profile, model=model, stages=(Stage(duration, users=1),),
                    out_dir=str(out_dir.resolve()), arrival=args.arrival, workers=args.workers, api_key=api_key,
                    input_tokens=args.input_tokens, output_tokens=args.output_tokens, extra_body=extra,
                    reader=args.reader, request_timeout_s=parse_duration(args.request_timeout), seed=args.seed,
                    distributed=mode == "master", master_bind_host=args.master_bind_host,
                    master_bind_port=args.master_bind_port)
        if mode == "master":
            base = replace(base, workers=args.expect_workers)
        warm = parse_duration(args.warmup) if args.warmup else min(0.1 * duration, 30.0)
        env = environment(root)
        if args.max_rate is not None:
            run_json = rate_search(base, duration, warm, slos, env, start=args.start_rate, max_rate=args.max_rate,
                                   steps=args.search_steps, quiet=args.quiet)
        else:
            stages = (parse_rates(args.rate, duration) if args.rate
                      else parse_users(args.users or "1,4,8", duration))
            plan = replace(base, stages=stages, warmup_s=warm)
            run_json = run_plan(plan, out_dir, env, slos, quiet=args.quiet)
    finally:
        if server is not None:
            server.stop()
    print_summary(run_json, out_dir)
    if not any(s["requests"]["ok"] for s in run_json["stages"]):
        return 3
    if slos and args.max_rate is None and not all(all((s["slo"] or {}).values()) for s in run_json["stages"]):
        return 1
    return 0


def resolve_model(root: str, profile: Profile, api_key: str | None) -> str:
    """The target's first listed model, asked the way the profile authenticates (x-api-key and
    anthropic-version for messages, so api.anthropic.com answers too)."""
    headers = auth_headers(profile, api_key)
    try:
        r = httpx.get(root + "/models", headers=headers, timeout=15)
        data = r.json().get("data") if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        data = None
    if not data:
        raise ValueError(f"could not list models at {root}/models; pass --model")
    return data[0]["id"]


def environment(root: str) -> dict:
    return {"wirecheck": _version("wirecheck"), "locust": _version("locust"), "python": platform.python_version(),
            "cpus": os.cpu_count(), "cpu_model": _cpu_model(), "platform": platform.platform(),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rtt_ms": connect_rtt(root)}


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def connect_rtt(root: str, probes: int = 10) -> dict | None:
    """TCP handshake times to the target: the floor under every TTFT it reports."""
    parts = urlsplit(root)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    times = []
    for _ in range(probes):
        start = time.perf_counter()
        try:
            with socket.create_connection((parts.hostname, port), timeout=5):
                times.append((time.perf_counter() - start) * 1000)
        except OSError:
            return None
    times.sort()
    return {"p50": times[len(times) // 2], "min": times[0], "max": times[-1]}
