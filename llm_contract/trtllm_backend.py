"""The `tensorrtllm` Triton backend's contract, as read from upstream's source: the one table
the CPU twin holds itself to, the repository writer declares, the gateway sends and the
conformance test checks.

Read from TensorRT-LLM 1.2.1's backend (`triton-inference-server/tensorrtllm_backend` at
8addf2f, `TENSORRTLLM_VER=1.2.1`; NVIDIA/TensorRT-LLM `triton_backend/inflight_batcher_llm/src`:
`utils.h` `InputFieldsNames`, `model_instance_state.cc` `fillTritonResponse` and
`getGuidedDecodingConfigFromParams`, `model_state.cc` `GetParameter`;
`triton_backend/all_models/inflight_batcher_llm/tensorrt_llm/config.pbtxt` for types and
shapes). Re-read those when the targeted version changes, then change `UPSTREAM_VERSION`.
"""

from __future__ import annotations

from dataclasses import dataclass

UPSTREAM_VERSION = "TensorRT-LLM 1.2.1"


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of the generation model as its `config.pbtxt` declares it: Triton's type,
    the shape without the batch dimension, and whether a request may leave it out."""

    name: str
    data_type: str
    dims: tuple[int, ...] = (1,)
    optional: bool = True
    scalar: bool = True
    """Declared `reshape: { shape: [ ] }`: one value per request."""
    ragged: bool = False
    """`allow_ragged_batch`: requests of different lengths may share a batch."""


UPSTREAM_INPUT_NAMES = frozenset(
    {
        # InputFieldsNames (utils.h)
        "input_ids", "encoder_input_features", "encoder_output_lengths", "input_lengths",
        "decoder_input_ids", "request_output_len", "no_repeat_ngram_size",
        "num_return_sequences", "end_id", "pad_id", "bad_words_list", "stop_words_list",
        "embedding_bias", "context_phase_params", "cross_attention_mask",
        "skip_cross_attn_blocks", "multimodal_embedding", "return_log_probs",
        "return_generation_logits", "return_context_logits", "exclude_input_in_output",
        "return_perf_metrics", "return_kv_cache_reuse_stats", "beam_width", "runtime_top_k",
        "runtime_top_p", "runtime_top_k_min", "runtime_top_p_decay", "runtime_top_p_reset_ids",
        "temperature", "len_penalty", "early_stopping", "repetition_penalty", "min_tokens",
        "beam_search_diversity_rate", "presence_penalty", "frequency_penalty", "seed",
        "prompt_embedding_table", "prompt_table_extra_ids", "mrope_rotary_cos_sin",
        "mrope_position_deltas", "lora_task_id", "lora_weights", "lora_config",
        "draft_input_ids", "draft_logits", "draft_acceptance_threshold",
        "retention_token_range_starts", "retention_token_range_ends",
        "retention_token_range_priorities", "retention_token_range_durations_ms",
        "retention_decode_priority", "retention_decode_duration_ms",
        "guided_decoding_guide_type", "guided_decoding_guide", "lookahead_window_size",
        "lookahead_ngram_size", "lookahead_verification_set_size",
        # read by name elsewhere (utils.h, model_instance_state.cc)
        "stop", "streaming", "decoder_input_lengths", "prompt_vocab_size",
        "return_num_input_tokens", "return_num_output_tokens",
    }
)  # fmt: skip
"""Every input the backend reads. A declared input outside this set is accepted by Triton
and silently ignored by the backend (`random_seed`, `min_length`: the names v0.19.0 read)."""

INPUTS: tuple[TensorSpec, ...] = (
    TensorSpec("input_ids", "TYPE_INT32", (-1,), optional=False, scalar=False, ragged=True),
    TensorSpec("input_lengths", "TYPE_INT32", optional=False),
    TensorSpec("request_output_len", "TYPE_INT32", optional=False),
    TensorSpec("end_id", "TYPE_INT32"),
    TensorSpec("pad_id", "TYPE_INT32"),
    TensorSpec("stop_words_list", "TYPE_INT32", (2, -1), scalar=False, ragged=True),
    TensorSpec("bad_words_list", "TYPE_INT32", (2, -1), scalar=False, ragged=True),
    TensorSpec("beam_width", "TYPE_INT32"),
    TensorSpec("runtime_top_k", "TYPE_INT32"),
    TensorSpec("runtime_top_p", "TYPE_FP32"),
    TensorSpec("temperature", "TYPE_FP32"),
    TensorSpec("seed", "TYPE_UINT64"),
    TensorSpec("repetition_penalty", "TYPE_FP32"),
    TensorSpec("presence_penalty", "TYPE_FP32"),
    TensorSpec("frequency_penalty", "TYPE_FP32"),
    TensorSpec("min_tokens", "TYPE_INT32"),
    TensorSpec("streaming", "TYPE_BOOL"),
    TensorSpec("stop", "TYPE_BOOL"),
    TensorSpec("exclude_input_in_output", "TYPE_BOOL"),
)
"""The inputs this project's generation model declares: upstream's names, types and shapes
(upstream declares `input_ids` optional for encoder-only models; a decoder needs it)."""

OUTPUTS: tuple[TensorSpec, ...] = (
    TensorSpec("output_ids", "TYPE_INT32", (-1, -1), optional=False, scalar=False),
    TensorSpec("sequence_length", "TYPE_INT32", (-1,), optional=False, scalar=False),
)

REQUIRED_OUTPUTS: tuple[str, ...] = ("output_ids", "sequence_length")
"""A request that names its outputs must name both: the backend fills them unconditionally
while building every response, in this order."""

REQUIRED_PARAMETERS: tuple[str, ...] = (
    "tokenizer_dir",
    "xgrammar_tokenizer_info_path",
    "guided_decoding_backend",
)
"""Read without a default by every instance's constructor: the model does not load without
them (empty values are accepted and leave guided decoding off)."""

INPUT_NAMES = frozenset(spec.name for spec in INPUTS)


def missing_output_message(name: str) -> str:
    """The backend's error for a request that did not ask for a required output."""
    return f"{name} tensor must be present in list of output tensors"


def missing_parameter_message(name: str) -> str:
    """The backend's load error for a parameter read without a default."""
    return f"Cannot find parameter with name: {name}"


def first_missing_output(requested: frozenset[str] | set[str]) -> str | None:
    """The required output a request with these output names lacks, as the backend finds
    it; None when both are there. A request naming no outputs gets all of them."""
    if not requested:
        return None
    return next((name for name in REQUIRED_OUTPUTS if name not in requested), None)
