"""Token choice: greedy, seeded sampling with filters, and TensorRT-LLM's penalties."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from build_engines.cpu_twin.sampling import RequestSampler, SamplingParams, choose_tokens

VOCAB = 50


def logits_rows(rows: int, seed: int = 0) -> npt.NDArray[Any]:
    return np.random.default_rng(seed).standard_normal((rows, VOCAB)).astype(np.float32)


def draw(params: SamplingParams, steps: int = 40, prompt: tuple[int, ...] = ()) -> list[int]:
    sampler = RequestSampler(params, VOCAB, list(prompt))
    logits = logits_rows(steps)
    return [
        int(choose_tokens(logits[step : step + 1].copy(), [sampler])[0]) for step in range(steps)
    ]


def test_greedy_picks_the_largest_logit() -> None:
    logits = logits_rows(4)
    samplers = [RequestSampler(SamplingParams(), VOCAB, []) for _ in range(4)]
    assert choose_tokens(logits.copy(), samplers).tolist() == np.argmax(logits, axis=1).tolist()


def test_the_same_seed_draws_the_same_tokens_and_another_seed_differs() -> None:
    sampled = SamplingParams(greedy=False, temperature=1.0, seed=11)
    assert draw(sampled) == draw(sampled)
    assert draw(sampled) != draw(SamplingParams(greedy=False, temperature=1.0, seed=12))


def test_a_request_draws_the_same_tokens_alone_or_in_a_batch() -> None:
    params = SamplingParams(greedy=False, temperature=0.8, top_p=0.9, seed=3)
    alone = RequestSampler(params, VOCAB, [])
    batched = [RequestSampler(SamplingParams(greedy=False, seed=s), VOCAB, []) for s in (5, 6)]
    batched.insert(1, RequestSampler(params, VOCAB, []))
    for step in range(20):
        logits = logits_rows(3, seed=step)
        expected = choose_tokens(logits[1:2].copy(), [alone])[0]
        assert choose_tokens(logits.copy(), batched)[1] == expected


def test_top_k_only_draws_from_the_k_most_likely_tokens() -> None:
    params = SamplingParams(greedy=False, temperature=5.0, top_k=3, seed=1)
    sampler = RequestSampler(params, VOCAB, [])
    logits = logits_rows(1)
    allowed = set(np.argsort(-logits[0])[:3].tolist())
    drawn = {int(choose_tokens(logits.copy(), [sampler])[0]) for _ in range(200)}
    assert drawn == allowed


def test_top_p_keeps_the_smallest_set_reaching_the_mass() -> None:
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]], np.float32))
    sampler = RequestSampler(SamplingParams(greedy=False, top_p=0.7, seed=2), 4, [])
    drawn = {int(choose_tokens(logits.copy(), [sampler])[0]) for _ in range(200)}
    assert drawn == {0, 1}


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits() -> None:
    sampler = RequestSampler(SamplingParams(repetition_penalty=2.0), 4, [0, 1])
    logits = np.array([2.0, -2.0, 2.0, -2.0], np.float32)
    sampler.penalize(logits)
    assert logits.tolist() == [1.0, -4.0, 2.0, -2.0]


def test_presence_counts_once_and_frequency_per_occurrence() -> None:
    sampler = RequestSampler(
        SamplingParams(presence_penalty=0.5, frequency_penalty=0.25), 3, [0, 0]
    )
    sampler.observe(0)
    sampler.observe(1)
    logits = np.zeros(3, np.float32)
    sampler.penalize(logits)
    assert logits.tolist() == [-0.5 - 0.75, -0.5 - 0.25, 0.0]


def test_banned_tokens_are_never_chosen() -> None:
    logits = logits_rows(1)
    best = int(np.argmax(logits))
    sampler = RequestSampler(SamplingParams(), VOCAB, [])
    assert choose_tokens(logits.copy(), [sampler], [[best]])[0] != best
