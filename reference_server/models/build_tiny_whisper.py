"""Recipe for the embedded speech-to-text model "tiny-whisper":
``python -m wirecheck.reference_server.models.build_tiny_whisper --out DIR``.

Builds everything locally, with no hub and no downloaded data:

1. audio from the seeded synthetic voice (``tiny_speech``): 1-5 words of its vocabulary, a fresh speaker, rate
   and noise floor per utterance, made on the fly so no two training samples are alike;
2. a character-level ``WhisperTokenizer``: the 256 byte-level symbols (any text round-trips) and no merges,
   then Whisper's special tokens in Whisper's order (``<|endoftext|>``, ``<|startoftranscript|>``, ``<|en|>``,
   ``<|translate|>``, ``<|transcribe|>``, ``<|startoflm|>``, ``<|startofprev|>``, ``<|nospeech|>``,
   ``<|notimestamps|>``), so text ids sit below ``<|endoftext|>`` as in every Whisper checkpoint;
3. a random-init ``WhisperForConditionalGeneration`` (d_model 96, 2 + 2 layers) on a 40-bin log-mel front end
   cropped / padded to ``CHUNK_S`` seconds instead of Whisper's 30;
4. a few minutes of AdamW on 2 CPU cores: cross-entropy on the transcript after Whisper's prompt
   ``<|startoftranscript|><|en|><|transcribe|><|notimestamps|>`` plus, on the encoder, an auxiliary CTC loss
   through a throw-away linear head (it teaches the encoder letter-sized units much sooner than cross-attention
   alone does). Some samples carry Whisper's previous-text prompt (``<|startofprev|>`` words) so that an API
   ``prompt`` is understood as context; some are noise only, with an empty transcript;
5. a Hugging Face directory that ``WhisperProcessor`` / ``WhisperForConditionalGeneration`` load as-is, and whose
   generation config drives ``model.generate(features, language="en", task="transcribe")`` too.

As in ``build_tiny``: float16 weights, ``config.json`` says float32; the report at the end loads the saved
directory through ``engine.speech`` and prints the word accuracy on held-out seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import AddedToken, pre_tokenizers
from transformers import (
    GenerationConfig, WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperProcessor,
    WhisperTokenizer,
)

from . import tiny_speech
from .build_tiny import learning_rate, save_half

N_MELS = 40  # enough to tell the voice's formant grid apart; half of Whisper's 80
CHUNK_S = 6  # seconds per window (Whisper: 30); five of the longest words take under 4.5 s
MAX_TARGET = 128  # decoder positions: prompt + 4 prefix tokens + transcript
MAX_PROMPT_TOKENS = 40  # previous-text prompt cap, as Whisper caps it at half its decoder positions
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>", "<|startoflm|>",
    "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>",
]
PREFIX = ["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]
TRAIN_SEED_BASE = 1_000_000  # training utterances use seeds from here up; anything below is unseen
EVAL_SEED_BASE = 500_000  # the held-out set of the build report
IGNORE = -100
GUIDED_HEADS = 2  # cross-attention heads per decoder layer taught where to listen (Whisper's "alignment heads")


# --- tokenizer, feature extractor, config -----------------------------------------------------------------


def build_tokenizer() -> WhisperTokenizer:
    vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    vocab.update({t: len(vocab) + i for i, t in enumerate(SPECIAL_TOKENS)})
    tok = WhisperTokenizer(vocab=vocab, merges=[], model_max_length=MAX_TARGET)
    tok.add_special_tokens({"additional_special_tokens": [AddedToken(t, special=True, normalized=False)
                                                          for t in SPECIAL_TOKENS[1:]]})
    tok.set_prefix_tokens(language="en", task="transcribe")  # what processor(text=...) puts around labels
    assert tok.convert_tokens_to_ids(SPECIAL_TOKENS) == list(range(256, 256 + len(SPECIAL_TOKENS)))
    return tok


def model_config(tok: WhisperTokenizer) -> WhisperConfig:
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    return WhisperConfig(
        vocab_size=len(tok),
        num_mel_bins=N_MELS,
        d_model=96,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=384,
        decoder_ffn_dim=384,
        max_source_positions=CHUNK_S * 100 // 2,  # 100 mel frames a second, halved by the second conv
        max_target_positions=MAX_TARGET,
        decoder_start_token_id=tok.convert_tokens_to_ids("<|startoftranscript|>"),
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        suppress_tokens=[],
        begin_suppress_tokens=[tok.convert_tokens_to_ids("Ġ")],  # a transcript never starts with a space
        dtype="float32",
        text_alphabet=tiny_speech.ALPHABET + " ",  # what it reads and writes; engine.speech filters prompts by it
    )


def generation_config(tok: WhisperTokenizer, config: WhisperConfig) -> GenerationConfig:
    """What ``WhisperForConditionalGeneration.generate`` needs to build Whisper's prompt from language / task."""
    ids = tok.convert_tokens_to_ids
    return GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        max_length=MAX_TARGET,
        begin_suppress_tokens=config.begin_suppress_tokens,
        suppress_tokens=[],
        is_multilingual=True,
        lang_to_id={"<|en|>": ids("<|en|>")},
        task_to_id={"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")},
        no_timestamps_token_id=ids("<|notimestamps|>"),
        prev_sot_token_id=ids("<|startofprev|>"),
        max_initial_timestamp_index=50,
    )


# --- data -------------------------------------------------------------------------------------------------


class Utterance(NamedTuple):
    text: str
    audio: np.ndarray
    spans: list[tuple[int, int]]  # sample span of each character of text


def utterance(seed: int, empty_rate: float) -> Utterance:
    """Training / evaluation sample for ``seed``: usually 1-5 words, sometimes noise alone and no text."""
    if random.Random(seed).random() < empty_rate:
        noise = np.random.default_rng(seed).standard_normal(int(16000 * random.Random(seed).uniform(0.3, 3)))
        return Utterance("", (noise * 0.01).astype(np.float32), [])
    text = tiny_speech.sample_text(seed)
    return Utterance(text, *tiny_speech.render(text, seed))


class Batcher(torch.utils.data.IterableDataset):
    """Makes training batches: log-mel features, decoder inputs and targets, CTC targets and attention guides.
    Iterating yields the batches of ``args.steps`` steps; the seeds of step ``s`` are fixed, so the batches do
    not depend on how many workers make them."""

    def __init__(self, tok: WhisperTokenizer, fe: WhisperFeatureExtractor, args: argparse.Namespace) -> None:
        self.tok, self.fe, self.args = tok, fe, args
        self.prefix = tok.convert_tokens_to_ids(PREFIX)
        self.prev = tok.convert_tokens_to_ids("<|startofprev|>")
        self.eot = tok.convert_tokens_to_ids("<|endoftext|>")
        self.frame = fe.hop_length * 2  # samples per encoder position (the second conv has stride 2)
        self.frames = fe.nb_max_frames // 2

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        size = self.args.batch
        for step in range(self.args.steps):
            yield self([TRAIN_SEED_BASE + step * size + i for i in range(size)])

    def text_ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False).input_ids

    def __call__(self, seeds: list[int]) -> dict[str, torch.Tensor]:
        utts = [utterance(s, self.args.empty_rate) for s in seeds]
        features = self.fe([u.audio for u in utts], sampling_rate=16000, return_tensors="pt").input_features
        rows: list[tuple[list[int], list[int], list[tuple[int, int]]]] = []
        for seed, utt in zip(seeds, utts):
            ids = self.text_ids(utt.text)
            assert len(ids) == len(utt.spans)  # one token per character
            prompt: list[int] = []
            if random.Random(seed + 7).random() < self.args.prompt_rate:
                prompt = [self.prev] + self.text_ids(" " + tiny_speech.sample_text(seed + 1, 1, 8))[:MAX_PROMPT_TOKENS]
            # Loss on the transcript and <|endoftext|> only; the prompt and the prefix are given.
            given = len(prompt) + len(self.prefix) - 1
            # Where each target is heard, in encoder positions: its character's span; <|endoftext|> the silence
            # after the last one. Noise-only samples get no guide.
            spans = [(a // self.frame, -(-b // self.frame)) for a, b in utt.spans]
            spans += [(spans[-1][1], self.frames)] if spans else []
            rows.append((prompt + self.prefix + ids, [IGNORE] * given + ids + [self.eot], [(0, 0)] * given + spans))
        width = max(len(i) for i, _, _ in rows)
        dec = torch.full((len(rows), width), self.eot, dtype=torch.long)
        lab = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        guide = torch.zeros((len(rows), width, self.frames))
        for r, (i, l, spans) in enumerate(rows):
            dec[r, :len(i)], lab[r, :len(l)] = torch.tensor(i), torch.tensor(l)
            for pos, (a, b) in enumerate(spans):
                guide[r, pos, a:b] = 1.0
        # The character heard at each encoder position; silence (before, between stops' parts, after) is
        # <|endoftext|>.
        heard = torch.full((len(rows), self.frames), self.eot, dtype=torch.long)
        for r, utt in enumerate(utts):
            for token, (a, b) in zip(self.text_ids(utt.text), utt.spans):
                heard[r, -(-a // self.frame):b // self.frame] = token
        return {"features": features, "decoder_input_ids": dec, "labels": lab, "guide": guide, "heard": heard}


# --- training ---------------------------------------------------------------------------------------------


def losses(model: WhisperForConditionalGeneration, frame_head: torch.nn.Linear,
           batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cross-entropy of the transcript; cross-entropy of the character heard at each encoder position (through
    a throw-away linear head); and the guide loss: minus the log of the attention mass that the
    ``GUIDED_HEADS`` of every decoder layer put on the positions where the next character is heard."""
    encoded = model.model.encoder(batch["features"]).last_hidden_state
    decoded = model.model.decoder(input_ids=batch["decoder_input_ids"], encoder_hidden_states=encoded,
                                  output_attentions=True)
    logits = model.proj_out(decoded.last_hidden_state)
    ce = F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=IGNORE)
    frame = F.cross_entropy(frame_head(encoded).flatten(0, 1), batch["heard"].flatten())
    guided = torch.stack([a[:, :GUIDED_HEADS] for a in decoded.cross_attentions]).mean(dim=(0, 2))  # (B, T, S)
    mass = (guided * batch["guide"]).sum(-1)
    target = batch["guide"].sum(-1) > 0
    guide = -torch.log(mass[target] + 1e-6).mean()
    return ce, frame, guide


def train(model: WhisperForConditionalGeneration, batcher: Batcher, args: argparse.Namespace) -> float:
    frame_head = torch.nn.Linear(model.config.d_model, model.config.vocab_size)
    params = list(model.parameters()) + list(frame_head.parameters())
    optimizer = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    model.set_attn_implementation("eager")  # the only one that returns attention weights (for the guide loss)
    model.train()
    started, smoothed = time.time(), float("nan")
    # One worker makes the audio while the main process trains: synthesis then costs little wall time.
    batches = torch.utils.data.DataLoader(batcher, batch_size=None, num_workers=1, prefetch_factor=4)
    for step, batch in enumerate(batches):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args.steps, args.lr)
        ce, frame, guide = losses(model, frame_head, batch)
        loss = ce + args.frame_weight * frame + args.guide_weight * guide
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        smoothed = ce.item() if math.isnan(smoothed) else 0.95 * smoothed + 0.05 * ce.item()
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:5d}  ce {ce.item():.4f}  frame {frame.item():.4f}  guide {guide.item():.4f}  "
                  f"smoothed ce {smoothed:.4f}  {time.time() - started:6.1f}s", flush=True)
    model.eval()
    model.set_attn_implementation("sdpa")
    return smoothed


# --- output -----------------------------------------------------------------------------------------------


def save(out: Path, model: WhisperForConditionalGeneration, processor: WhisperProcessor) -> None:
    save_half(out, model)
    processor.save_pretrained(out)
    config_path = out / "config.json"
    config = json.loads(config_path.read_text())
    assert config.get("dtype", "float32") == "float32", config.get("dtype")


def report(out: Path, samples: int) -> None:
    """Load the saved directory the way the server does; word accuracy on held-out seeds and a few examples."""
    from ..engine.speech import load_speech_model

    speech = load_speech_model(str(out))
    errors = total = exact = 0
    started = time.time()
    audio_s = 0.0
    for i in range(samples):
        text, audio, _ = utterance(EVAL_SEED_BASE + i, empty_rate=0.0)
        result = speech.transcribe(audio, language=None, temperature=0.0, prompt=None)
        audio_s += result.duration
        errors += tiny_speech.word_errors(text, result.text)
        total, exact = total + len(text.split()), exact + (text == result.text)
        if i < 8:
            print(f"  {text!r:44} -> {result.text!r}")
    elapsed = time.time() - started
    print(f"held-out: word accuracy {1 - errors / total:.3f} ({errors} errors in {total} words), exact {exact}/{samples}, "
          f"{elapsed / samples * 1000:.0f} ms per utterance ({audio_s / elapsed:.0f}x real time)")
    # The saved generation config also drives Hugging Face's own Whisper generate.
    processor = WhisperProcessor.from_pretrained(out)
    text, audio, _ = utterance(EVAL_SEED_BASE, empty_rate=0.0)
    features = processor(audio, sampling_rate=16000, return_tensors="pt").input_features
    ids = speech.model.generate(features, language="en", task="transcribe", max_new_tokens=64)
    print(f"generate(): {text!r} -> {processor.batch_decode(ids, skip_special_tokens=True)[0]!r}")


def build(args: argparse.Namespace) -> None:
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    started = time.time()
    tok = build_tokenizer()
    fe = WhisperFeatureExtractor(feature_size=N_MELS, chunk_length=CHUNK_S)
    config = model_config(tok)
    model = WhisperForConditionalGeneration(config)
    model.generation_config = generation_config(tok, config)
    print(f"model: {sum(p.numel() for p in model.parameters())} parameters, vocab {len(tok)}", flush=True)
    loss = train(model, Batcher(tok, fe, args), args)
    print(f"trained {args.steps} steps, final smoothed ce {loss:.4f}, total {time.time() - started:.0f}s")
    save(args.out, model, WhisperProcessor(feature_extractor=fe, tokenizer=tok))
    for path in sorted(args.out.iterdir()):
        print(f"  {path.name:28s} {path.stat().st_size:9d} bytes")
    report(args.out, args.eval_samples)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory (created)")
    parser.add_argument("--steps", type=int, default=1500, help="optimizer steps in all")
    parser.add_argument("--batch", type=int, default=32, help="utterances per step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    parser.add_argument("--frame-weight", type=float, default=0.5, help="weight of the encoder's per-frame loss")
    parser.add_argument("--guide-weight", type=float, default=1.0, help="weight of the cross-attention guide loss")
    parser.add_argument("--prompt-rate", type=float, default=0.2, help="share of samples with a previous-text prompt")
    parser.add_argument("--empty-rate", type=float, default=0.03, help="share of noise-only samples")
    parser.add_argument("--eval-samples", type=int, default=200, help="held-out utterances in the report")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    build(parse_args(argv))


if __name__ == "__main__":
    main()
