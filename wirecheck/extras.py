"""Which optional parts of wirecheck are installed, and the one line that says how to add a missing one.

The base install (suites, lint-stream, proxy, load) needs no torch; the reference server's model stack comes
with the ``server`` extra. Checked by module lookup only, so asking costs no import of torch.
"""

from __future__ import annotations

import importlib.util

# Modules of the `server` extra, as pyproject's [project.optional-dependencies] server lists their packages.
EXTRAS: dict[str, tuple[str, ...]] = {
    "server": ("torch", "transformers", "tokenizers", "safetensors", "llguidance", "av", "python_multipart", "PIL"),
}


def missing(extra: str) -> list[str]:
    """The modules of `extra` this environment cannot import (found by lookup, nothing is imported)."""
    return [name for name in EXTRAS[extra] if importlib.util.find_spec(name) is None]


def requirement_message(what: str, extra: str) -> str | None:
    """One line telling the user which extra `what` needs, or None when it is installed."""
    absent = missing(extra)
    if not absent:
        return None
    return (f"{what} needs the '{extra}' extra (missing: {', '.join(absent)}): "
            f"pip install 'wirecheck[{extra}]' (for CPU torch, first: pip install torch==2.13.0)")
