"""Audio uploads (reference_server/audio.py): every format decodes to 16 kHz mono, bad uploads are 400/413."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from wirecheck.reference_server.audio import FORMATS, SAMPLE_RATE, check_upload, decode
from wirecheck.reference_server.errors import APIError


def _wav(seconds: float = 1.0, rate: int = 22_050, channels: int = 2) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.repeat(tone, channels).tobytes())
    return buf.getvalue()


def _encoded(fmt: str, codec: str) -> bytes:
    """The same second of tone re-encoded by FFmpeg (PyAV) into `fmt`."""
    import av

    out = io.BytesIO()
    with av.open(out, mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=SAMPLE_RATE)
        samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(SAMPLE_RATE) / SAMPLE_RATE)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
        frame.rate = SAMPLE_RATE
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def test_wav_stereo_44k_becomes_16k_mono() -> None:
    audio = decode(_wav(), max_seconds=60)
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert abs(audio.duration - 1.0) < 0.01 and np.abs(audio.samples).max() <= 1.0


@pytest.mark.parametrize(("fmt", "codec"), [("flac", "flac"), ("mp3", "libmp3lame"), ("ogg", "libopus"),
                                            ("webm", "libopus"), ("ipod", "aac")], ids=["flac", "mp3", "ogg",
                                                                                       "webm", "m4a"])
def test_the_compressed_formats_decode(fmt: str, codec: str) -> None:
    audio = decode(_encoded(fmt, codec), max_seconds=60)
    assert 0.9 < audio.duration < 1.2


@pytest.mark.parametrize(("name", "data", "status", "says"), [
    ("speech.xyz", b"RIFF....", 400, "Invalid file format"),
    ("speech", b"RIFF....", 400, "Invalid file format"),
    ("speech.wav", b"", 400, "empty"),
    ("speech.wav", b"x" * 101, 413, "limit"),
])
def test_bad_uploads_are_client_errors_naming_the_file(name: str, data: bytes, status: int, says: str) -> None:
    with pytest.raises(APIError) as caught:
        check_upload(name, data, max_bytes=100)
    assert caught.value.status == status and caught.value.param == "file" and says in caught.value.message


def test_undecodable_and_too_long_audio_are_400s() -> None:
    with pytest.raises(APIError, match="could not be decoded"):
        decode(b"RIFF not really a wav file at all", max_seconds=60)
    with pytest.raises(APIError, match="longer than"):
        decode(_wav(seconds=3.0), max_seconds=1.0)
    assert "wav" in FORMATS and "m4a" in FORMATS
