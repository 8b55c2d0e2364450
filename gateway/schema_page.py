"""`/schema`: the API's operations and bodies as a page the gateway renders itself, beside
the OpenAPI document (`/schema/openapi.json`) that any OpenAPI tool reads.

The page runs no script and loads nothing from elsewhere. Litestar's own UIs load their code
unpinned from a CDN, on the origin the playground (and its tokens) lives on, and show nothing
on an air-gapped install; a UI vendored through a package would still be third-party code
there (Swagger UI 4, as `swagger-ui-bundle` ships it, cannot read OpenAPI 3.1 either).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from html import escape
from typing import Any

from litestar import Request, Response, Router, get
from litestar.datastructures import ResponseHeader
from litestar.enums import MediaType
from litestar.openapi.plugins import OpenAPIRenderPlugin

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
"""No script at all, and only the gateway's own stylesheet."""
SECURITY_HEADERS = [
    ResponseHeader(name="content-security-policy", value=CONTENT_SECURITY_POLICY),
    ResponseHeader(name="referrer-policy", value="no-referrer"),
    ResponseHeader(name="x-content-type-options", value="nosniff"),
]
STYLESHEET = "/schema.css"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
CONSTRAINTS = {
    "minimum": "≥ {}",
    "exclusiveMinimum": "> {}",
    "maximum": "≤ {}",
    "exclusiveMaximum": "< {}",
    "minLength": "length ≥ {}",
    "maxLength": "length ≤ {}",
    "minItems": "items ≥ {}",
    "maxItems": "items ≤ {}",
}
CSS = b"""\
:root {
  --ink: #1d2330; --muted: #5b6475; --line: #d9dee8; --panel: #fff; --page: #f3f5f9;
  --accent: #f38020;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: var(--page);
}
body { margin: 0 auto; max-width: 72rem; padding: 1rem 2rem 3rem; }
h1 { margin: 0; font-size: 1.6rem; }
h1 small { color: var(--muted); font-weight: normal; font-size: 1rem; }
h2 { font-size: 1.15rem; margin: 1.6rem 0 0.5rem; border-bottom: 2px solid var(--accent); }
h3 { font-size: 1rem; margin: 0.2rem 0; }
p, li { line-height: 1.45; }
.muted { color: var(--muted); }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 0.9em; }
details { background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
  margin: 0.4rem 0; padding: 0.5rem 0.9rem; }
summary { cursor: pointer; }
.method { display: inline-block; min-width: 4.2rem; font-weight: 700; font-size: 0.8rem;
  text-transform: uppercase; }
.get { color: #2f5fb3; } .post { color: #1a7f37; } .put { color: #9a6700; }
.delete { color: #b42318; } .patch { color: #8250df; }
table { border-collapse: collapse; width: 100%; margin: 0.4rem 0 0.6rem; font-size: 0.9rem; }
th, td { text-align: left; vertical-align: top; padding: 0.25rem 0.5rem;
  border-bottom: 1px solid var(--line); }
th { color: var(--muted); font-weight: 600; }
"""


def schema_router(path: str) -> Router:
    """The router of `/schema` and the files under it, each sent with the page's policy."""
    return Router(
        path,
        route_handlers=[],
        include_in_schema=False,
        response_headers=SECURITY_HEADERS,
    )


class OperationsPage(OpenAPIRenderPlugin):
    """The operations by tag (method, path, summary, parameters, body, answers), then every
    body's fields with their types, ranges and defaults; rendered once, as the schema is
    fixed once the app is built."""

    def __init__(self) -> None:
        super().__init__(path="/", media_type=MediaType.HTML)
        self._base = ""
        self._page: bytes | None = None

    def receive_router(self, router: Router) -> None:
        self._base = router.path

        @get(STYLESHEET, media_type="text/css", sync_to_thread=False)
        def stylesheet() -> Response[bytes]:
            return Response(CSS)

        router.register(stylesheet)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._page is None:
            json_url = self.get_openapi_json_route(request)
            self._page = "".join(self._html(openapi_schema, json_url)).encode()
        return self._page

    def _html(self, schema: dict[str, Any], json_url: str) -> Iterator[str]:
        info = schema.get("info", {})
        title = escape(str(info.get("title", "API")))
        yield (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{title}: API</title>"
            f'<link rel="stylesheet" href="{escape(self._base + STYLESHEET)}"></head><body>'
            f"<h1>{title} <small>{escape(str(info.get('version', '')))}</small></h1>"
            f"<p>{escape(str(info.get('description', '')))}</p>"
            f'<p class="muted">The OpenAPI document: <a href="{escape(json_url)}">'
            f"<code>{escape(json_url)}</code></a> (for any OpenAPI tool).</p>"
        )
        for tag, operations in _by_tag(schema).items():
            yield f"<h2>{escape(tag)}</h2>"
            for method, path, operation in operations:
                yield from _operation(method, path, operation, schema.get("security"))
        components = schema.get("components", {}).get("schemas", {})
        if components:
            yield "<h2>Bodies</h2>"
        for name, body in components.items():
            yield from _component(name, body)
        yield "</body></html>\n"


def _by_tag(schema: dict[str, Any]) -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
    tags: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            if (operation := item.get(method)) is not None:
                tag = (operation.get("tags") or ["Other"])[0]
                tags.setdefault(tag, []).append((method, path, operation))
    return tags


def _operation(
    method: str, path: str, operation: dict[str, Any], default_security: Any
) -> Iterator[str]:
    yield (
        f'<details><summary><span class="method {method}">{method.upper()}</span> '
        f"<code>{escape(path)}</code> "
        f'<span class="muted">{escape(str(operation.get("summary", "")))}</span></summary>'
    )
    if description := operation.get("description"):
        yield f"<p>{escape(str(description))}</p>"
    security = operation.get("security", default_security) or []
    tokens = sorted({name for requirement in security for name in requirement})
    yield f"<p>Token: {escape(', '.join(tokens)) if tokens else 'none'}</p>"
    if parameters := operation.get("parameters"):
        yield "<table><tr><th>Parameter</th><th>In</th><th>Type</th></tr>"
        for parameter in parameters:
            required = " (required)" if parameter.get("required") else ""
            yield (
                f"<tr><td><code>{escape(str(parameter.get('name')))}</code>{required}</td>"
                f"<td>{escape(str(parameter.get('in')))}</td>"
                f"<td>{_type(parameter.get('schema', {}))}</td></tr>"
            )
        yield "</table>"
    body = operation.get("requestBody", {}).get("content", {})
    for media_type, content in body.items():
        yield (f"<p>Body ({escape(media_type)}): {_type(content.get('schema', {}))}</p>")
    yield "<table><tr><th>Status</th><th>Answer</th></tr>"
    for status, response in operation.get("responses", {}).items():
        yield (
            f"<tr><td>{escape(str(status))}</td>"
            f"<td>{escape(str(response.get('description', '')))}</td></tr>"
        )
    yield "</table></details>"


def _component(name: str, body: dict[str, Any]) -> Iterator[str]:
    """The anchor is in the `<details>`' content, which a link to it therefore opens."""
    anchor = escape(_anchor(name))
    yield f"<details><summary><code>{escape(name)}</code></summary>"
    properties = body.get("properties", {})
    if not properties:
        yield f'<p id="{anchor}">{_type(body)}</p></details>'
        return
    required = set(body.get("required", []))
    yield f'<table id="{anchor}"><tr><th>Field</th><th>Type</th><th>Values</th></tr>'
    for field, schema in properties.items():
        mark = " (required)" if field in required else ""
        yield (
            f"<tr><td><code>{escape(field)}</code>{mark}</td><td>{_type(schema)}</td>"
            f"<td>{escape(_values(schema))}</td></tr>"
        )
    yield "</table></details>"


def _anchor(name: str) -> str:
    return "schema-" + "".join(c if c.isalnum() else "-" for c in name)


def _type(schema: dict[str, Any]) -> str:
    """The type as HTML, each body it names linked to its fields below."""
    if (ref := schema.get("$ref")) is not None:
        name = str(ref).rsplit("/", 1)[-1]
        return f'<a href="#{escape(_anchor(name))}">{escape(name)}</a>'
    for alternatives in ("oneOf", "anyOf"):
        if alternatives in schema:
            return " | ".join(_type(member) for member in schema[alternatives])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {_type(schema['additionalProperties'])}"
    return escape(" | ".join(kind) if isinstance(kind, list) else str(kind))


def _values(schema: dict[str, Any]) -> str:
    notes = [template.format(schema[key]) for key, template in CONSTRAINTS.items() if key in schema]
    if "enum" in schema:
        notes.append("one of " + ", ".join(json.dumps(value) for value in schema["enum"]))
    if "default" in schema:
        notes.append(f"default {json.dumps(schema['default'])}")
    return "; ".join(notes)
