"""`wirecheck lint-stream`: judge a captured SSE body offline with the same invariants the suites run live.

Paste a gateway's stream (`curl -N ... > body.sse`), get the verdict: exit 0 when it conforms, 1 with the
failing check ids, 2 on usage errors (unknown surface, unreadable file).
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

SURFACES = ("chat", "completions", "messages", "responses")
DESCRIPTION = ("Run wirecheck's stream checks on a captured SSE body (a file, or - for stdin). Exit status: 0 "
               "when it conforms, 1 when checks fail (their ids are printed), 2 on usage errors.")
SHOWN_PROBLEMS = 8


def configure(parser: argparse.ArgumentParser) -> None:
    """The options of `wirecheck lint-stream` (shared by the CLI subcommand and :func:`main`)."""
    parser.add_argument("--surface", required=True, choices=SURFACES,
                        help="which API produced the stream: chat (/v1/chat/completions), completions "
                             "(/v1/completions), messages (Anthropic /v1/messages) or responses (/v1/responses)")
    parser.add_argument("--strict", action="store_true",
                        help="also run the checks only pedantic clients need")
    parser.add_argument("--quiet", "-q", action="store_true", help="print only the failing check ids")
    parser.add_argument("file", metavar="FILE", help="the raw SSE body as captured (- reads stdin)")
    parser.set_defaults(run=run)


def read_body(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    with open(name, "rb") as fh:
        return fh.read()


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        body = read_body(args.file)
    except OSError as exc:
        print(f"wirecheck lint-stream: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2

    from wirecheck.spec import sse

    from .invariants import STREAM_CHECKS, _load, lint

    _load()
    items = sse.parse(body)
    failed = lint(args.surface, items, strict=args.strict)
    checks = STREAM_CHECKS.get(args.surface, {})
    ran = [c for c in checks.values() if args.strict or not c.info.strict]
    events = sum(1 for it in items if it.kind == "event")
    for check_id, problems in failed.items():
        if args.quiet:
            print(check_id, file=out)
            continue
        print(f"FAIL {check_id}", file=out)
        for problem in problems[:SHOWN_PROBLEMS]:
            print(f"  - {problem}", file=out)
        if len(problems) > SHOWN_PROBLEMS:
            print(f"  - ... {len(problems) - SHOWN_PROBLEMS} more", file=out)
        print(f"  why: {checks[check_id].info.rationale}", file=out)
    if not args.quiet:
        verdict = "conforms" if not failed else f"{len(failed)} of {len(ran)} checks fail"
        print(f"{args.surface} stream, {len(body)} bytes, {events} events: {len(ran)} checks run, {verdict}",
              file=out)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wirecheck lint-stream", description=DESCRIPTION)
    configure(parser)
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
