"""Server-Sent Events framing: `data:` events, the keep-alive comment, `[DONE]`, and the
headers that keep proxies from buffering or transforming a stream."""

from __future__ import annotations

import msgspec

KEEPALIVE_COMMENT = b": keep-alive\n\n"
DONE_EVENT = b"data: [DONE]\n\n"
SSE_HEADERS = {
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
    "Connection": "keep-alive",
}
_encoder = msgspec.json.Encoder()


def sse_event(payload: object, event_id: int | None = None) -> bytes:
    """`data:` first, so that line-oriented readers that look only at `data:` lines work."""
    if event_id is None:
        return b"data: " + _encoder.encode(payload) + b"\n\n"
    return b"data: %b\nid: %d\n\n" % (_encoder.encode(payload), event_id)
