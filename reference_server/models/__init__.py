"""Models shipped with the reference server.

``TINY_MODEL_DIR`` is the embedded default model "tiny": a small Llama-type model with a byte-level BPE
tokenizer and a ChatML/Hermes chat template, built by ``python -m wirecheck.reference_server.models.build_tiny``
and committed so that every machine serves the same weights.
"""

from pathlib import Path

TINY_MODEL_DIR = Path(__file__).resolve().parent / "tiny"

__all__ = ["TINY_MODEL_DIR"]
