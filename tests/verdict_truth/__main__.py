"""`python -m tests.verdict_truth MANIFEST RUN REPORT.json`: does a suite report fail exactly what the manifest's
run expects? Exit 0 when it does, 1 with the differences when it does not."""

from __future__ import annotations

import sys

from .manifest import compare_files


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    manifest, run, report = argv
    problems = compare_files(manifest, run, report)
    for problem in problems:
        print(f"MISMATCH {run}: {problem}")
    if not problems:
        print(f"{run}: the report fails exactly the checks {manifest} expects")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
