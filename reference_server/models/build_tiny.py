"""Recipe for the embedded default model "tiny": ``python -m wirecheck.reference_server.models.build_tiny --out DIR``.

Builds everything locally, with no hub and no downloaded data:

1. a seeded synthetic corpus of chats and plain text (``tiny_corpus``), rendered with our chat template;
2. a byte-level BPE tokenizer trained on it (any Unicode round-trips; ``<tool_call>`` markup is one token;
   spaces trail words, see ``PRE_TOKEN_PATTERN``);
3. a random-init 2-layer Llama model (head_dim 32, the smallest size vLLM's attention backends accept);
4. about four minutes of AdamW on 2 CPU cores: a short echo-only warm-up so copy heads form early, then the
   full mixture; loss on assistant tokens only (plus whole plain-text documents);
5. a Hugging Face directory that ``AutoTokenizer`` / ``AutoModelForCausalLM`` load as-is.

Weights are stored as float16 to halve the file, while ``config.json`` says float32, so every loader computes
in float32 on the same (rounded) weights; the smoke report at the end loads the saved directory. The result
is deterministic for a given seed, torch build and thread count. A model this small is sensitive to every
setting (steps, seed, mixture): after changing one, rerun ``tests/test_tiny_model.py`` on the new directory
and compare greedy outputs before committing it.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from transformers.utils.chat_template_utils import render_jinja_template

from . import tiny_corpus
from .tiny_template import (
    ASSISTANT_PREFIX, BOS_TOKEN, CHAT_TEMPLATE, IM_END, RESPONSE_TEMPLATE, SPECIAL_TOKENS, TOOL_CALL_TOKENS,
)

VOCAB_SIZE = 1024  # BPE merges + 3 special + 2 tool-call tokens; small, so the embedding stays small
MAX_POSITIONS = 2048  # the served context window
MAX_TRAIN_TOKENS = 512  # longer samples are dropped from training
IGNORE = -100  # label of tokens that carry no loss
# Pre-tokens: a word (letters, combining marks, underscores) or a run of symbols, each with at most one
# *trailing* space; a single digit; or a run of whitespace. GPT-2 glues the space to the *next* word, so
# "Paris" in `weather in Paris?` (" Paris") and in `{"city": "Paris"}` ("Paris") would be different tokens,
# as would the first word of `Echo: hello` and of the reply `hello`. With trailing spaces both sides are
# the same tokens, and a model this small can copy them with plain induction heads. Underscores stay
# inside words so that a function name such as `get_current_weather` is copied as a few word pieces from
# the tools block, not as pieces joined by `_` tokens that occur in every other name too.
PRE_TOKEN_PATTERN = r"[\p{L}\p{M}_]+ ?|\p{N}|[^\s\p{L}\p{M}\p{N}_]+ ?|\s+"

Segments = list[tuple[str, bool]]  # (text, is_target) pieces of one training sample
Example = tuple[list[int], list[int]]  # (input ids, labels) of one training sample


# --- corpus -> text ---------------------------------------------------------------------------------------


def render(sample: tiny_corpus.Sample) -> Segments:
    """Split a sample into pieces that do / do not carry loss.

    In a chat only the assistant turns are learnt: everything after ``<|im_start|>assistant\\n`` up to and
    including ``<|im_end|>``. A plain-text document is learnt whole and ends with ``<|endoftext|>`` so that
    raw completions also stop.
    """
    if isinstance(sample, str):
        return [(sample + BOS_TOKEN, True)]
    text = render_jinja_template([sample.messages], tools=sample.tools, chat_template=CHAT_TEMPLATE)[0][0]
    segments: Segments = []
    pos = 0
    while (start := text.find(ASSISTANT_PREFIX, pos)) != -1:
        start += len(ASSISTANT_PREFIX)
        end = text.index(IM_END, start) + len(IM_END)
        segments += [(text[pos:start], False), (text[start:end], True)]
        pos = end
    segments.append((text[pos:], False))
    return [s for s in segments if s[0]]


# --- tokenizer --------------------------------------------------------------------------------------------


def train_tokenizer(texts: list[str], vocab_size: int) -> Tokenizer:
    """Byte-level BPE. Special and tool-call markers are removed from the training text (they are whole
    tokens anyway) so no merges are wasted on them."""
    markers = SPECIAL_TOKENS + TOOL_CALL_TOKENS

    def clean(text: str) -> str:
        for marker in markers:
            text = text.replace(marker, "\n")
        return text

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRE_TOKEN_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(TOOL_CALL_TOKENS),
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,  # ids 0, 1, 2
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: nothing is ever unknown
        show_progress=False,
    )
    tokenizer.train_from_iterator((clean(t) for t in texts), trainer)
    # Not special: decoding with skip_special_tokens must keep tool-call markup visible.
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in TOOL_CALL_TOKENS])
    assert tokenizer.get_vocab_size() == vocab_size
    return tokenizer


def encode(tokenizer: Tokenizer, segments: Segments) -> Example:
    """Token ids and labels. Segment borders sit at pre-tokenizer borders (a newline or a special token),
    so encoding piecewise gives the same ids as encoding the whole text (checked in ``build``)."""
    ids: list[int] = []
    labels: list[int] = []
    for text, is_target in segments:
        piece = tokenizer.encode(text, add_special_tokens=False).ids
        ids += piece
        labels += piece if is_target else [IGNORE] * len(piece)
    return ids, labels


def hf_tokenizer(tokenizer: Tokenizer) -> PreTrainedTokenizerFast:
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS_TOKEN,
        eos_token=IM_END,
        pad_token=BOS_TOKEN,
        model_max_length=MAX_POSITIONS,
        clean_up_tokenization_spaces=False,
    )
    hf.chat_template = CHAT_TEMPLATE
    hf.response_template = RESPONSE_TEMPLATE
    return hf


# --- model ------------------------------------------------------------------------------------------------


def model_config(vocab_size: int, tokenizer: Tokenizer) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=96,
        intermediate_size=192,
        num_hidden_layers=2,
        num_attention_heads=3,
        num_key_value_heads=3,
        head_dim=32,  # vLLM (CPU, triton, flash-attn) needs >= 32
        max_position_embeddings=MAX_POSITIONS,
        rms_norm_eps=1e-6,
        # Wider than the usual 0.02: attention scores start less uniform, and the copy ("induction")
        # heads that echo and tool arguments need form several times sooner in this tiny model.
        initializer_range=0.05,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.token_to_id(BOS_TOKEN),
        eos_token_id=tokenizer.token_to_id(IM_END),
        pad_token_id=tokenizer.token_to_id(BOS_TOKEN),
        dtype="float32",
    )


def make_batches(examples: list[Example], batch_tokens: int, rng: random.Random) -> list[list[int]]:
    """Index batches of similar length (little padding), each about ``batch_tokens`` tokens padded."""
    order = list(range(len(examples)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    for start in range(0, len(order), 4096):  # sort within chunks: similar lengths, still well mixed
        chunk = sorted(order[start:start + 4096], key=lambda i: len(examples[i][0]))
        batch: list[int] = []
        for i in chunk:
            if batch and (len(batch) + 1) * len(examples[i][0]) > batch_tokens:
                batches.append(batch)
                batch = []
            batch.append(i)
        if batch:
            batches.append(batch)
    rng.shuffle(batches)
    return batches


def collate(examples: list[Example], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, (ids, lab) in enumerate(examples):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(lab)] = torch.tensor(lab)
        mask[row, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def learning_rate(step: int, steps: int, peak: float) -> float:
    """Linear warm-up over 5% of the steps, then cosine decay to 10% of the peak."""
    warmup = max(1, steps // 20)
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train(model: LlamaForCausalLM, warmup: list[Example], examples: list[Example], args: argparse.Namespace,
          pad_id: int) -> float:
    """AdamW; the first ``args.copy_warmup`` steps on ``warmup`` (pure copying), the rest on ``examples``."""
    rng = random.Random(args.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    batches: list[list[int]] = []
    model.train()
    started, smoothed = time.time(), float("nan")
    for step in range(args.steps):
        source = warmup if step < args.copy_warmup else examples
        if step == args.copy_warmup:
            batches = []
        if not batches:  # a new pass over the source
            batches = make_batches(source, args.batch_tokens, rng)
        batch = collate([source[i] for i in batches.pop()], pad_id)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args.steps, args.lr)
        loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        smoothed = loss.item() if math.isnan(smoothed) else 0.95 * smoothed + 0.05 * loss.item()
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:5d}  loss {loss.item():.4f}  smoothed {smoothed:.4f}  {time.time() - started:6.1f}s",
                  flush=True)
    model.eval()
    return smoothed


# --- output -----------------------------------------------------------------------------------------------


def save_half(out: Path, model: torch.nn.Module) -> None:
    """``save_pretrained`` with float16 weights: half the bytes; config.json keeps "float32", so loaders compute
    in float32 on these exact values."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)  # type: ignore[operator]
    weights = out / "model.safetensors"
    save_file({k: v.to(torch.float16) for k, v in load_file(weights).items()}, weights, metadata={"format": "pt"})


def save(out: Path, model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast) -> None:
    save_half(out, model)
    GenerationConfig(
        bos_token_id=model.config.bos_token_id,
        # <|im_end|> ends a chat turn; <|endoftext|> ends a plain-text document (raw completions).
        eos_token_id=[model.config.eos_token_id, model.config.bos_token_id],
        pad_token_id=model.config.pad_token_id,
    ).save_pretrained(out)
    tokenizer.save_pretrained(out)
    config_path = out / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    # Our tokenizer.json must be used as-is: no model-specific tokenizer class rebuilding its pre-tokenizer.
    config["tokenizer_class"] = "TokenizersBackend"
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")


SMOKE_CHATS: list[tuple[list[dict], list[dict] | None]] = [
    ([{"role": "user", "content": "Echo: hello brave new world"}], None),
    ([{"role": "user", "content": "What is the weather in Paris?"}],
     [{"type": "function", "function": {"name": "get_weather", "description": "Get the current weather for a city.",
       "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]),
    ([{"role": "user", "content": "Weather in Oslo?"},
      {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "get_weather",
                                                                             "arguments": {"city": "Oslo"}}}]},
      {"role": "tool", "content": '{"temperature": 12, "unit": "celsius", "condition": "rainy"}'}],
     [{"type": "function", "function": {"name": "get_weather", "parameters": {
         "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]),
    ([{"role": "user", "content": "Hello"}], None),
    ([{"role": "user", "content": "Write a detailed essay about the history of the Roman empire."}], None),
    ([{"role": "user", "content": "¿Dónde está la biblioteca? 📚"}], None),
    ([{"role": "user", "content": "qwertz uiop asdf"}], None),
]


def smoke_report(out: Path) -> None:
    """Load the saved directory the way a server does and print a few greedy answers."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    print(f"loaded: {type(tok).__name__}, {type(model).__name__}, dtype {model.dtype}, "
          f"{sum(p.numel() for p in model.parameters())} parameters")
    for messages, tools in SMOKE_CHATS:
        prompt = tok.apply_chat_template(messages, tools=tools, add_generation_prompt=True, return_dict=True,
                                         return_tensors="pt")
        with torch.no_grad():
            output = model.generate(**prompt, max_new_tokens=48, do_sample=False)
        new = output[0, prompt["input_ids"].shape[1]:]
        print(f"{messages[-1].get('content')!r:.60} -> [{len(new)} tok] {tok.decode(new)!r}")
    for text in ["The capital of France is", "Once upon a time"]:
        ids = tok(text, return_tensors="pt")
        with torch.no_grad():
            output = model.generate(**ids, max_new_tokens=32, do_sample=False)
        print(f"{text!r} -> {tok.decode(output[0, ids['input_ids'].shape[1]:])!r}")


def build(args: argparse.Namespace) -> None:
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    started = time.time()
    samples = tiny_corpus.generate(args.samples, args.seed)
    rendered = [render(s) for s in samples]
    tokenizer = train_tokenizer(["".join(t for t, _ in segs) for segs in rendered], VOCAB_SIZE)
    examples = [encode(tokenizer, segs) for segs in rendered]
    for segs, (ids, _) in list(zip(rendered, examples))[:500]:
        assert ids == tokenizer.encode("".join(t for t, _ in segs), add_special_tokens=False).ids
    examples = [e for e in examples if len(e[0]) <= MAX_TRAIN_TOKENS]
    warmup = [encode(tokenizer, render(chat)) for chat in tiny_corpus.copy_warmup(args.samples // 4, args.seed + 1)]
    n_tokens = sum(len(ids) for ids, _ in examples)
    print(f"corpus: {len(examples)} samples, {n_tokens} tokens (+{len(warmup)} warm-up chats), "
          f"{time.time() - started:.1f}s", flush=True)

    model = LlamaForCausalLM(model_config(VOCAB_SIZE, tokenizer))
    print(f"model: {sum(p.numel() for p in model.parameters())} parameters", flush=True)
    loss = train(model, warmup, examples, args, pad_id=tokenizer.token_to_id(BOS_TOKEN))
    print(f"trained {args.steps} steps, final smoothed loss {loss:.4f}, total {time.time() - started:.0f}s")
    save(args.out, model, hf_tokenizer(tokenizer))
    for path in sorted(args.out.iterdir()):
        print(f"  {path.name:28s} {path.stat().st_size:9d} bytes")
    smoke_report(args.out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory (created)")
    parser.add_argument("--steps", type=int, default=6000, help="optimizer steps in all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=40000, help="synthetic samples generated")
    parser.add_argument("--batch-tokens", type=int, default=1024,
                        help="padded tokens per batch (small batches, many steps: copying is learnt sooner)")
    parser.add_argument("--copy-warmup", type=int, default=800, help="first steps on echo-only chats")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    build(parse_args(argv))


if __name__ == "__main__":
    main()
