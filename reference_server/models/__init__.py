"""Models shipped with the reference server.

``TINY_MODEL_DIR`` is the embedded default model "tiny": a small Llama-type model with a byte-level BPE
tokenizer and a ChatML/Hermes chat template, built by ``python -m wirecheck.reference_server.models.build_tiny``
and committed so that every machine serves the same weights.

``TINY_WHISPER_DIR`` is the embedded speech-to-text model "tiny-whisper": a small Whisper-type model that
transcribes the synthetic voice of ``tiny_speech``, built by ``python -m
wirecheck.reference_server.models.build_tiny_whisper`` and committed the same way.
"""

from pathlib import Path

TINY_MODEL_DIR = Path(__file__).resolve().parent / "tiny"
TINY_WHISPER_DIR = Path(__file__).resolve().parent / "tiny-whisper"

__all__ = ["TINY_MODEL_DIR", "TINY_WHISPER_DIR"]
