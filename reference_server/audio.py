"""Audio uploads for speech to text: format check, decoding to 16 kHz mono, limits.

PyAV (FFmpeg, installed from the package index with the server extra) decodes every format OpenAI takes.
The format is named by the file name's extension, as OpenAI requires; the bytes must then decode as audio.
Whatever goes wrong with an upload is a 400 (or 413) naming `file`, never a 500.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from .errors import APIError, invalid

SAMPLE_RATE = 16_000
# OpenAI's list, in the order its error message gives it.
FORMATS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
MAX_BYTES = 25 * 1024 * 1024  # OpenAI: "File uploads are currently limited to 25 MB"


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # float32 in [-1, 1], mono, SAMPLE_RATE
    duration: float  # seconds

    @classmethod
    def of(cls, samples: np.ndarray) -> Audio:
        return cls(samples.astype(np.float32, copy=False), len(samples) / SAMPLE_RATE)


def extension(filename: str | None) -> str | None:
    if not filename or "." not in filename:
        return None
    return filename.rsplit(".", 1)[1].lower()


def check_upload(filename: str | None, data: bytes, max_bytes: int = MAX_BYTES) -> None:
    """The checks before decoding: a known format by extension, not empty, not too large."""
    if len(data) > max_bytes:
        raise APIError(413, f"Maximum content size limit ({max_bytes} bytes) exceeded ({len(data)} bytes read).",
                       param="file", code="request_too_large")
    if extension(filename) not in FORMATS:
        raise invalid(f"Invalid file format. Supported formats: {list(FORMATS)}", param="file",
                      code="invalid_value")
    if not data:
        raise invalid("The audio file is empty.", param="file", code="invalid_value")


def decode(data: bytes, max_seconds: float) -> Audio:
    """The upload's audio as 16 kHz mono float32; a 400 when it does not decode or runs too long."""
    import av

    chunks: list[np.ndarray] = []
    total = 0
    limit = int(max_seconds * SAMPLE_RATE)
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise invalid("The file holds no audio stream.", param="file", code="invalid_value")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    total += len(chunk)
                    if total > limit:
                        raise invalid(f"The audio is longer than this server accepts ({max_seconds:g} s).",
                                      param="file", code="audio_too_long")
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except av.error.FFmpegError as exc:
        raise invalid(f"The audio file could not be decoded ({type(exc).__name__}); it may be corrupted or not in "
                      f"the format its name says.", param="file", code="invalid_value") from None
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    if not len(samples):
        raise invalid("The audio file holds no samples.", param="file", code="invalid_value")
    return Audio.of(np.clip(samples, -1.0, 1.0))
