"""The Llama network: KV-cache correctness, batching, and outputs that look like a model's."""

from __future__ import annotations

import numpy as np
import pytest

from build_engines.cpu_twin.kv_cache import CHUNK_TOKENS
from build_engines.cpu_twin.network import LlamaNetwork
from tests.build_engines.cpu_twin.doubles import PROMPT, SMALL_SHAPE, small_network


def greedy(network: LlamaNetwork, prompt: list[int], count: int) -> list[int]:
    cache = network.new_cache()
    logits = network.prefill(np.array(prompt), cache)
    tokens: list[int] = []
    for _ in range(count):
        tokens.append(int(np.argmax(logits)))
        logits = network.decode(np.array(tokens[-1:]), [cache])[0]
    return tokens


@pytest.fixture(scope="module")
def fp16_network() -> LlamaNetwork:
    return small_network("fp16")


def test_int8_logits_are_close_to_the_fp16_twin_of_the_same_seed(
    network: LlamaNetwork, fp16_network: LlamaNetwork
) -> None:
    int8 = network.prefill(np.array(PROMPT), network.new_cache())
    fp16 = fp16_network.prefill(np.array(PROMPT), fp16_network.new_cache())
    assert not np.array_equal(int8, fp16)
    assert np.corrcoef(int8, fp16)[0, 1] > 0.99
    assert np.abs(int8 - fp16).max() < 0.1 * np.abs(fp16).max()


def test_kv_cache_decode_matches_recomputing_the_whole_sequence(network: LlamaNetwork) -> None:
    sequence = np.random.default_rng(0).integers(0, SMALL_SHAPE.vocab_size, 40)
    cache = network.new_cache()
    logits = network.prefill(sequence[:10], cache)
    for end in range(10, 40):
        recomputed = network.prefill(sequence[:end], network.new_cache())
        np.testing.assert_allclose(logits, recomputed, atol=1e-4)
        logits = network.decode(sequence[end : end + 1], [cache])[0]


def test_batched_decode_gives_each_request_its_own_logits(network: LlamaNetwork) -> None:
    prompts = [PROMPT, [3, 4, 5], PROMPT[::-1]]
    caches = [network.new_cache() for _ in prompts]
    for prompt, cache in zip(prompts, caches, strict=True):
        network.prefill(np.array(prompt), cache)
    batched = network.decode(np.array([10, 20, 30]), caches)
    for row, (prompt, token) in enumerate(zip(prompts, [10, 20, 30], strict=True)):
        alone = network.prefill(np.array([*prompt, token]), network.new_cache())
        np.testing.assert_allclose(batched[row], alone, atol=1e-4)


def test_greedy_decoding_is_deterministic_and_varied(network: LlamaNetwork) -> None:
    tokens = greedy(network, PROMPT, 30)
    assert tokens == greedy(network, PROMPT, 30)
    assert len(set(tokens)) > 10


def test_different_prompts_give_different_outputs(network: LlamaNetwork) -> None:
    assert greedy(network, PROMPT, 10) != greedy(network, [1, 200, 201, 202], 10)


def test_cache_grows_in_chunks_not_to_the_model_maximum(network: LlamaNetwork) -> None:
    cache = network.new_cache()
    network.prefill(np.arange(10), cache)
    assert (cache.length, cache.capacity) == (10, CHUNK_TOKENS)
    network.prefill(np.arange(CHUNK_TOKENS), cache)
    assert (cache.length, cache.capacity) == (CHUNK_TOKENS + 10, 2 * CHUNK_TOKENS)
