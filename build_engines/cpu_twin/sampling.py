"""Choosing each request's next token from its logits, as TensorRT-LLM's sampling layers do.

Penalties follow TensorRT-LLM: over every token the request has seen (prompt and generated),
repetition divides positive logits and multiplies negative ones, presence subtracts once per
distinct token, frequency subtracts once per occurrence. Then a request is decoded greedily,
or sampled with temperature, top-k and top-p from its own generator, so a seed reproduces
the same tokens whatever else is in the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class SamplingParams:
    """`greedy` is decided when the request is read: no temperature/top-k/top-p given,
    temperature 0, or top-k 1. `top_k` 0 and `top_p` 1 mean no filtering."""

    greedy: bool = True
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0

    @property
    def has_penalties(self) -> bool:
        return (
            self.repetition_penalty != 1.0
            or self.presence_penalty != 0.0
            or self.frequency_penalty != 0.0
        )

    @property
    def filters(self) -> bool:
        return self.top_k > 0 or self.top_p < 1.0


class RequestSampler:
    """One request's sampling state: its parameters, generator and token counts."""

    def __init__(self, params: SamplingParams, vocab_size: int, prompt: Sequence[int]) -> None:
        self.params = params
        self.rng = np.random.default_rng(params.seed)
        self._counts: npt.NDArray[np.int32] | None = None
        if params.has_penalties:
            self._counts = np.bincount(np.asarray(prompt), minlength=vocab_size).astype(np.int32)

    def observe(self, token: int) -> None:
        if self._counts is not None:
            self._counts[token] += 1

    def penalize(self, logits: FloatArray) -> None:
        """Apply repetition, presence and frequency penalties to one row, in place."""
        if self._counts is None:
            return
        params = self.params
        seen = self._counts > 0
        if params.repetition_penalty != 1.0:
            row = logits[seen]
            logits[seen] = np.where(
                row > 0, row / params.repetition_penalty, row * params.repetition_penalty
            )
        if params.presence_penalty != 0.0:
            logits[seen] -= np.float32(params.presence_penalty)
        if params.frequency_penalty != 0.0:
            logits -= np.float32(params.frequency_penalty) * self._counts


def choose_tokens(
    logits: FloatArray,
    samplers: Sequence[RequestSampler],
    banned: Sequence[Sequence[int]] | None = None,
) -> npt.NDArray[np.int64]:
    """Next token of every row of `logits` (batch, vocab), which this function may modify.

    `banned[i]` lists tokens row i may not produce (bad words, end_id before min_tokens).
    """
    for row, sampler in enumerate(samplers):
        sampler.penalize(logits[row])
        if banned is not None and banned[row]:
            logits[row, list(banned[row])] = -np.inf
    tokens = np.empty(len(samplers), dtype=np.int64)
    greedy_rows = [row for row, sampler in enumerate(samplers) if sampler.params.greedy]
    if greedy_rows:
        tokens[greedy_rows] = np.argmax(logits[greedy_rows], axis=1)
    sampled_rows = [row for row, sampler in enumerate(samplers) if not sampler.params.greedy]
    if sampled_rows:
        chosen = [samplers[row] for row in sampled_rows]
        tokens[sampled_rows] = _sample_rows(logits[sampled_rows], chosen)
    return tokens


def _sample_rows(logits: FloatArray, samplers: Sequence[RequestSampler]) -> npt.NDArray[np.int64]:
    """Temperature, then top-k and top-p, then one uniform draw per request from its own
    generator, inverted through the cumulative distribution.

    With filters, each row is sorted by descending probability; top-k and top-p then both keep
    a prefix of it, so filtering is just a shorter prefix of one cumulative sum.
    """
    params = [sampler.params for sampler in samplers]
    temperatures = np.array([p.temperature for p in params], np.float32)
    scaled = logits / temperatures[:, None]
    order = None
    if any(p.filters for p in params):
        order = np.argsort(-scaled, axis=1)
        scaled = np.take_along_axis(scaled, order, axis=1)
    weights = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    cumulative = np.cumsum(weights, axis=1)
    kept = np.full(len(params), weights.shape[1])
    if order is not None:
        kept = _kept_prefix(weights, cumulative, params)
    totals = cumulative[np.arange(len(params)), kept - 1]
    draws = np.array([sampler.rng.random() for sampler in samplers]) * totals
    # The first token whose cumulative weight exceeds the draw; zero-weight tokens never are.
    picks = np.minimum((cumulative <= draws[:, None]).sum(axis=1), kept - 1)
    tokens = picks if order is None else np.take_along_axis(order, picks[:, None], axis=1)[:, 0]
    return np.asarray(tokens, dtype=np.int64)


def _kept_prefix(
    weights: FloatArray, cumulative: FloatArray, params: Sequence[SamplingParams]
) -> npt.NDArray[np.int64]:
    """How many of the most likely tokens top-k and top-p keep; at least one."""
    vocab = weights.shape[1]
    top_k = np.array([p.top_k or vocab for p in params])
    top_p = np.array([p.top_p for p in params], np.float32)
    mass_before = cumulative - weights
    nucleus = (mass_before < (top_p * cumulative[:, -1])[:, None]).sum(axis=1)
    return np.maximum(1, np.minimum(top_k, nucleus))
