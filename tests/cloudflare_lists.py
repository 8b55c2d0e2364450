"""Reading a Cloudflare-paged list as a client does: page after page until one is empty."""

from __future__ import annotations

from typing import Any

import httpx


def every_item(
    client: httpx.Client, path: str, headers: dict[str, str], **params: str
) -> list[dict[str, Any]]:
    """Every item of the list at `path`, checking each page's `result_info` on the way."""
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        reply = client.get(path, params={**params, "page": str(page)}, headers=headers)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        info = body["result_info"]
        assert (info["page"], info["count"]) == (page, len(body["result"]))
        if not body["result"]:
            assert len(items) == info["total_count"]
            return items
        items.extend(body["result"])
        page += 1
