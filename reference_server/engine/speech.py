"""Speech to text with a Whisper-type model (the embedded "tiny-whisper" or any local Whisper directory).

Decoding is our own short loop over ``WhisperForConditionalGeneration`` with a KV cache, driven the way Whisper
is: optional ``<|startofprev|>`` + prompt, then ``<|startoftranscript|><|lang|><|transcribe|><|notimestamps|>``,
then text tokens until ``<|endoftext|>``. Only text tokens (ids below ``<|endoftext|>``, true of every Whisper
vocabulary) and ``<|endoftext|>`` may be produced. Audio is
cut at pauses into utterances (one segment each), and an utterance longer than the model's window (6 s for
tiny-whisper, 30 s for OpenAI's checkpoints) at the quietest point near each window's end; an API ``prompt``
conditions every segment. Pure: no web code, no global RNG (sampling uses a per-call generator).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import DynamicCache, EncoderDecoderCache, WhisperForConditionalGeneration, WhisperProcessor
from transformers.models.whisper.tokenization_whisper import LANGUAGES, TO_LANGUAGE_CODE

from ..models import TINY_WHISPER_DIR
from .loader import resolve_device

SAMPLE_RATE = 16000
PROMPT_TOKENS = 40  # the prompt's last tokens kept; Whisper keeps at most half its decoder positions
CUT_SEARCH_S = 1.5  # a long input is cut at the quietest point in this last stretch of each window
QUIET_FRAME_S = 0.06  # energy is smoothed over this: longer than a stop's closure, shorter than a word gap
FRAME_S = 0.02  # pause detection: frame length
PAUSE_S = 0.3  # a quiet run this long is a pause between utterances (word gaps and stop closures are shorter)
QUIET_RATIO = 0.05  # a frame is quiet below this share of the loud (95th percentile) frames' level
# Digital silence gives a flat log-mel spectrogram that no training sample looks like: it is not decoded.
SILENT_PEAK = 1e-4
# transformers renamed `past_key_values` to `cache` within 5.x; pass whichever this version takes.
CACHE_KWARG = "cache" if "cache" in inspect.signature(WhisperForConditionalGeneration.forward).parameters \
    else "past_key_values"


@dataclass(frozen=True)
class Segment:
    """One window's transcription: OpenAI's verbose_json segment is made from it."""
    start: float  # seconds into the input
    end: float
    text: str
    token_ids: tuple[int, ...]
    avg_logprob: float  # mean log-probability of the tokens chosen (and of <|endoftext|>)


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str  # the language's English name, lower case ("english"), as OpenAI's verbose_json reports it
    duration: float  # seconds of input audio
    segments: tuple[Segment, ...]

    @property
    def tokens(self) -> int:
        return sum(len(s.token_ids) for s in self.segments)


class UnsupportedLanguage(ValueError):
    """The requested language has no token in this model's vocabulary."""


class SpeechModel:
    def __init__(self, model: WhisperForConditionalGeneration, processor: WhisperProcessor, model_id: str) -> None:
        self.id, self.model, self.processor = model_id, model, processor
        self.device = next(model.parameters()).device
        tok = processor.tokenizer
        ids = tok.convert_tokens_to_ids
        self.eot = int(ids("<|endoftext|>"))
        self.sot, self.prev = int(ids("<|startoftranscript|>")), int(ids("<|startofprev|>"))
        self.task, self.no_timestamps = int(ids("<|transcribe|>")), int(ids("<|notimestamps|>"))
        vocab = tok.get_vocab()
        # ISO 639-1 code -> token id, for every language the vocabulary has a token for.
        self.language_ids = {code: vocab[f"<|{code}|>"] for code in LANGUAGES if f"<|{code}|>" in vocab}
        self.window = int(processor.feature_extractor.n_samples)
        self.max_positions = int(model.config.max_target_positions)
        self.allowed = torch.full((model.config.vocab_size,), float("-inf"), device=self.device)
        self.allowed[: self.eot + 1] = 0.0  # text tokens and <|endoftext|>
        # Characters the model was trained to read in a prompt (tiny-whisper: a-z and space); None = any.
        self.alphabet: str | None = getattr(model.config, "text_alphabet", None)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.language_ids)

    def language_code(self, language: str | None) -> str | None:
        """ISO 639-1 code for an ISO code or an English name (either case); None stays None (detect)."""
        if language is None:
            return None
        code = TO_LANGUAGE_CODE.get(language.lower(), language.lower())
        if code not in self.language_ids:
            raise UnsupportedLanguage(f"language {language!r} is not supported by {self.id}; "
                                      f"supported: {', '.join(self.languages)}")
        return code

    def prompt_ids(self, prompt: str | None) -> list[int]:
        """``<|startofprev|>`` and the prompt's last tokens. Where the config names a ``text_alphabet`` (tiny-whisper:
        a-z and space), other characters are dropped rather than fed as tokens the model never saw in training."""
        text = prompt or ""
        if self.alphabet is not None:
            text = "".join(c for c in (text if self.alphabet.lower() != self.alphabet else text.lower())
                           if c in self.alphabet)
        if not text.strip():
            return []
        ids = self.processor.tokenizer(" " + " ".join(text.split()), add_special_tokens=False).input_ids
        return [self.prev] + ids[-PROMPT_TOKENS:] if ids else []

    def transcribe(self, samples: np.ndarray, language: str | None = None, temperature: float = 0.0,
                   prompt: str | None = None, seed: int | None = None) -> Transcript:
        """``samples``: 16 kHz mono float32 in [-1, 1]. Greedy below temperature 1e-5, else sampling (seeded
        when ``seed`` is given). ``language`` None detects it among the vocabulary's languages."""
        audio = np.asarray(samples, dtype=np.float32).reshape(-1)
        code = self.language_code(language)
        generator = torch.Generator(device=self.device)
        if seed is None:
            generator.seed()  # fresh entropy; the global torch RNG is left alone
        else:
            generator.manual_seed(seed)
        context = self.prompt_ids(prompt)
        segments: list[Segment] = []
        at = 0
        for window in split_windows(audio, self.window):
            start, at = at, at + len(window)
            loud = np.flatnonzero(np.abs(window) >= SILENT_PEAK)
            if not len(loud):
                continue
            # Digital silence at the edges (a pause cut in two) is left out: the model never heard any.
            ids, code, logprob = self._window(window[loud[0]:loud[-1] + 1], code, temperature, context, generator)
            text = self.processor.tokenizer.decode(ids, skip_special_tokens=True).strip()
            segments.append(Segment(start / SAMPLE_RATE, at / SAMPLE_RATE, text, tuple(ids), logprob))
        language_name = LANGUAGES[code or next(iter(self.language_ids))]
        text = " ".join(s.text for s in segments if s.text)
        return Transcript(text, language_name, len(audio) / SAMPLE_RATE, tuple(segments))

    @torch.inference_mode()
    def _window(self, audio: np.ndarray, code: str | None, temperature: float, prompt: list[int],
                generator: torch.Generator) -> tuple[list[int], str, float]:
        features = self.processor.feature_extractor(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        encoded = self.model.model.encoder(features.input_features.to(self.device, self.model.dtype))
        cache = EncoderDecoderCache(DynamicCache(), DynamicCache())  # filled in place by every step

        def step(ids: list[int]) -> torch.Tensor:
            out = self.model(encoder_outputs=(encoded.last_hidden_state,), use_cache=True, **{CACHE_KWARG: cache},
                             decoder_input_ids=torch.tensor([ids], device=self.device))
            return out.logits[0, -1].float()

        logits = step(prompt + [self.sot])
        if code is None:  # detect: the likeliest language token after <|startoftranscript|>
            code = max(self.language_ids, key=lambda c: logits[self.language_ids[c]].item())
        logits = step([self.language_ids[code], self.task, self.no_timestamps])
        budget = self.max_positions - len(prompt) - 4
        out: list[int] = []
        logprob = 0.0
        while True:
            logits = logits + self.allowed
            if len(out) >= budget:
                token = self.eot
            elif temperature < 1e-5:
                token = int(logits.argmax())
            else:
                token = int(torch.multinomial((logits / temperature).softmax(-1), 1, generator=generator))
            logprob += float(logits.log_softmax(-1)[token])
            if token == self.eot:
                break
            out.append(token)
            logits = step([token])
        return out, code, logprob / (len(out) + 1) if math.isfinite(logprob) else -math.inf


def split_windows(audio: np.ndarray, window: int) -> list[np.ndarray]:
    """Cut ``audio`` into consecutive pieces of at most ``window`` samples: first in the middle of every pause
    (a run of quiet frames at least ``PAUSE_S`` long, as a voice-activity filter would), so that each piece
    holds one utterance, the way the model was trained; a piece still longer than ``window`` is then cut at
    the quietest point (smoothed energy) in the last ``CUT_SEARCH_S`` of its window, in a word gap rather
    than in a word. The pieces together are exactly ``audio``."""
    cuts = _pause_cuts(audio)
    pieces: list[np.ndarray] = []
    for start, end in zip([0, *cuts], [*cuts, len(audio)]):
        pieces += _fit(audio[start:end], window)
    return pieces or [audio]


def _pause_cuts(audio: np.ndarray) -> list[int]:
    frame = int(FRAME_S * SAMPLE_RATE)
    count = len(audio) // frame
    if count < 3:
        return []
    rms = np.sqrt((audio[:count * frame].reshape(count, frame).astype(np.float64) ** 2).mean(axis=1))
    # Quiet relative to the loud frames: noise floors differ between recordings, speech levels too.
    quiet = rms < max(QUIET_RATIO * float(np.percentile(rms, 95)), SILENT_PEAK)
    cuts, run_start, least = [], None, int(PAUSE_S / FRAME_S)
    for i, q in enumerate([*quiet, False]):
        if q and run_start is None:
            run_start = i
        elif not q and run_start is not None:
            if i - run_start >= least and run_start > 0 and i < count:  # a pause between sounds, not an edge
                cuts.append((run_start + i) // 2 * frame)
            run_start = None
    return cuts


def _fit(audio: np.ndarray, window: int) -> list[np.ndarray]:
    pieces: list[np.ndarray] = []
    start = 0
    frame = int(QUIET_FRAME_S * SAMPLE_RATE)
    while len(audio) - start > window:
        lo = start + window - int(CUT_SEARCH_S * SAMPLE_RATE)
        energy = np.convolve(audio[lo:start + window] ** 2, np.ones(frame), mode="same")
        cut = lo + int(np.argmin(energy[frame:-frame])) + frame
        pieces.append(audio[start:cut])
        start = cut
    pieces.append(audio[start:])
    return pieces


def load_speech_model(ref: str = "tiny-whisper", device: str = "cpu") -> SpeechModel:
    """``ref`` is "tiny-whisper" (the embedded model) or a local Whisper directory; ``device`` as for
    ``loader.resolve_device`` ("cpu", "cuda", "auto"). Weights are computed in float32."""
    path = str(TINY_WHISPER_DIR) if ref == "tiny-whisper" else ref
    processor = WhisperProcessor.from_pretrained(path)
    model = WhisperForConditionalGeneration.from_pretrained(path, dtype=torch.float32)
    model = model.to(resolve_device(device)).eval()
    model_id = "tiny-whisper" if ref == "tiny-whisper" else Path(ref.rstrip("/")).name or ref
    return SpeechModel(model, processor, model_id)
