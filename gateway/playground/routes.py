"""`/playground`: a page in the package (no build step, nothing fetched from elsewhere) from
which a developer tries the models with nothing but an API token."""

from __future__ import annotations

from importlib.resources import files

from litestar import Response, Router, get
from litestar.exceptions import NotFoundException

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
"""Only this gateway's own files run and only its own API is called: an injected script
could not load, and could not send a token anywhere."""
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cache-control": "no-cache",
}
MEDIA_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "playground.js": "text/javascript; charset=utf-8",
    "playground.css": "text/css; charset=utf-8",
}


def playground_router() -> Router:
    static = files("gateway.playground") / "static"
    contents = {name: (static / name).read_bytes() for name in MEDIA_TYPES}

    def page(name: str) -> Response[bytes]:
        return Response(contents[name], media_type=MEDIA_TYPES[name], headers=SECURITY_HEADERS)

    @get("/", sync_to_thread=False, summary="The playground page")
    def index() -> Response[bytes]:
        return page("index.html")

    @get("/{name:str}", sync_to_thread=False, summary="The playground's script and style")
    def asset(name: str) -> Response[bytes]:
        if name not in contents or name == "index.html":
            raise NotFoundException(f"No such file in the playground: {name}")
        return page(name)

    return Router(path="/playground", route_handlers=[index, asset], include_in_schema=False)
