"""The soak benchmark, short (CI's smaller sample): real server, real clients in their own processes, the
bad-input matrix, hang-ups and a schemathesis sample at once. The correctness targets must be met here; the
timing and memory targets are the benchmark's to report on a quiet machine (docs/hostile-input.md), never a
timed test."""

from __future__ import annotations

import subprocess
import sys


def test_short_soak_meets_the_correctness_targets() -> None:
    run = subprocess.run([sys.executable, "-m", "wirecheck.load.bench_soak", "--duration", "8", "--streams", "2",
                          "--matrix-workers", "1", "--fuzz-cases", "60"],
                         capture_output=True, text=True, timeout=600)
    out = run.stdout + run.stderr
    for target in ("0 x 5xx", "running and waiting back to 0", "every answer in its status and envelope"):
        assert f"[met] {target}" in out, out[-3000:]
    assert "matrix" in out and "fuzz" in out and "stream" in out, out[-3000:]
    assert "streams hung up" in out and " 0 streams hung up" not in out, out[-3000:]
