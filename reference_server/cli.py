"""`wirecheck serve`: its options and the run that serves the reference server (needs the `server` extra)."""

from __future__ import annotations

import argparse
import logging
import sys

from .config import API_KEY_ENV, ServerConfig


DESCRIPTION = "Serve an OpenAI-compatible API backed by a local transformers model."


def configure(p: argparse.ArgumentParser) -> None:
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
    p.add_argument("--speech-model", default=ServerConfig.speech_model, metavar="DIR",
                   help="speech-to-text model for /v1/audio/transcriptions: tiny-whisper (embedded) or a local "
                        "Whisper directory (default: %(default)s)")
    p.add_argument("--max-audio-bytes", type=int, default=ServerConfig.max_audio_bytes,
                   help="largest audio upload accepted; larger is a 413 (default: %(default)s)")
    p.add_argument("--max-audio-seconds", type=float, default=ServerConfig.max_audio_seconds,
                   help="longest audio transcribed; longer is a 400 (default: %(default)s)")
    p.add_argument("--engine", default=ServerConfig.engine, choices=["process", "thread"],
                   help="where generation runs: its own process, in parallel with HTTP, or a thread of the server "
                        "process (default: %(default)s)")
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
    p.add_argument("--allow-image-fetch", action="store_true",
                   help="fetch http(s) image_url parts of chat requests (public addresses only, re-checked on every "
                        "redirect); without it only data: URLs are accepted (docs/media.md)")
    p.add_argument("--image-fetch-allow-cidr", action="append", default=[], metavar="CIDR", type=_cidr,
                   help="with --allow-image-fetch, also fetch from this private or loopback network (e.g. an "
                        "internal image store, 10.1.2.0/24); repeatable")
    p.add_argument("--max-image-bytes", type=int, default=ServerConfig.max_image_bytes,
                   help="largest image accepted, inline or fetched (default: %(default)s)")
    p.add_argument("--image-fetch-timeout", type=float, default=ServerConfig.image_fetch_timeout_s, metavar="SECONDS",
                   help="deadline for one image fetch, redirects included (default: %(default)s)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="(default: %(default)s)")


def _cidr(text: str) -> str:
    """Checked when the flags are parsed, so a typo stops the server at startup with argparse's usage line."""
    from .media_source import parse_cidr

    try:
        return str(parse_cidr(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    from wirecheck.extras import requirement_message

    if message := requirement_message("wirecheck serve", "server"):
        print(message, file=sys.stderr)
        return 2
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
            max_batch_rows=args.max_batch_rows, engine=args.engine, speech_model=args.speech_model,
            max_audio_bytes=args.max_audio_bytes, max_audio_seconds=args.max_audio_seconds, profile=args.profile,
            rate_limit=parse_limits(args.rate_limit),
            balance=args.balance, new_account_balance=args.new_account_balance, dry_pools=dry,
            allow_image_fetch=args.allow_image_fetch, image_fetch_allow_cidrs=args.image_fetch_allow_cidr,
            max_image_bytes=args.max_image_bytes, image_fetch_timeout_s=args.image_fetch_timeout,
        )
        config.fetch_policy()  # limits and CIDRs checked now, not on the first image
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
