"""`wirecheck proxy`: forward to any endpoint and apply catalogued wire faults (base install, no torch)."""

from __future__ import annotations

import argparse
import logging
import sys


DESCRIPTION = ("Forward every request to --upstream and apply one fault of the catalogue (wirecheck.fixtures/faults) "
               "on the way. Requests to /fault/<name>/v1/... get fault <name> instead, so one proxy serves every fault.")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--upstream", required=False, metavar="URL", help="the endpoint to forward to (with or without /v1)")
    p.add_argument("--fault", default="none", help="fault to apply to every request; 'none' = transparent "
                                                    "(default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    p.add_argument("--port", type=int, default=8001, help="port to bind (default: %(default)s)")
    p.add_argument("--upstream-api-key", default=None, metavar="KEY",
                   help="key the `auth-ignored` fault sends upstream in place of the client's")
    p.add_argument("--list", action="store_true", help="list the faults and the checks that must catch them, then exit")
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"],
                   help="(default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from . import get_fault, load_faults

    faults = load_faults()
    if args.list:
        for f in faults.values():
            print(f"{f.name:28} {f.surface:12} {', '.join(f.checks) or '(benign control)'}")
        return 0
    if not args.upstream:
        print("wirecheck proxy: --upstream URL is required", file=sys.stderr)
        return 2
    try:
        get_fault(args.fault, faults)
    except ValueError as exc:
        print(f"wirecheck proxy: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    from .proxy import create_app

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(f"wirecheck proxy: {args.host}:{args.port} -> {args.upstream}, fault {args.fault} "
          f"(or /fault/<name>/v1/... per request)", file=sys.stderr, flush=True)
    uvicorn.run(create_app(args.upstream, args.fault, upstream_key=args.upstream_api_key), host=args.host,
                port=args.port, access_log=False, log_level=args.log_level, timeout_graceful_shutdown=1)
    return 0
