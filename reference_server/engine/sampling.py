"""Next-token selection for a batch of rows, each with its own parameters.

Logprobs report the raw model distribution (before penalties, bias, temperature and truncation), as vLLM
does by default; the sampled token is drawn from the processed distribution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from .types import SamplingParams, TokenLogprob, TopLogprob
from .detok import token_text

if TYPE_CHECKING:
    from .closure import BudgetGuard
    from .grammar import Matcher

RESAMPLES = 8  # draws per step when the guard refuses a token (a key written twice) before it closes instead


@dataclass
class RowSampler:
    """Per-row sampling state: the request's parameters plus what this row generated so far."""

    params: SamplingParams
    eos_ids: tuple[int, ...]
    generator: torch.Generator | None
    counts: torch.Tensor | None = None  # token counts for penalties, allocated lazily
    generated: int = 0
    bias: torch.Tensor | None = field(default=None, repr=False)
    matcher: Matcher | None = field(default=None, repr=False)  # constrained decoding (grammar.py)
    guard: BudgetGuard | None = field(default=None, repr=False)  # closes JSON within the budget (closure.py)
    # What went wrong in this row's own work (its grammar, guard or draw): the engine fails this row's request
    # alone, so one hostile request cannot end the streams it was batched with.
    failure: Exception | None = None

    def fail(self, exc: Exception) -> None:
        """Record what went wrong; the first failure is the one the request reports."""
        self.failure = self.failure or exc

    @property
    def penalised(self) -> bool:
        return bool(self.params.frequency_penalty or self.params.presence_penalty)


def make_row(params: SamplingParams, eos_ids: tuple[int, ...], choice: int, vocab: int,
             device: torch.device, guard: BudgetGuard | None = None) -> RowSampler:
    generator = None
    if not params.greedy and params.seed is not None:
        # Each choice gets its own stream so n > 1 with a seed still gives distinct, reproducible choices.
        generator = torch.Generator(device="cpu")
        generator.manual_seed((params.seed + 1_000_003 * choice) & 0xFFFF_FFFF_FFFF_FFFF)
    bias = None
    if params.logit_bias:
        bias = torch.zeros(vocab, device=device)
        for token_id, value in params.logit_bias.items():
            if 0 <= token_id < vocab:
                bias[token_id] = float(value)
    matcher = params.grammar.matcher() if params.grammar is not None else None
    return RowSampler(params=params, eos_ids=eos_ids, generator=generator, bias=bias, matcher=matcher,
                      guard=guard if matcher is not None else None)


def _apply_top_k_top_p(logits: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    vocab = logits.shape[-1]
    ranks = torch.arange(vocab, device=logits.device).expand_as(sorted_logits)
    k = torch.where(top_k > 0, top_k, torch.full_like(top_k, vocab)).unsqueeze(-1)
    drop = ranks >= k
    probs = torch.softmax(sorted_logits.masked_fill(drop, float("-inf")), dim=-1)
    before = torch.cumsum(probs, dim=-1) - probs  # mass strictly above each token
    drop |= (before >= top_p.unsqueeze(-1)) & (ranks > 0)  # the most likely token always stays (top_p 0)
    sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)


def process_logits(logits: torch.Tensor, rows: list[RowSampler]) -> torch.Tensor:
    """Penalties (OpenAI's additive form), logit_bias and min_tokens' EOS ban; returns new logits."""
    out = logits.clone()
    for i, row in enumerate(rows):
        if row.penalised and row.counts is not None:
            p = row.params
            out[i] -= p.frequency_penalty * row.counts + p.presence_penalty * (row.counts > 0).float()
        if row.bias is not None:
            out[i] += row.bias
        if row.generated < row.params.min_tokens and row.eos_ids:
            out[i, list(row.eos_ids)] = float("-inf")
        if row.matcher is not None and row.failure is None:
            try:
                _constrain(out, i, row)
            except Exception as exc:  # noqa: BLE001 - the row fails, the batch goes on
                _failed(row, exc, out[i])
    return out


def _failed(row: RowSampler, exc: Exception, logits: torch.Tensor) -> None:
    """Mark the row failed; its logits become finite so the batch's vector work stays valid."""
    row.fail(exc)
    logits.fill_(0.0)


def _constrain(out: torch.Tensor, i: int, row: RowSampler) -> None:
    """Ban what the row's grammar forbids next; EOS only once the grammar accepts (forced once it stops)."""
    matcher = row.matcher
    assert matcher is not None
    eos = list(row.eos_ids)
    if matcher.stopped:  # complete (or in error): nothing but the end may follow
        allowed = torch.zeros(out.shape[-1], dtype=torch.bool)
        allowed[eos] = True
    else:
        allowed = torch.from_numpy(matcher.mask())
        if eos:
            allowed[eos] = matcher.accepting
        if not bool(allowed.any()):  # a dead end (a $ref cycle deep in a schema): end the row, never sample nothing
            allowed[eos] = True
    allowed = allowed.to(out.device)
    out[i].masked_fill_(~allowed, float("-inf"))
    if not bool(torch.isfinite(out[i]).any()):  # bias or min_tokens banned every allowed token
        out[i].masked_fill_(allowed, 0.0)


def _draw(processed: torch.Tensor, rows: list[RowSampler], which: list[int]) -> dict[int, int]:
    """A token for each row index in `which` from its processed logits: argmax when greedy, else sampled."""
    chosen = {i: int(processed[i].argmax()) for i in which if rows[i].params.greedy}
    sampled = [i for i in which if not rows[i].params.greedy]
    if sampled:
        device = processed.device
        sub = processed.index_select(0, torch.tensor(sampled, device=device))
        temps = torch.tensor([rows[i].params.temperature for i in sampled], device=device)
        top_k = torch.tensor([rows[i].params.top_k for i in sampled], device=device)
        top_p = torch.tensor([rows[i].params.top_p for i in sampled], device=device)
        sub = _apply_top_k_top_p(sub / temps.unsqueeze(-1), top_k, top_p)
        probs = torch.softmax(sub.float(), dim=-1).cpu()
        for j, i in enumerate(sampled):
            try:
                chosen[i] = int(torch.multinomial(probs[j], 1, generator=rows[i].generator))
            except RuntimeError as exc:  # no finite probability left in this row
                rows[i].fail(exc)
                chosen[i] = 0
    return chosen


def _guarded(processed: torch.Tensor, rows: list[RowSampler], i: int, token: int) -> int:
    """The row's guard vets the drawn token: kept, replaced by a forced one, or drawn again without it."""
    row = rows[i]
    assert row.guard is not None
    allowed = lambda t: bool(torch.isfinite(processed[i, t]))  # noqa: E731 - the grammar's mask, as applied
    for _ in range(RESAMPLES):
        vetted = row.guard.vet(token, row.generated, allowed)
        if vetted != row.guard.RESAMPLE:
            return vetted
        processed[i, token] = float("-inf")
        if not bool(torch.isfinite(processed[i]).any()):
            break
        token = _draw(processed, rows, [i])[i]
    return row.guard.close_now(row.params.max_tokens - row.generated, allowed, token)


def choose(logits: torch.Tensor, rows: list[RowSampler]) -> list[int]:
    """One token per row: greedy rows take the argmax; the others sample with their own generator."""
    processed = process_logits(logits, rows)
    drawn = _draw(processed, rows, list(range(len(rows))))
    tokens = []
    for i, row in enumerate(rows):
        token = drawn[i]
        if row.guard is not None and row.failure is None:
            try:
                token = _guarded(processed, rows, i, token)
            except Exception as exc:  # noqa: BLE001 - the row fails, the batch goes on
                row.fail(exc)
        tokens.append(token)
    for row, token in zip(rows, tokens):
        row.generated += 1
        if row.matcher is not None and token not in row.eos_ids and row.failure is None:
            row.matcher.consume(token)
        if row.penalised:
            if row.counts is None:
                row.counts = torch.zeros(logits.shape[-1], device=logits.device)
            row.counts[token] += 1
    return tokens


def token_logprobs(logits: torch.Tensor, rows: list[RowSampler], tokens: list[int],
                   table: list[bytes]) -> list[TokenLogprob | None]:
    """Raw-distribution logprob of each chosen token and its top alternatives, for rows that asked."""
    wanted = [i for i, row in enumerate(rows) if row.params.logprobs]
    result: list[TokenLogprob | None] = [None] * len(rows)
    if not wanted:
        return result
    logp = torch.log_softmax(logits.index_select(0, torch.tensor(wanted, device=logits.device)).float(), -1)
    k = max(rows[i].params.top_logprobs for i in wanted)
    top_vals, top_ids = (logp.topk(k, dim=-1) if k else (None, None))
    logp_cpu = logp.cpu()
    for j, i in enumerate(wanted):
        token = tokens[i]
        top: list[TopLogprob] = []
        if top_vals is not None:
            for value, tid in list(zip(top_vals[j].tolist(), top_ids[j].tolist()))[: rows[i].params.top_logprobs]:
                top.append(TopLogprob(token_text(table[tid]), max(value, -9999.0), list(table[tid])))
        raw = table[token]
        result[i] = TokenLogprob(token_text(raw), max(float(logp_cpu[j, token]), -9999.0), list(raw), top)
    return result
