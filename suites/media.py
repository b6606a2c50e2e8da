"""Media the suites send, generated at run time with the standard library and numpy, never downloaded: PNG
images of one colour, WAV tones, and the content parts and data URLs that carry them."""

from __future__ import annotations

import base64
import io
import struct
import wave
import zlib
from typing import Any

import numpy as np

RED, BLUE = (220, 30, 30), (30, 60, 220)


def png(colour: tuple[int, int, int] = RED, size: int = 64) -> bytes:
    """A `size`×`size` 8-bit RGB PNG filled with `colour` (with a lighter square in the middle, so that a
    decoder sees more than one value)."""
    pixels = np.empty((size, size, 3), np.uint8)
    pixels[:] = colour
    q = size // 4
    pixels[q:-q, q:-q] = [min(255, c + 30) for c in colour]
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)  # filter type 0 per scanline

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def tone_wav(seconds: float = 1.5, rate: int = 16_000, freqs: tuple[float, ...] = (220.0, 440.0, 660.0)) -> bytes:
    """A 16-bit mono WAV of a few tones, so a decoder has real samples and a model something to hear."""
    t = np.arange(int(rate * seconds)) / rate
    signal = sum(np.sin(2 * np.pi * f * t) for f in freqs) / (len(freqs) + 1)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((signal * 32767).astype(np.int16).tobytes())
    return buf.getvalue()


def image_part(data: bytes | None = None, detail: str | None = None, url: str | None = None) -> dict[str, Any]:
    """OpenAI's chat image part with a data: URL (a red PNG by default), or `url` as given."""
    image: dict[str, Any] = {"url": url or "data:image/png;base64," + base64.b64encode(data or png()).decode()}
    if detail is not None:
        image["detail"] = detail
    return {"type": "image_url", "image_url": image}


def audio_part(data: bytes | None = None, fmt: str = "wav") -> dict[str, Any]:
    """OpenAI's chat input_audio part: base64 audio (a WAV tone by default) and its format."""
    return {"type": "input_audio", "input_audio": {"data": base64.b64encode(data or tone_wav()).decode(),
                                                   "format": fmt}}


def user_with(*parts: dict[str, Any], text: str = "What is in this?") -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": text}, *parts]}]
