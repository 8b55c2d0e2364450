"""The text-embedding model's contract: the Triton model the engine build and the CPU twin
both write, and the gateway calls.

Production serves BAAI/bge-small-en-v1.5 as a TensorRT plan on Triton's `tensorrt` backend;
the CPU twin runs all-MiniLM-L6-v2 (the same 384 dimensions) in NumPy behind the same
tensors. The graph takes token ids and their attention mask, already tokenized and padded by
the gateway, and returns both pooled vectors, L2-normalized, so that the pooling a request
asks for is the gateway's choice, not a second model.
"""

from __future__ import annotations

from dataclasses import dataclass

from llm_contract.trtllm_backend import TensorSpec

EMBEDDING_MODEL = "bge_small_en_v1_5"
"""The Triton model's name, in the repository beside the text-generation models."""

INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"
MEAN_EMBEDDING = "mean_embedding"
"""The mean of the last hidden states over the tokens the mask keeps, L2-normalized."""
CLS_EMBEDDING = "cls_embedding"
"""The last hidden state of the first token ([CLS]), L2-normalized."""

POOLING_OUTPUTS = {"mean": MEAN_EMBEDDING, "cls": CLS_EMBEDDING}
"""Workers AI's `pooling` values and the output that holds each."""


@dataclass(frozen=True)
class EmbeddingSpec:
    name: str
    """The catalog's name of the production model."""
    hf_name: str
    description: str
    dimensions: int
    max_input_tokens: int
    max_batch_size: int
    """Sequences per Triton request and per dynamically batched forward pass."""
    length_buckets: tuple[int, ...]
    """The padded lengths the gateway sends: Triton's dynamic batcher only batches requests
    of one shape, so a few lengths let concurrent requests share a forward pass."""

    def inputs(self) -> tuple[TensorSpec, ...]:
        return (
            TensorSpec(INPUT_IDS, "TYPE_INT32", (-1,), optional=False, scalar=False),
            TensorSpec(ATTENTION_MASK, "TYPE_INT32", (-1,), optional=False, scalar=False),
        )

    def outputs(self) -> tuple[TensorSpec, ...]:
        return tuple(
            TensorSpec(name, "TYPE_FP32", (self.dimensions,), optional=False, scalar=False)
            for name in (MEAN_EMBEDDING, CLS_EMBEDDING)
        )

    def bucket(self, length: int) -> int:
        """The padded length for `length` tokens (at most `max_input_tokens`)."""
        for bucket in self.length_buckets:
            if length <= bucket:
                return bucket
        raise ValueError(f"{length} tokens, over the model's {self.max_input_tokens}")


BGE_SMALL_EN_V1_5 = EmbeddingSpec(
    name="@cf/baai/bge-small-en-v1.5",
    hf_name="BAAI/bge-small-en-v1.5",
    description="BAAI general embedding (small, English v1.5): 384-dimensional vectors",
    dimensions=384,
    max_input_tokens=512,
    max_batch_size=32,
    length_buckets=(16, 32, 64, 128, 256, 512),
)
