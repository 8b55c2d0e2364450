"""Probe a Triton serving the text path: each model must answer a one-token generation.

Triton 24.10 keeps a Python-backend model ready after its stub process died: every request
then fails with "Stub process '<instance>' is not healthy." and nothing restarts the stub
(later releases flip the model's own ready endpoint but not the server's). So readiness asks
the models themselves; the Helm chart runs this as the Triton pod's exec probes:

    python3 /models/<prefix>bls/1/text_models/probe.py --model <prefix>bls --model <prefix>ensemble

Readiness (the default) fails when the server is not ready or a model does not answer in
time; `--liveness` fails only when a model answers that its stub is dead, so a busy server
is never restarted. Standard library only, run from its own file: the Triton image's python3
has none of this project's packages.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

STUB_DEAD = "is not healthy"
"""The Python backend's answer for a model whose stub process died."""
PROMPT = "ping"


def model_problem(url: str, model: str, timeout: float) -> str | None:
    """None when `model` answers a one-token generation with text, else what went wrong."""
    body = json.dumps({"text_input": PROMPT, "max_tokens": 1, "stream": False}).encode()
    request = urllib.request.Request(  # noqa: S310 (main allows http and https only)
        f"{url}/v2/models/{model}/generate",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310
            answer = json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return f"{model}: {error.code} {error.read().decode(errors='replace')[:300]}"
    except (OSError, ValueError) as error:  # refused, timed out, not JSON
        return f"{model}: no answer: {error}"
    if not isinstance(answer, dict) or "text_output" not in answer:
        return f"{model}: no text_output in {str(answer)[:300]}"
    return None


def server_problem(url: str, path: str, timeout: float) -> str | None:
    try:
        with urllib.request.urlopen(f"{url}{path}", timeout=timeout) as reply:  # noqa: S310
            return None if reply.status == 200 else f"{path}: {reply.status}"
    except (OSError, ValueError) as error:
        return f"{path}: {error}"


def problems(url: str, models: Sequence[str], *, timeout: float, liveness: bool) -> list[str]:
    """What fails the probe; empty when it passes."""
    found = server_problem(url, "/v2/health/live" if liveness else "/v2/health/ready", timeout)
    if found is not None:
        return [found]
    answers = [model_problem(url, model, timeout) for model in models]
    failed = [answer for answer in answers if answer is not None]
    return [answer for answer in failed if STUB_DEAD in answer] if liveness else failed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="Triton's HTTP API")
    parser.add_argument("--model", action="append", required=True, help="a model to ask")
    parser.add_argument("--timeout", type=float, default=4.0, help="seconds per question")
    parser.add_argument(
        "--liveness", action="store_true", help="fail only when a model's stub is dead"
    )
    args = parser.parse_args(argv)
    if not args.url.startswith(("http://", "https://")):
        parser.error(f"--url must be http or https, not {args.url!r}")
    found = problems(args.url, args.model, timeout=args.timeout, liveness=args.liveness)
    for problem in found:
        print(problem, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
