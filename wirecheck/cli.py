"""The `wirecheck` command. Each subcommand's module is imported only when that subcommand runs, so
`wirecheck --help`, `lint-stream`, `proxy` and `load` never import the reference server's model stack.

A subcommand module offers `configure(parser)` (its options), `run(args) -> int` and optionally `DESCRIPTION`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__

# name: (module, one-line help). The help lives here so listing the commands imports none of them.
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("wirecheck.reference_server.cli",
              "run the reference server (OpenAI-compatible, offline, local model; needs wirecheck[server])"),
    "lint-stream": ("wirecheck.suites.lint", "judge a captured SSE body offline with the suites' stream checks"),
    "proxy": ("wirecheck.reference_server.faults.cli",
              "forward to an endpoint and apply one wire fault (test clients and checks)"),
    "load": ("wirecheck.load.command", "measure streaming latency and throughput of a target with locust"),
}


def _chosen(argv: list[str]) -> str | None:
    """The subcommand named on the command line (the first word that is not an option), if any."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wirecheck", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"wirecheck {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = _chosen(argv)
    for name, (module_name, help_text) in COMMANDS.items():
        if name != chosen:
            sub.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=getattr(module, "DESCRIPTION", help_text),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.configure(p)
        p.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    try:
        return int(args.run(args))
    except BrokenPipeError:  # `wirecheck proxy --list | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
