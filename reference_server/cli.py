"""`wirecheck` command line. Subcommands register here; `serve` runs the reference server."""

from __future__ import annotations

import argparse
import logging
import sys

from .config import API_KEY_ENV, ServerConfig


def _serve_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the reference server (OpenAI-compatible, offline, local model)",
                       description="Serve an OpenAI-compatible API backed by a local transformers model.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port to bind; 0 picks a free one (default: %(default)s)")
    p.add_argument("--model", default="tiny",
                   help="'tiny' (the embedded default), a local Hugging Face causal-LM directory, or a hub id "
                        "where a hub is reachable (default: %(default)s)")
    p.add_argument("--served-model-name", default=None,
                   help="the id clients send as `model` (default: 'tiny' or the model directory's name)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="weights dtype; auto = float32 on CPU, bfloat16 (or float16) on CUDA (default: %(default)s)")
    p.add_argument("--api-key", action="append", default=[], metavar="KEY",
                   help=f"require this Bearer key; repeat for several. Also read from ${API_KEY_ENV} "
                        "(comma-separated). Without any, no auth is required.")
    p.add_argument("--max-body-bytes", type=int, default=ServerConfig.max_body_bytes,
                   help="larger request bodies get 413 (default: %(default)s)")
    p.add_argument("--max-messages", type=int, default=ServerConfig.max_messages,
                   help="most messages accepted in one chat request (default: %(default)s)")
    p.add_argument("--max-tokens-limit", type=int, default=None,
                   help="cap on max_tokens a request may ask for (default: what the context window leaves)")
    p.add_argument("--max-batch-rows", type=int, default=ServerConfig.max_batch_rows,
                   help="sequences decoded together; more requests wait (default: %(default)s)")
    p.add_argument("--profile", default=None, metavar="VENDOR",
                   help="emulate a vendor's API from spec/profiles: hoonify, hontoni, hoziron or compactifai (its "
                        "auth scheme, paths, model ids, headers and extensions, on the same engine). Without it, the "
                        "plain reference server")
    p.add_argument("--rate-limit", default="", metavar="NAME=N,...",
                   help="emulated rate limits per key, e.g. rpm=60,tpm=100000 (OpenAI's x-ratelimit-* headers "
                        "without --profile); a profile's own windows (hontoni: rpm, per_5h, daily, weekly, monthly, "
                        "concurrent) or plan=basic|standard|premium|ultimate. Past a limit: 429 with retry-after")
    p.add_argument("--balance", type=float, default=None, metavar="USD",
                   help="prepaid balance of the configured keys (--profile hontoni): charged per token at the "
                        "model's documented price; at or below 0 requests get 402 (default: unlimited)")
    p.add_argument("--new-account-balance", type=float, default=0.0, metavar="USD",
                   help="balance of accounts made through /api/auth/register (--profile hontoni) (default: 0, so "
                        "their keys get 402 until topped up at /api/billing/topup)")
    p.add_argument("--dry-pool", action="append", default=None, metavar="POOL",
                   help="a pool with no capacity (--profile hoonify), repeatable; 'none' for no dry pool "
                        "(default: the profile's, apac)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="(default: %(default)s)")
    p.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app

    from .vendors.limits import parse_limits

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    dry = None if args.dry_pool is None else [p for p in args.dry_pool if p != "none"]
    try:
        config = ServerConfig(
            model=args.model, served_model_name=args.served_model_name, device=args.device, dtype=args.dtype,
            api_keys=args.api_key + ServerConfig.keys_from_env(), max_body_bytes=args.max_body_bytes,
            max_messages=args.max_messages, max_tokens_limit=args.max_tokens_limit,
            max_batch_rows=args.max_batch_rows, profile=args.profile, rate_limit=parse_limits(args.rate_limit),
            balance=args.balance, new_account_balance=args.new_account_balance, dry_pools=dry,
        )
        app = create_app(config)
    except ValueError as exc:
        print(f"wirecheck serve: {exc}", file=sys.stderr)
        return 2
    if config.profile:
        _announce(app.state.vendor)
    # Our own access log replaces uvicorn's; it never prints headers, so keys stay out of logs.
    uvicorn.run(app, host=args.host, port=args.port, access_log=False,
                log_level=args.log_level, timeout_graceful_shutdown=5)
    return 0


def _announce(vendor) -> None:
    """Say, once, what the emulation expects of clients (keys are never printed)."""
    p = vendor.profile
    base = p.base_path or "/"
    if vendor.keys:
        auth = f"{len(vendor.keys)} configured key(s)"
    elif p.auth_required:
        auth = f"any key starting {p.key_prefix!r}" if p.key_prefix else "any non-empty key"
    else:
        auth = "no key (auth disabled)"
    print(f"wirecheck serve: emulating {p.name} under {base} ({', '.join(p.surfaces)}); accepts {auth}; "
          f"models {', '.join(p.models[:3])}{' ...' if len(p.models) > 3 else ''}", file=sys.stderr, flush=True)


def _proxy_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("proxy", help="forward to an endpoint and apply one wire fault (test clients and checks)",
                       description="Forward every request to --upstream and apply one fault of the catalogue "
                                   "(fixtures/faults) on the way. Requests to /fault/<name>/v1/... get fault <name> "
                                   "instead, so one proxy serves every fault.")
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
    p.set_defaults(run=_proxy)


def _proxy(args: argparse.Namespace) -> int:
    from .faults import get_fault, load_faults

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

    from .faults.proxy import create_app

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(f"wirecheck proxy: {args.host}:{args.port} -> {args.upstream}, fault {args.fault} "
          f"(or /fault/<name>/v1/... per request)", file=sys.stderr, flush=True)
    uvicorn.run(create_app(args.upstream, args.fault, upstream_key=args.upstream_api_key), host=args.host,
                port=args.port, access_log=False, log_level=args.log_level, timeout_graceful_shutdown=1)
    return 0


def _lint_parser(sub: argparse._SubParsersAction) -> None:
    from suites.lint import DESCRIPTION, configure  # light: the checks load only when it runs

    p = sub.add_parser("lint-stream", help="judge a captured SSE body offline with the suites' stream checks",
                       description=DESCRIPTION)
    configure(p)


def _load_parser(sub: argparse._SubParsersAction) -> None:
    from load.command import __doc__ as doc, configure, run  # light: locust itself runs in child processes

    p = sub.add_parser("load", help="measure streaming latency and throughput of a target with locust",
                       description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    configure(p)
    p.set_defaults(run=run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wirecheck", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _lint_parser(sub)
    _proxy_parser(sub)
    _load_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
