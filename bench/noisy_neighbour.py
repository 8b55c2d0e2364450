"""`python -m bench.noisy_neighbour`: one tenant sends worst-case bodies at its full request
rate while another runs short requests and a probe polls `/healthz`.

    python -m bench.noisy_neighbour                 # 15 s idle, then 30 s under attack
    python -m bench.noisy_neighbour --seconds 5     # shorter phases

The attacker cycles through the costliest bodies the gateway accepts to read: 1 MiB of empty
messages taking turns, as the Llama-2 template demands (refused by count); the most messages
and characters allowed in a conversation (rendered, then refused by its length); the most
characters allowed, spelling special tokens (each swapped out before rendering). Targets:
`/healthz` p99 ≤ 50 ms and the other tenant's median short run ≤ 1.5x its idle median.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from bench import stack

ATTACKER_REQUESTS_PER_MINUTE = 600
"""The product's default per-account limit: the attacker's full rate is 10 a second."""
MAX_MESSAGES = 2048
MAX_CHARACTERS = 262_144
HEALTH_TARGET_P99_MS = 50.0
NEIGHBOUR_TARGET_RATIO = 1.5


def attack_bodies() -> dict[str, bytes]:
    turns = [json.dumps({"role": role, "content": ""}) for role in ("user", "assistant")]
    count = (1024 * 1024 - 64) // (len(turns[1]) + 1)
    empty = ",".join(turns[index % 2] for index in range(count))
    many_empty = f'{{"max_tokens":1,"messages":[{empty}]}}'.encode()
    per_message = MAX_CHARACTERS // MAX_MESSAGES - len("assistant")
    conversation = [
        {"role": ("user", "assistant")[index % 2], "content": "word " * (per_message // 5)}
        for index in range(MAX_MESSAGES - 1)
    ]
    longest = json.dumps({"max_tokens": 1, "messages": conversation}).encode()
    spelled = "<s>" * ((MAX_CHARACTERS - 8) // 3)
    specials = json.dumps(
        {"max_tokens": 1, "messages": [{"role": "user", "content": spelled}]}
    ).encode()
    return {"empty-messages": many_empty, "conversation": longest, "special-tokens": specials}


@dataclass
class Samples:
    health_ms: list[float]
    neighbour_ms: list[float]


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def repeat_until(stop: threading.Event, action: Callable[[], None], interval: float) -> None:
    while not stop.is_set():
        began = time.monotonic()
        action()
        stop.wait(max(0.0, interval - (time.monotonic() - began)))


def measure(gateway: stack.Gateway, neighbour_token: str, seconds: float) -> Samples:
    samples = Samples([], [])
    stop = threading.Event()
    headers = {"Authorization": f"Bearer {neighbour_token}"}
    with httpx.Client(timeout=30) as health, httpx.Client(timeout=60, headers=headers) as runs:

        def probe() -> None:
            began = time.perf_counter()
            health.get(f"{gateway.base_url}/healthz")
            samples.health_ms.append((time.perf_counter() - began) * 1000)

        def short_run() -> None:
            began = time.perf_counter()
            reply = runs.post(gateway.run_url, json={"prompt": "Hi", "max_tokens": 1})
            assert reply.status_code == 200, reply.text
            samples.neighbour_ms.append((time.perf_counter() - began) * 1000)

        threads = [
            threading.Thread(target=repeat_until, args=(stop, probe, 0.05)),
            threading.Thread(target=repeat_until, args=(stop, short_run, 0.1)),
        ]
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        stop.set()
        for thread in threads:
            thread.join()
    return samples


def attack(
    url: str, token: str, bodies: list[bytes], stop: threading.Event, outcomes: Counter[str]
) -> None:
    interval = 60.0 / ATTACKER_REQUESTS_PER_MINUTE
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    sent = 0
    with httpx.Client(timeout=60, headers=headers) as client:

        def send() -> None:
            nonlocal sent
            reply = client.post(url, content=bodies[sent % len(bodies)])
            sent += 1
            code = reply.json()["errors"][0]["code"] if reply.status_code >= 400 else ""
            outcomes[f"{reply.status_code} {code}".strip()] += 1

        repeat_until(stop, send, interval)


def summary(name: str, samples: Samples) -> str:
    health, runs = samples.health_ms, samples.neighbour_ms
    return (
        f"| {name} | {percentile(health, 0.5):.1f} | {percentile(health, 0.99):.1f} | "
        f"{max(health):.1f} | {statistics.median(runs):.1f} | {percentile(runs, 0.99):.1f} | "
        f"{len(runs)} |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.noisy_neighbour")
    parser.add_argument("--seconds", type=float, default=30.0, help="attack phase (idle: half)")
    bodies = attack_bodies()
    parser.add_argument(
        "--body", choices=sorted(bodies), action="append", help="only these bodies (default: all)"
    )
    args = parser.parse_args(argv)
    chosen = [bodies[name] for name in args.body or sorted(bodies)]
    repository = stack.model_repository(0, 64)
    with (
        stack.triton(repository, "noisy") as triton,
        stack.gateway(
            triton, repository, "noisy", env={"GATEWAY_MAX_BODY_BYTES": str(1024 * 1024 + 4096)}
        ) as gateway,
    ):
        admin = {"Authorization": f"Bearer {gateway.admin_token}"}
        with httpx.Client(base_url=gateway.base_url, headers=admin, timeout=30) as client:
            attacker = client.post("/admin/v1/accounts", json={"name": "attacker"}).json()
            attacker_id = attacker["result"]["id"]
            client.put(
                f"/admin/v1/accounts/{attacker_id}/limits",
                json={"requests_per_minute": ATTACKER_REQUESTS_PER_MINUTE},
            ).raise_for_status()
            token = client.post(f"/admin/v1/accounts/{attacker_id}/tokens", json={"name": "a"})
        attack_url = gateway.run_url.replace(gateway.account_id, attacker_id)
        idle = measure(gateway, gateway.token, args.seconds / 2)
        stop = threading.Event()
        outcomes: Counter[str] = Counter()
        attacker_thread = threading.Thread(
            target=attack,
            args=(attack_url, token.json()["result"]["token"], chosen, stop, outcomes),
        )
        attacker_thread.start()
        time.sleep(1.0)  # the attack is under way
        loaded = measure(gateway, gateway.token, args.seconds)
        stop.set()
        attacker_thread.join()
    print("| phase | /healthz p50 (ms) | p99 | max | neighbour run p50 (ms) | p99 | runs |")
    print("|---|---|---|---|---|---|---|")
    print(summary("idle", idle))
    print(summary("attacked", loaded))
    print(f"attacker's answers: {dict(sorted(outcomes.items()))}")
    health_p99 = percentile(loaded.health_ms, 0.99)
    ratio = statistics.median(loaded.neighbour_ms) / statistics.median(idle.neighbour_ms)
    health_met = health_p99 <= HEALTH_TARGET_P99_MS
    ratio_met = ratio <= NEIGHBOUR_TARGET_RATIO
    print(
        f"/healthz p99 {health_p99:.1f} ms (target ≤ {HEALTH_TARGET_P99_MS:g}): "
        f"{'met' if health_met else 'NOT met'}; neighbour median {ratio:.2f}x idle "
        f"(target ≤ {NEIGHBOUR_TARGET_RATIO:g}x): {'met' if ratio_met else 'NOT met'}"
    )
    return 0 if health_met and ratio_met else 1


if __name__ == "__main__":
    raise SystemExit(main())
