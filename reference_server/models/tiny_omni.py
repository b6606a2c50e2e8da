"""Architecture of the embedded media adapter "tiny-omni": an image encoder and an audio encoder, each with a
projector into the input-embedding space of the frozen "tiny" LM.

Both encoders turn media into a run of vectors that take the place of placeholder tokens in the prompt (the LM
itself is untouched, so text-only chats through "tiny" and "tiny-omni" are the same computation):

- image: pixels (3, S, S) in [-1, 1] -> a conv stem of stride ``PATCH`` -> (S / PATCH)^2 patch vectors with a
  fixed 2-D sinusoidal position code over the unit square (so the 4x4 grid of detail "low" and the 8x8 grid of
  "high" mean the same places) -> pre-norm transformer layers -> projector;
- audio: a log-mel spectrogram (``N_MELS`` bins, one frame per ``HOP`` samples at 16 kHz) -> three stride-2
  convolutions (one vector per ``AUDIO_FRAMES_PER_TOKEN`` frames, 80 ms) with a sinusoidal code of each token's
  place in the clip and of its time ->
  transformer layers -> projector.

Shared by the recipe (``build_tiny_omni``) and the server's adapter (``engine.media``). torch only, no transformers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

SAMPLE_RATE = 16_000
N_MELS = 40
N_FFT = 400  # 25 ms windows
HOP = 160  # 10 ms between frames
AUDIO_FRAMES_PER_TOKEN = 8  # three stride-2 convolutions
PATCH = 16  # pixels per image token side
IMAGE_SIZES = {"low": 64, "high": 128}  # the square an image is resized to, per detail: 16 or 64 tokens


@dataclass(frozen=True)
class OmniConfig:
    """What ``config.json`` of a tiny-omni directory holds (besides the LM it was trained for)."""

    lm_hidden_size: int
    width: int = 64  # encoder width
    heads: int = 4
    layers: int = 2
    ffn: int = 128

    def as_dict(self) -> dict:
        return asdict(self)


def _sinusoids(positions: torch.Tensor, channels: int, scale: float) -> torch.Tensor:
    """(n,) positions -> (n, channels) sin/cos codes at ``channels // 2`` frequencies up to ``scale``."""
    freqs = torch.exp(torch.linspace(0.0, math.log(scale), channels // 2, device=positions.device))
    angles = positions[:, None].float() * freqs[None, :] * math.pi
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def grid_code(side: int, channels: int) -> torch.Tensor:
    """(side^2, channels): each patch centre's (y, x) in the unit square, half the channels each."""
    centres = (torch.arange(side) + 0.5) / side
    ys = _sinusoids(centres, channels // 2, 16.0)
    return torch.cat([ys.repeat_interleave(side, dim=0), ys.repeat(side, 1)], dim=-1)


def time_code(length: int, channels: int) -> torch.Tensor:
    """(length, channels): each token's place in the clip (0..1, so the last token knows it is last, which the
    LM reads most) in half the channels, its time (80 ms a token) in the other half."""
    steps = torch.arange(length)
    return torch.cat([_sinusoids((steps + 0.5) / length, channels // 2, 16.0),
                      _sinusoids(steps / 64.0, channels // 2, 64.0)], dim=-1)


class _Tower(nn.Module):
    """Pre-norm transformer layers and the projector into the LM's embedding space."""

    def __init__(self, cfg: OmniConfig) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(cfg.width, cfg.heads, cfg.ffn, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.width)
        self.project = nn.Sequential(nn.Linear(cfg.width, cfg.lm_hidden_size), nn.GELU(),
                                     nn.Linear(cfg.lm_hidden_size, cfg.lm_hidden_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.norm(self.layers(x)))


class ImageEncoder(nn.Module):
    def __init__(self, cfg: OmniConfig) -> None:
        super().__init__()
        # Two overlapping stride-2 convolutions see edges and corners (a square from a circle) before the last one
        # cuts the PATCH x PATCH tokens.
        w = cfg.width
        self.stem = nn.Sequential(nn.Conv2d(3, w // 2, 3, stride=2, padding=1), nn.GELU(),
                                  nn.Conv2d(w // 2, w, 3, stride=2, padding=1), nn.GELU(),
                                  nn.Conv2d(w, w, PATCH // 4, stride=PATCH // 4))
        self.tower = _Tower(cfg)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) in [-1, 1] -> (B, (S / PATCH)^2, lm_hidden_size)."""
        x = self.stem(pixels)
        side = x.shape[-1]
        x = x.flatten(2).transpose(1, 2) + grid_code(side, x.shape[1]).to(x)
        return self.tower(x)


class AudioEncoder(nn.Module):
    def __init__(self, cfg: OmniConfig) -> None:
        super().__init__()
        w = cfg.width
        self.stem = nn.Sequential(nn.Conv1d(N_MELS, w, 3, stride=2, padding=1), nn.GELU(),
                                  nn.Conv1d(w, w, 3, stride=2, padding=1), nn.GELU(),
                                  nn.Conv1d(w, w, 3, stride=2, padding=1), nn.GELU())
        self.tower = _Tower(cfg)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, N_MELS, frames) -> (B, ceil(frames / 8), lm_hidden_size)."""
        x = self.stem(mel).transpose(1, 2)
        x = x + time_code(x.shape[1], x.shape[2]).to(x)
        return self.tower(x)


class Omni(nn.Module):
    """Both encoders; the state dict saved in ``model.safetensors``."""

    def __init__(self, cfg: OmniConfig) -> None:
        super().__init__()
        self.config = cfg
        self.image = ImageEncoder(cfg)
        self.audio = AudioEncoder(cfg)


def normalise_pixels(pixels: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 (B, S, S, 3) -> (B, 3, S, S) in [-1, 1]: the image encoder's input."""
    return pixels.permute(0, 3, 1, 2).to(dtype) / 127.5 - 1.0


def audio_tokens(frames: int) -> int:
    """Tokens an audio clip of ``frames`` log-mel frames becomes (each stride-2 conv rounds up)."""
    for _ in range(3):
        frames = (frames + 1) // 2
    return max(1, frames)


def image_tokens(size: int) -> int:
    return (size // PATCH) ** 2
