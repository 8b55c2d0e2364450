"""`python -m bench.cancel_storm`: hammer a real tritonserver with cancellations; did it live?

    python -m bench.cancel_storm --strategy cancel-and-stop --seconds 60 --rounds 5
    python -m bench.cancel_storm --strategy stop-first --seconds 60 --rounds 5

Each round starts tritonserver on the CPU twins (paced at 400 tokens/s) and keeps
`--concurrency` generations going for `--seconds`, each abandoned in one of five ways: before
its first token, after it, mid-way through a long generation, within a token of its natural
end, or after its last token but before its stream's end was read. `--strategy` says how the
client abandons one: `grpc-cancel` cancels the call; `cancel-and-stop` cancels it and sends
TensorRT-LLM's `stop` at once (the gateway before the fix); `stop-first` is the gateway's
`TokenStream.cancel()` (stop, and cancel the call only if the stream has not ended 2 s later).
A round ends early if tritonserver crashes; the summary counts the rounds it crashed in.

The race is a window of a few instructions, so a plain storm rarely hits it (none in 19,141
abandoned generations here). `--widen-race` runs tritonserver under gdb (non-stop) and holds
the gRPC stream handler's thread for 20 ms right after it notes a call's cancellation
notification, before it takes the request's lock: a final response that arrives meanwhile
sees the cancellation and queues the request's state, which the notification then releases.
With `cancel-and-stop` it segfaults within a minute or two, in `Process` on a released state.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import numpy.typing as npt
import tritonclient.grpc.aio as triton_grpc

from bench import stack
from gateway.sampling import SamplingParams
from gateway.triton.client import CHANNEL_OPTIONS, TritonClient
from gateway.triton.inputs import build_inputs
from local_runtime.triton_server import TritonRuntime, TritonServer

MODEL = stack.SPEC.generation_model
END_ID = 2
PROMPT = [1, 306, 263, 500, 17]
KINDS = ("before_first_token", "after_first_token", "mid_generation", "at_the_end", "after_the_end")
STRATEGIES = ("grpc-cancel", "cancel-and-stop", "stop-first")
NOTIFICATION_NOTED = 0x1E9A7A
"""The instruction after `SetReceivedNotification(true)` in the ModelStreamInfer handler's
completion-queue loop (`InferHandler::Start`'s lambda), in the wheel's tritonserver
(nvidia-pytriton 0.7.0, Triton 2.51); gdb loads the executable at 0x555555554000."""
GDB_COMMANDS = f"""set pagination off
set non-stop on
set confirm off
handle SIGPIPE nostop noprint pass
starti
break *{0x555555554000 + NOTIFICATION_NOTED:#x}
commands
silent
python import time; time.sleep(0.02)
continue
end
continue &
"""


@dataclass
class Round:
    strategy: str
    runs: Counter[str] = field(default_factory=Counter)
    crash: str | None = None
    seconds: float = 0.0
    outcomes: dict[str, float] = field(default_factory=dict)


class Abandoner:
    """Starts one generation and abandons it the way `strategy` says."""

    def __init__(self, url: str, strategy: str) -> None:
        self.strategy = strategy
        self.generator = TritonClient(url)
        self.client = triton_grpc.InferenceServerClient(url, channel_args=CHANNEL_OPTIONS)

    async def close(self) -> None:
        await self.generator.close()
        await self.client.close()

    async def run(self, kind: str, rng: random.Random) -> None:
        lengths = {"mid_generation": 400, "before_first_token": 50}
        max_tokens = lengths.get(kind, rng.choice([1, 2, 3]))
        request_id = uuid.uuid4().hex
        if self.strategy == "stop-first":
            stream = self.generator.generate(
                MODEL, PROMPT, SamplingParams(max_tokens=max_tokens), END_ID, request_id=request_id
            )
            with contextlib.suppress(Exception):
                await self._until(kind, stream, max_tokens, rng)
            stream.cancel()
            return
        responses = self.client.stream_infer(self._request(max_tokens, request_id))
        tokens = _token_ids(responses)
        with contextlib.suppress(Exception):
            await self._until(kind, tokens, max_tokens, rng)
        responses.cancel()
        if self.strategy == "cancel-and-stop":
            self.generator.request_stop(MODEL, request_id, END_ID)

    @staticmethod
    async def _until(
        kind: str, tokens: AsyncIterator[int], max_tokens: int, rng: random.Random
    ) -> None:
        """Read the tokens this kind of abandonment waits for."""
        wanted = {
            "before_first_token": 0,
            "after_first_token": 1,
            "mid_generation": rng.randint(2, 40),
            "at_the_end": max_tokens - 1,
            "after_the_end": max_tokens,
        }[kind]
        received = 0
        while received < wanted:
            await tokens.__anext__()
            received += 1
        if kind in ("before_first_token", "at_the_end"):
            await asyncio.sleep(rng.uniform(0, 0.004))  # about one token at 400 tokens/s

    @staticmethod
    async def _request(max_tokens: int, request_id: str) -> AsyncIterator[dict[str, object]]:
        yield {
            "model_name": MODEL,
            "inputs": build_inputs(PROMPT, SamplingParams(max_tokens=max_tokens), END_ID),
            "outputs": [triton_grpc.InferRequestedOutput("output_ids")],
            "request_id": request_id,
        }


async def _token_ids(responses: AsyncIterator[tuple[object, object]]) -> AsyncIterator[int]:
    async for result, error in responses:
        if error is not None:
            raise RuntimeError(str(error))
        output: npt.NDArray[np.int32] = result.as_numpy("output_ids")  # type: ignore[attr-defined]
        for token in output.reshape(-1).tolist():
            yield int(token)


def launch(server: TritonServer, under_gdb: bool) -> None:
    if not under_gdb:
        server.start()
        return
    runtime = TritonRuntime.from_installed_wheel()
    assert server.log_path is not None
    commands = server.log_path.with_suffix(".gdb")
    commands.write_text(GDB_COMMANDS)
    with server.log_path.open("wb") as log:
        server.process = subprocess.Popen(
            ["gdb", "-q", "-x", str(commands), "--args", *server.command(runtime)],
            env=runtime.environment(), stdin=subprocess.PIPE, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    server.wait_ready(300)


def shut_down(server: TritonServer, under_gdb: bool) -> None:
    if not under_gdb:
        server.stop()
    elif server.process is not None and server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()


def crash(server: TritonServer) -> str | None:
    """How tritonserver died, if it did (under gdb, the signal gdb caught)."""
    if server.process is None:
        return "never started"
    if server.process.poll() is not None:
        return f"exited {server.process.returncode}"
    for line in server.log_text().splitlines():
        if "received signal SIG" in line:
            return line.split("received ", 1)[1]
    return None


async def storm(server: TritonServer, strategy: str, seconds: float, concurrency: int,
                seed: int) -> Round:  # fmt: skip
    result = Round(strategy)
    abandoner = Abandoner(server.grpc_url, strategy)
    deadline = time.monotonic() + seconds
    started = time.monotonic()

    async def worker(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        while time.monotonic() < deadline and result.crash is None:
            kind = KINDS[rng.randrange(len(KINDS))]
            with contextlib.suppress(TimeoutError):  # a crashed server answers nothing
                await asyncio.wait_for(abandoner.run(kind, rng), 10)
                result.runs[kind] += 1
            result.crash = crash(server)

    await asyncio.gather(*(worker(index) for index in range(concurrency)))
    with contextlib.suppress(Exception):
        await abandoner.close()
    await asyncio.sleep(0.5)  # the last stops and final responses
    result.seconds = time.monotonic() - started
    result.crash = crash(server)
    if result.crash is None:
        result.outcomes = twin_outcomes(server)
    return result


def twin_outcomes(server: TritonServer) -> dict[str, float]:
    outcomes: dict[str, float] = {}
    for line in httpx.get(server.metrics_url, timeout=10).text.splitlines():
        if line.startswith("cpu_twin_requests_total{") and f'model="{MODEL}"' in line:
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            outcomes[outcome] = float(line.rsplit(" ", 1)[1])
    return outcomes


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cancel_storm",
                                     description=__doc__.split("\n")[0])  # fmt: skip
    parser.add_argument("--strategy", choices=STRATEGIES, default="stop-first")
    parser.add_argument("--seconds", type=float, default=60.0, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=48)
    parser.add_argument("--log-verbose", type=int, default=0, help="Triton's --log-verbose")
    parser.add_argument("--widen-race", action="store_true",
                        help="tritonserver under gdb, held 20 ms at each cancellation")  # fmt: skip
    parser.add_argument("--output", type=Path, help="write the rounds as JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    repository = stack.model_repository(400.0, 256)
    rounds: list[Round] = []
    for number in range(args.rounds):
        server = TritonServer.on_free_ports(
            repository,
            log_path=stack.WORK_DIR / f"cancel-storm-{args.strategy}-{number}.log",
            models=[MODEL],
            extra_args=[f"--log-verbose={args.log_verbose}"],
        )
        launch(server, args.widen_race)
        try:
            result = asyncio.run(storm(server, args.strategy, args.seconds, args.concurrency,
                                       number))  # fmt: skip
        finally:
            shut_down(server, args.widen_race)
        rounds.append(result)
        state = "alive" if result.crash is None else f"crashed: {result.crash}"
        print(f"round {number}: {sum(result.runs.values())} abandoned in {result.seconds:.0f}s, "
              f"tritonserver {state}, twin outcomes {result.outcomes}", flush=True)  # fmt: skip
    crashed = sum(result.crash is not None for result in rounds)
    total = sum(sum(result.runs.values()) for result in rounds)
    print(f"{args.strategy}: tritonserver crashed in {crashed} of {len(rounds)} rounds "
          f"({total} generations abandoned)")  # fmt: skip
    if args.output:
        args.output.write_text(json.dumps([result.__dict__ for result in rounds], indent=2))
    return 1 if crashed else 0


if __name__ == "__main__":
    raise SystemExit(main())
