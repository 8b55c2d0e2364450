"""Reading the gateway's Server-Sent Events the way a client does, byte for byte."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import httpx


@dataclass
class EventStream:
    status_code: int
    headers: httpx.Headers
    raw: bytes = b""
    data: list[str] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)

    @property
    def json_events(self) -> list[dict[str, object]]:
        return [json.loads(item) for item in self.data if item != "[DONE]"]

    @property
    def text(self) -> str:
        return "".join(str(event.get("response", "")) for event in self.json_events)


def parse_events(raw: bytes) -> list[str]:
    """`data:` payloads of complete events; comments (keep-alives) and `id:`s are skipped."""
    return [data for data, _ in parse_events_with_ids(raw)]


def parse_events_with_ids(raw: bytes) -> list[tuple[str, int | None]]:
    """(`data:` payload, `id:` or None) of each complete event."""
    events = []
    complete, _, _ = raw.decode().rpartition("\n\n")
    for block in complete.split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        ids = [int(line[len("id: ") :]) for line in lines if line.startswith("id: ")]
        data = [line for line in lines if not line.startswith("id: ")]
        assert all(line.startswith("data: ") for line in data), block
        events.append(("\n".join(line[len("data: ") :] for line in data), ids[-1] if ids else None))
    return events


def stream_run(client: httpx.Client, url: str, token: str, body: dict[str, object]) -> EventStream:
    with client.stream(
        "POST", url, json={**body, "stream": True}, headers={"Authorization": f"Bearer {token}"}
    ) as reply:
        raw = reply.read()
    result = EventStream(reply.status_code, reply.headers, raw)
    if reply.headers.get("content-type", "").startswith("text/event-stream"):
        parsed = parse_events_with_ids(raw)
        result.data = [data for data, _ in parsed]
        result.ids = [event_id for _, event_id in parsed if event_id is not None]
    return result
