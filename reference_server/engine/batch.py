"""Rows decoding together through one left-padded KV cache.

New requests are prefilled alone, then merged into the running batch by left-padding the shorter cache,
so a request joins at the next step instead of waiting for the batch to drain (continuous batching).
Each row keeps its own position ids; padding is masked out and trimmed once no row needs it.

A prompt may carry media (images, audio): its prompt ids hold a run of placeholders for each, and the prefill
feeds the model input embeddings in which those runs are replaced by the media's vectors (engine/media.py).
Rows without media in the same pass keep their plain token embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import DynamicCache, PreTrainedModel
from transformers.cache_utils import DynamicLayer


@dataclass
class Row:
    """One choice of one job inside a batch."""

    job: Any  # worker.Job; kept loose to avoid a cycle
    choice: int
    next_token: int  # sampled but not yet fed to the model
    length: int  # real (unpadded) tokens in this row's cache


def _pad_left(tensor: torch.Tensor, amount: int, dim: int) -> torch.Tensor:
    if amount == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = amount
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


Spans = Sequence[tuple[int, torch.Tensor]]  # (offset in the prompt, (tokens, hidden) vectors) of each media part


def _inputs(model: PreTrainedModel, ids: torch.Tensor, rows: Sequence[tuple[int, int, Spans]]) -> dict[str, Any]:
    """The model's input: ids, or (when any row has media) embeddings with each media's vectors written over its
    placeholders. `rows` lists (first row, row count, spans) per prompt, the spans' offsets being columns of `ids`
    (so a left-padded prompt's are shifted by its padding)."""
    if not any(spans for _, _, spans in rows):
        return {"input_ids": ids}
    embeds = model.get_input_embeddings()(ids)
    for first, count, spans in rows:
        for offset, vectors in spans:
            embeds[first:first + count, offset:offset + vectors.shape[0]] = vectors.to(embeds.dtype)
    return {"inputs_embeds": embeds}


def mergeable(cache: DynamicCache) -> bool:
    """Only plain full-attention layers can be padded and concatenated safely."""
    return all(type(layer) is DynamicLayer for layer in cache.layers)


class Batch:
    def __init__(self, cache: DynamicCache, mask: torch.Tensor, rows: list[Row]) -> None:
        self.cache = cache
        self.mask = mask  # (rows, cache length): 1 for real tokens, 0 for left padding
        self.rows = rows

    @property
    def width(self) -> int:
        return self.mask.shape[1]

    @classmethod
    def prefill(cls, model: PreTrainedModel, prompt: list[int], job: Any, n: int,
                media: Spans = ()) -> tuple["Batch", torch.Tensor]:
        """Run the prompt once; return a batch of `n` rows sharing that cache, and the last logits."""
        device = model.device
        ids = torch.tensor([prompt], device=device)
        cache = DynamicCache(config=model.config)
        out = model(**_inputs(model, ids, [(0, 1, media)]), past_key_values=cache, use_cache=True)
        logits = out.logits[:, -1, :].float()
        if n > 1:
            cache.batch_repeat_interleave(n)
            logits = logits.expand(n, -1)
        mask = torch.ones((n, len(prompt)), dtype=torch.long, device=device)
        rows = [Row(job=job, choice=c, next_token=-1, length=len(prompt)) for c in range(n)]
        return cls(cache, mask, rows), logits

    @classmethod
    def prefill_many(cls, model: PreTrainedModel, jobs: list[tuple[list[int], Any, int]],
                     pad_id: int, media: Sequence[Spans] | None = None) -> tuple["Batch", torch.Tensor]:
        """Run several prompts in one left-padded forward pass (one row per choice); return their batch and the
        last logits. Requests that arrive together cost one model call, not one each. `media[k]` are the media
        spans of `jobs[k]`."""
        media = media or [()] * len(jobs)
        if len(jobs) == 1 and jobs[0][2] >= 1:
            return cls.prefill(model, *jobs[0], media=media[0])
        device = model.device
        rows = [Row(job=job, choice=c, next_token=-1, length=len(prompt)) for prompt, job, n in jobs for c in range(n)]
        prompts = [prompt for prompt, _, n in jobs for _ in range(n)]
        width = max(len(p) for p in prompts)
        ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts], device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], dtype=torch.long, device=device)
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        placed, first = [], 0
        for (prompt, _, n), spans in zip(jobs, media):
            shift = width - len(prompt)  # left padding moves every offset right
            placed.append((first, n, [(shift + offset, vectors) for offset, vectors in spans]))
            first += n
        cache = DynamicCache(config=model.config)
        out = model(**_inputs(model, ids, placed), attention_mask=mask, position_ids=positions, past_key_values=cache,
                    use_cache=True)
        return cls(cache, mask, rows), out.logits[:, -1, :].float()

    def merge(self, other: "Batch") -> None:
        width = max(self.width, other.width)
        for batch in (self, other):
            extra = width - batch.width
            if extra:
                for layer in batch.cache.layers:
                    layer.keys = _pad_left(layer.keys, extra, dim=-2)
                    layer.values = _pad_left(layer.values, extra, dim=-2)
                batch.mask = _pad_left(batch.mask, extra, dim=1)
        for mine, theirs in zip(self.cache.layers, other.cache.layers):
            mine.keys = torch.cat([mine.keys, theirs.keys], dim=0)
            mine.values = torch.cat([mine.values, theirs.values], dim=0)
        self.mask = torch.cat([self.mask, other.mask], dim=0)
        self.rows.extend(other.rows)

    def step(self, model: PreTrainedModel) -> torch.Tensor:
        """Feed every row its pending token; return next-token logits, one row each."""
        device = self.mask.device
        ids = torch.tensor([[row.next_token] for row in self.rows], device=device)
        positions = torch.tensor([[row.length] for row in self.rows], device=device)
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(self.rows), 1))], dim=1)
        out = model(input_ids=ids, attention_mask=self.mask, position_ids=positions,
                    past_key_values=self.cache, use_cache=True)
        for row in self.rows:
            row.length += 1
        return out.logits[:, -1, :].float()

    def keep(self, indices: list[int]) -> None:
        """Drop every row not listed, then trim padding columns no remaining row needs."""
        if len(indices) != len(self.rows):
            index = torch.tensor(indices, dtype=torch.long, device=self.mask.device)
            self.cache.batch_select_indices(index)
            self.mask = self.mask.index_select(0, index)
            self.rows = [self.rows[i] for i in indices]
        if self.rows:
            unused = self.width - max(row.length for row in self.rows)
            if unused > 0:
                for layer in self.cache.layers:
                    layer.keys = layer.keys[..., unused:, :]
                    layer.values = layer.values[..., unused:, :]
                self.mask = self.mask[:, unused:]
