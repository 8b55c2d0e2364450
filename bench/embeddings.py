"""`python -m bench embeddings`: texts per second through the gateway and straight to Triton,
side by side, on the embedding twin (all-MiniLM-L6-v2, the real weights), and the twin's
forward pass against the machine's float32 matmul rate.

    python -m bench embeddings           # 1, 8, 64 clients; 16- and 128-token texts
    python -m bench embeddings --quick   # fewer requests, one small forward pass: a smoke run
    python -m bench embeddings --repository model_repository   # a repository built already

Prints a Markdown table and writes bench/embeddings.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import msgspec
import numpy as np

from bench import stack
from bench.report import percentile
from build_engines import minilm
from build_engines.embedding_twin.bert import BertEncoder
from gateway.inference.catalog import TEXT_EMBEDDINGS, CatalogFile, twin_catalog
from gateway.inference.embeddings import EmbeddingTokenizer, padded_batch
from gateway.triton.client import TritonClient
from gateway.triton.errors import BackendError, BackendUnavailable
from llm_contract.embeddings import BGE_SMALL_EN_V1_5, EMBEDDING_MODEL

RESULTS = Path(__file__).parent / "embeddings.json"
WORDS = ("apple", "river", "green", "house", "music", "paper", "stone", "light")
"""Words of one token each: a text of n of them is n + 2 tokens with [CLS] and [SEP]."""
CLIENTS = (1, 8, 64)
TEXT_TOKENS = (16, 128)


@dataclass
class EmbeddingRow:
    path: str
    clients: int
    text_tokens: int
    texts: int
    texts_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def text_of(tokens: int, offset: int) -> str:
    return " ".join(WORDS[(offset + index) % len(WORDS)] for index in range(tokens - 2))


async def drive(
    clients: int, per_client: int, send: Callable[[int], Awaitable[bool]]
) -> tuple[float, list[float], int]:
    """`clients` loops of `per_client` requests each: wall time, latencies, errors."""
    latencies: list[float] = []
    errors = 0

    async def client(number: int) -> None:
        nonlocal errors
        for request in range(per_client):
            started = time.perf_counter()
            if await send(number * per_client + request):
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(number) for number in range(clients)))
    return time.perf_counter() - started, latencies, errors


async def measure(
    path: str, clients: int, tokens: int, per_client: int,
    send: Callable[[int], Awaitable[bool]],
) -> EmbeddingRow:  # fmt: skip
    await drive(min(clients, 4), 1, send)  # warm: connections open, the pass's code paged in
    seconds, latencies, errors = await drive(clients, per_client, send)
    row = EmbeddingRow(
        path, clients, tokens, len(latencies), round(len(latencies) / seconds, 1),
        round((percentile(latencies, 0.5) or 0) * 1000, 2),
        round((percentile(latencies, 0.99) or 0) * 1000, 2), errors,
    )  # fmt: skip
    print(markdown([row]).splitlines()[-1], flush=True)
    return row


def gateway_sender(
    client: httpx.AsyncClient, gateway: stack.Gateway, tokens: int
) -> Callable[[int], Awaitable[bool]]:
    async def send(number: int) -> bool:
        reply = await client.post(
            gateway.run_url, json={"text": text_of(tokens, number)},
            headers={"Authorization": f"Bearer {gateway.token}"},
        )  # fmt: skip
        return reply.status_code == 200

    return send


def triton_sender(
    client: TritonClient, tokenizer: EmbeddingTokenizer, tokens: int
) -> Callable[[int], Awaitable[bool]]:
    """What the gateway sends for one text, sent straight to Triton with the gateway's own
    client (tokenized and padded beforehand)."""
    padded = BGE_SMALL_EN_V1_5.bucket(tokens)
    texts = [text_of(tokens, offset) for offset in range(len(WORDS))]
    batches = [padded_batch([ids], padded) for ids in tokenizer.encode(texts)]

    async def send(number: int) -> bool:
        input_ids, mask = batches[number % len(batches)]
        try:
            await client.embed(EMBEDDING_MODEL, input_ids, mask)
        except (BackendError, BackendUnavailable):  # an error, as the gateway's non-200
            return False
        return True

    return send


@dataclass(frozen=True)
class ForwardPass:
    batch: int
    tokens: int
    seconds: float
    gflops: float
    matmul_gflops: float

    @property
    def share(self) -> float:
        return self.gflops / self.matmul_gflops


def forward_pass(batch: int = 32, tokens: int = 128, repeats: int = 5) -> ForwardPass:
    """The twin's forward pass alone, in this process, against the float32 rate of the
    model's largest matmul, (batch·tokens, 384) @ (384, 1536), measured here with the same
    BLAS threads."""
    encoder = BertEncoder(minilm.read_weights(minilm.model_folder()))
    shape = encoder.shape
    rows = batch * tokens
    random = np.random.default_rng(0)
    input_ids = random.integers(1000, 30000, (batch, tokens)).astype(np.int32)
    mask = np.ones_like(input_ids)
    left = random.standard_normal((rows, shape.hidden_size)).astype(np.float32)
    right = random.standard_normal((shape.hidden_size, shape.intermediate_size)).astype(np.float32)
    matmul = _best_seconds(lambda: left @ right, repeats)
    matmul_flops = 2 * rows * shape.hidden_size * shape.intermediate_size
    forward = _best_seconds(lambda: encoder.encode(input_ids, mask), repeats)
    hidden, inner = shape.hidden_size, shape.intermediate_size
    per_layer = 2 * rows * hidden * (3 * hidden + hidden + 2 * inner)
    attention = 2 * 2 * batch * tokens * tokens * hidden
    flops = shape.num_hidden_layers * (per_layer + attention)
    return ForwardPass(batch, tokens, forward, flops / forward / 1e9, matmul_flops / matmul / 1e9)


def _best_seconds(work: Callable[[], object], repeats: int) -> float:
    work()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def markdown(rows: list[EmbeddingRow]) -> str:
    lines = [
        "| path | clients | text tokens | texts | texts/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r.path} | {r.clients} | {r.text_tokens} | {r.texts} | "
                     f"{r.texts_per_s} | {r.p50_ms} | {r.p99_ms} | {r.errors} |")  # fmt: skip
    return "\n".join(lines)


def embedding_catalog(repository: Path) -> bytes:
    """The default catalog's embedding twin alone: the repository holds no text twins."""
    entries = [e for e in twin_catalog(repository) if e.task == TEXT_EMBEDDINGS]
    return msgspec.json.encode(CatalogFile(entries))


async def compare(args: argparse.Namespace) -> list[EmbeddingRow]:
    repository = args.repository or stack.embedding_repository()
    tokenizer = EmbeddingTokenizer.from_directory(repository / EMBEDDING_MODEL / "tokenizer")
    rows = []
    with contextlib.ExitStack() as servers:
        triton = servers.enter_context(stack.triton(repository, "embeddings", [EMBEDDING_MODEL]))
        catalog = stack.WORK_DIR / "embeddings-catalog.json"
        catalog.write_bytes(embedding_catalog(repository))
        gateway = servers.enter_context(
            stack.gateway(triton, repository, "embeddings", model=stack.EMBEDDING_GATEWAY_MODEL,
                          env={"GATEWAY_CATALOG_FILE": str(catalog)})
        )  # fmt: skip
        limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
        async with httpx.AsyncClient(timeout=120, limits=limits) as http:
            direct = TritonClient(triton.grpc_url)
            try:
                for tokens in TEXT_TOKENS:
                    for clients in args.clients:
                        per_client = max(2, args.texts // clients)
                        senders = {
                            "triton_grpc": triton_sender(direct, tokenizer, tokens),
                            "gateway": gateway_sender(http, gateway, tokens),
                        }
                        for path, send in senders.items():
                            rows.append(await measure(path, clients, tokens, per_client, send))
            finally:
                await direct.close()
    return rows


def main(args: argparse.Namespace, output: Path) -> int:
    print(markdown([]), flush=True)
    rows = asyncio.run(compare(args))
    single = min((r for r in rows if r.path == "gateway" and r.text_tokens == TEXT_TOKENS[0]),
                 key=lambda r: r.clients)  # fmt: skip
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "the default")
    forward = forward_pass(batch=4, tokens=64, repeats=1) if args.quick else forward_pass()
    summary = (
        f"- short texts ({single.text_tokens} tokens) through the gateway, {single.clients} "
        f"client(s): p50 {single.p50_ms} ms\n"
        f"- the twin's forward pass, batch {forward.batch} x {forward.tokens} tokens: "
        f"{forward.seconds * 1000:.0f} ms, {forward.gflops:.1f} GFLOP/s = "
        f"{forward.share * 100:.0f} % of this process's float32 matmul rate "
        f"({forward.matmul_gflops:.1f} GFLOP/s, OpenBLAS threads: {threads}; target >= 50 %)"
    )
    print(f"\n{markdown(rows)}\n\n{summary}")
    document = {"rows": [asdict(r) for r in rows], "forward_pass": asdict(forward)}
    output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwrote {output}")
    return 0
