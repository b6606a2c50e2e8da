"""Images and audio in chat: decoding and preprocessing (pure functions, numpy in and out), the number of
placeholder tokens each costs, and the adapter that turns them into LM input embeddings.

A content part becomes a `Media`: pixels resized to the detail's square, or a log-mel spectrogram. That is all
that travels to the engine (a pickled numpy array over the engine pipe, engine/process.py), where the
`MediaAdapter` (the "tiny-omni" encoders, models/tiny_omni.py) maps it onto `tokens` vectors that replace the
run of placeholder ids the prompt holds for it. Everything a client sends wrong is a 400 naming the part.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import APIError, invalid
from ..models import tiny_omni as arch

TINY_OMNI_DIR = Path(__file__).resolve().parent.parent / "models" / "tiny-omni"
OMNI_MODEL_ID = "tiny-omni"  # the plain server's id for the tiny LM with its media adapter
AUDIO_FORMATS = ("wav", "mp3")  # OpenAI's input_audio formats
MAX_AUDIO_S = 30.0  # 375 tokens
MAX_IMAGE_PIXELS = 40_000_000  # larger images are refused before decoding their pixels (decompression bombs)
KINDS = ("image", "audio")


@dataclass(frozen=True, eq=False)
class Media:
    """One preprocessed part: `data` is uint8 (S, S, 3) pixels for an image, float32 (N_MELS, frames) log-mel
    for audio. Its placeholder ids say nothing of its content, so nothing may be cached by prompt ids alone."""

    kind: str
    data: np.ndarray

    @property
    def tokens(self) -> int:
        if self.kind == "image":
            return arch.image_tokens(self.data.shape[0])
        return arch.audio_tokens(self.data.shape[1])


# --- images ------------------------------------------------------------------------------------------------


def image_size(detail: str, width: int, height: int) -> int:
    """The square side for `detail`; "auto" takes the low-detail square when the image fits in it."""
    if detail == "auto":
        detail = "low" if max(width, height) <= arch.IMAGE_SIZES["low"] else "high"
    return arch.IMAGE_SIZES[detail]


def image_tokens(detail: str, width: int, height: int) -> int:
    return arch.image_tokens(image_size(detail, width, height))


def image_pixels(image: Any, size: int) -> np.ndarray:
    """A PIL image's RGB pixels stretched to size x size; transparency is laid over white."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    image = image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    return np.array(image, dtype=np.uint8)


def decode_image(data: bytes, detail: str, where: str) -> Media:
    """An image file's bytes (PNG, JPEG, WebP, GIF: what Pillow reads) as a Media; a 400 naming `where` when
    the bytes are not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise invalid(f"The image at {where} is too large ({width}x{height} pixels).", param=where,
                              code="invalid_image")
            image.load()
            return Media("image", image_pixels(image, image_size(detail, width, height)))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise invalid(f"The image at {where} could not be decoded ({type(exc).__name__}); send PNG, JPEG, WebP "
                      "or GIF.", param=where, code="invalid_image") from None


# --- audio -------------------------------------------------------------------------------------------------


def _mel_filters() -> np.ndarray:
    """(N_MELS, N_FFT // 2 + 1) triangular filters, evenly spaced on the mel scale up to 8 kHz."""
    mel = np.linspace(0.0, 2595 * np.log10(1 + 8000 / 700), arch.N_MELS + 2)
    hz = 700 * (10 ** (mel / 2595) - 1)
    bins = np.fft.rfftfreq(arch.N_FFT, 1 / arch.SAMPLE_RATE)
    up = (bins[None, :] - hz[:-2, None]) / (hz[1:-1] - hz[:-2])[:, None]
    down = (hz[2:, None] - bins[None, :]) / (hz[2:] - hz[1:-1])[:, None]
    return np.maximum(0.0, np.minimum(up, down)).astype(np.float32)


_FILTERS = _mel_filters()
_WINDOW = np.hanning(arch.N_FFT + 1)[:-1].astype(np.float32)


def log_mel(samples: np.ndarray) -> np.ndarray:
    """16 kHz mono float32 -> (N_MELS, len // HOP + 1) log-mel, Whisper's scaling (8 decades below the peak,
    then (x + 4) / 4)."""
    pad = arch.N_FFT // 2
    x = np.pad(samples.astype(np.float32), (pad, pad))
    frames = np.lib.stride_tricks.sliding_window_view(x, arch.N_FFT)[::arch.HOP] * _WINDOW
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    mel = np.log10(np.maximum(_FILTERS @ power.T.astype(np.float32), 1e-10))
    mel = np.maximum(mel, mel.max() - 8.0)
    return ((mel + 4.0) / 4.0).astype(np.float32)


def audio_tokens(seconds: float) -> int:
    return arch.audio_tokens(int(seconds * arch.SAMPLE_RATE) // arch.HOP + 1)


def decode_input_audio(data: str, fmt: str, where: str) -> Media:
    """An input_audio part's base64 `data` in `fmt` as a Media; a 400 naming `where.data` or `where.format`."""
    from .. import audio

    if fmt not in AUDIO_FORMATS:
        raise invalid(f"Unsupported input_audio format '{fmt}'; use one of {', '.join(AUDIO_FORMATS)}.",
                      param=f"{where}.format", code="invalid_value")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(f"{where}.data is not valid base64.", param=f"{where}.data", code="invalid_base64") from None
    if not raw:
        raise invalid(f"{where}.data is empty.", param=f"{where}.data", code="invalid_value")
    try:
        decoded = audio.decode(raw, MAX_AUDIO_S)
    except APIError as exc:  # audio.decode speaks of an uploaded `file`; here the bytes came in this part
        raise invalid(f"The {fmt} audio in {where}.data could not be used: {exc.message}", param=f"{where}.data",
                      code=exc.code) from None
    return Media("audio", log_mel(decoded.samples))


# --- the adapter (engine side) -------------------------------------------------------------------------------


def lm_digest(path: str | Path) -> str:
    """What a tiny-omni directory records of the LM it was trained against: its weights' sha256."""
    digest = hashlib.sha256()
    for weights in sorted(Path(path).glob("*.safetensors")):
        digest.update(weights.read_bytes())
    return digest.hexdigest()


def adapter_for(lm_path: str | Path, hidden_size: int, adapter_dir: Path = TINY_OMNI_DIR) -> str | None:
    """The adapter directory that fits the LM at `lm_path`, or None: an adapter speaks one LM's embeddings, so
    it is used only beside the very weights it was trained against (checked by their sha256, after the cheap
    check of the hidden size, so a large model's weights are never hashed)."""
    config = adapter_dir / "config.json"
    if not config.is_file() or not Path(lm_path).is_dir():
        return None
    meta = json.loads(config.read_text())
    if meta.get("lm_hidden_size") != hidden_size:
        return None
    wanted = meta.get("lm_sha256")
    return str(adapter_dir) if wanted and wanted == lm_digest(lm_path) else None


class MediaAdapter:
    """The tiny-omni encoders on the LM's device and dtype: `embed(media)` -> (media.tokens, hidden) vectors."""

    def __init__(self, path: str | Path, device: torch.device, dtype: torch.dtype) -> None:
        from safetensors.torch import load_file

        meta = json.loads((Path(path) / "config.json").read_text())
        fields = {k: meta[k] for k in arch.OmniConfig.__dataclass_fields__ if k in meta}
        self.model = arch.Omni(arch.OmniConfig(**fields))
        self.model.load_state_dict({k: v.float() for k, v in load_file(Path(path) / "model.safetensors").items()})
        self.model.to(device=device, dtype=dtype).eval()
        self.device, self.dtype = device, dtype
        self.kinds = frozenset(KINDS)

    def embed(self, media: Media) -> torch.Tensor:
        with torch.inference_mode():
            if media.kind == "image":
                pixels = torch.from_numpy(np.ascontiguousarray(media.data))[None].to(self.device)
                out = self.model.image(arch.normalise_pixels(pixels, self.dtype))
            elif media.kind == "audio":
                mel = torch.from_numpy(np.ascontiguousarray(media.data))[None].to(self.device, self.dtype)
                out = self.model.audio(mel)
            else:
                raise ValueError(f"unknown media kind {media.kind!r}")
        assert out.shape[1] == media.tokens, (out.shape, media.tokens)
        return out[0]
