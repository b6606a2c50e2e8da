"""The synthetic load target (load/synthetic_server.py) as its own process, for the load tests."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def synthetic_server(ttft_ms: int, itl_ms: int, tokens: int) -> Iterator[str]:
    """Start it on a free port; yields its base URL (read from its "listening on" line)."""
    proc = subprocess.Popen([sys.executable, "-m", "wirecheck.load.synthetic_server", "--port", "0",
                             "--ttft-ms", str(ttft_ms), "--itl-ms", str(itl_ms), "--tokens", str(tokens)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, line
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait(10)
