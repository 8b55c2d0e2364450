"""One typed settings object, grouped by concern, read from the environment and `.env`.

Each group reads its own variables (real environment wins over `.env`); `get_settings()`
builds the whole object when the app or CLI starts, never at import.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/gateway.db"

_ORIGIN = re.compile(r"https?://([a-z0-9.\-]+|\[[0-9a-f:.]+\])(:[0-9]{1,5})?")


def allowed_origins(listed: str) -> list[str]:
    """Origins as browsers send them (lower-case), from a comma-separated list."""
    return [origin.strip().lower() for origin in listed.split(",") if origin.strip()]


MIN_ADMIN_TOKEN_CHARACTERS = 32
MIN_ADMIN_TOKEN_BITS = 96
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def estimated_bits(secret: str) -> float:
    """Length times the Shannon entropy of its characters: `'a'*32` is 0, `'ab'*16` 32, a
    random hex string of 32 characters about 115, `secrets.token_urlsafe(32)` about 200."""
    length = len(secret)
    counts = Counter(secret)
    return max(0.0, -length * sum(n / length * math.log2(n / length) for n in counts.values()))


def admin_token_weakness(token: str) -> str | None:
    """Why `token` is too weak to guard an admin API others can reach; never quotes it."""
    if len(token) < MIN_ADMIN_TOKEN_CHARACTERS:
        return f"it has {len(token)} characters, under {MIN_ADMIN_TOKEN_CHARACTERS}"
    bits = estimated_bits(token)
    if bits < MIN_ADMIN_TOKEN_BITS:
        return f"its characters give about {bits:.0f} bits, under {MIN_ADMIN_TOKEN_BITS}"
    return None


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def host_names(listed: str) -> list[str]:
    """`Host` names as the header carries them (lower-case, IPv6 in brackets), from a list."""
    names = [name.strip().lower() for name in listed.split(",") if name.strip()]
    return [f"[{name}]" if ":" in name and not name.startswith("[") else name for name in names]


class _EnvGroup(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        hide_input_in_errors=True,  # a refused admin token must not be echoed
    )


class DatabaseSettings(_EnvGroup):
    url: str = Field(DEFAULT_DATABASE_URL, alias="DATABASE_URL")
    """SQLAlchemy async URL: SQLite by default, `postgresql+asyncpg://…` in production."""
    pool_size: int = Field(10, alias="DATABASE_POOL_SIZE")
    """Connections kept per gateway process (PostgreSQL)."""


class TritonSettings(_EnvGroup):
    grpc_url: str = Field("127.0.0.1:8001", alias="TRITON_GRPC_URL")
    """Triton's gRPC address, for catalog models that name none of their own."""
    http_url: str = Field("http://127.0.0.1:8000", alias="TRITON_HTTP_URL")
    """Triton's HTTP address (used by `gateway up` and the benchmarks)."""
    model_repository: Path = Field(Path("model_repository"), alias="GATEWAY_MODEL_REPOSITORY")
    """Local model repository; the default catalog reads the twins' tokenizers from it."""
    catalog_file: Path | None = Field(None, alias="GATEWAY_CATALOG_FILE")
    """JSON model catalog (see deploy/catalog.production.json); unset: the two CPU twins."""
    restart_limit: int = Field(5, ge=0, alias="GATEWAY_TRITON_RESTART_LIMIT")
    """`gateway up` restarts a tritonserver that exits at most this many times per window
    (waiting 0 s, 1 s, 2 s, … up to 30 s between), then exits with status 1."""
    restart_window_seconds: float = Field(
        300.0, gt=0, alias="GATEWAY_TRITON_RESTART_WINDOW_SECONDS"
    )
    """The window `GATEWAY_TRITON_RESTART_LIMIT` counts restarts in."""


class ServerSettings(_EnvGroup):
    host: str = Field("127.0.0.1", alias="GATEWAY_HOST")
    port: int = Field(8080, alias="GATEWAY_PORT")
    max_body_bytes: int = Field(1024 * 1024, alias="GATEWAY_MAX_BODY_BYTES")
    """Largest request body accepted; larger ones get 413."""
    max_messages: int = Field(2048, ge=1, alias="GATEWAY_MAX_MESSAGES")
    """Most chat messages in one run request (OpenAI's own limit); more get 400 before the
    chat template renders them."""
    max_prompt_characters: int = Field(262_144, ge=1, alias="GATEWAY_MAX_PROMPT_CHARACTERS")
    """Most characters in one run's messages (roles and contents) or prompt, or in one
    embeddings request's texts; more get 400 before any rendering or tokenizing."""
    max_embedding_inputs: int = Field(100, ge=1, alias="GATEWAY_MAX_EMBEDDING_INPUTS")
    """Most texts (or token-id lists) in one embeddings request (Workers AI's batch limit)."""
    max_embedding_tokens: int = Field(32_768, ge=1, alias="GATEWAY_MAX_EMBEDDING_TOKENS")
    """Most tokens of one embeddings request's inputs together; more get 400 before the
    backend sees any."""
    sse_keepalive_seconds: float = Field(15.0, gt=0, alias="GATEWAY_SSE_KEEPALIVE_SECONDS")
    """A `: keep-alive` comment goes out when a stream has been silent this long (0 would
    re-arm its timer at once, forever: a busy loop per stream)."""
    sse_send_timeout_seconds: float = Field(30.0, gt=0, alias="GATEWAY_SSE_SEND_TIMEOUT_SECONDS")
    """A client that has not taken an event for this long is cut off (and billed what it
    was sent): a reader that stops reading cannot pin a stream, its buffers or its slot."""
    sse_buffer_bytes: int = Field(64 * 1024, ge=4096, alias="GATEWAY_SSE_BUFFER_BYTES")
    """Per stream, the most the gateway buffers for a slow client, in its own write buffer
    and again in the kernel's socket buffer (which otherwise grows to megabytes)."""
    max_header_bytes: int = Field(32 * 1024, ge=1024, alias="GATEWAY_MAX_HEADER_BYTES")
    """A request line and headers over this size get 431 (a 64 MB header is not read)."""
    max_header_count: int = Field(100, ge=8, alias="GATEWAY_MAX_HEADER_COUNT")
    """More request headers than this get 431."""
    header_timeout_seconds: float = Field(10.0, gt=0, alias="GATEWAY_HEADER_TIMEOUT_SECONDS")
    """A request head not complete this long after it began (or its connection opened) gets
    408: a half-sent request cannot hold a connection."""
    body_timeout_seconds: float = Field(30.0, gt=0, alias="GATEWAY_BODY_TIMEOUT_SECONDS")
    """A request body not complete this long after its head gets 408."""
    keepalive_timeout_seconds: float = Field(5.0, gt=0, alias="GATEWAY_KEEPALIVE_TIMEOUT_SECONDS")
    """An idle kept-alive connection is closed after this long."""
    max_connections: int = Field(2048, ge=1, alias="GATEWAY_MAX_CONNECTIONS")
    """Open connections per process (API and metrics ports together); one more gets 503."""
    metrics_port: int = Field(9464, ge=0, le=65535, alias="GATEWAY_METRICS_PORT")
    """`/metrics` is served on this port only, on `GATEWAY_HOST`; 0: on the API port."""
    allowed_hosts: str = Field("localhost,127.0.0.1,[::1]", alias="GATEWAY_ALLOWED_HOSTS")
    """Comma-separated `Host` names (no port) the admin API and the playground answer, or `*`
    for any: a page on an attacker's name that resolves here (DNS rebinding) is refused."""
    shutdown_grace_seconds: float = Field(30.0, ge=0, alias="GATEWAY_SHUTDOWN_GRACE_SECONDS")
    """On SIGTERM, open streams may finish for this long before they are cut."""
    cors_allow_origins: str = Field("", alias="GATEWAY_CORS_ALLOW_ORIGINS")
    """Comma-separated origins (`https://app.example.com`) whose pages may call the account
    API, or `*` for any; empty: no cross-origin access. See `gateway/cors.py`."""

    @field_validator("cors_allow_origins")
    @classmethod
    def _origins_only(cls, value: str) -> str:
        for origin in allowed_origins(value):
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"GATEWAY_CORS_ALLOW_ORIGINS: {origin!r} is not an origin: "
                    "scheme://host[:port], without a path or a trailing slash"
                )
        return value

    @property
    def cors_origins(self) -> frozenset[str]:
        return frozenset(allowed_origins(self.cors_allow_origins))

    @property
    def allowed_host_names(self) -> frozenset[str]:
        return frozenset(host_names(self.allowed_hosts))


class SecuritySettings(_EnvGroup):
    environment: Literal["development", "production"] = Field("development", alias="GATEWAY_ENV")
    """In production the gateway refuses to start without a strong admin token."""
    admin_token: str | None = Field(None, alias="GATEWAY_ADMIN_TOKEN")
    """Bearer token of the admin API; unset, the admin API refuses every request."""
    token_cache_seconds: float = Field(5.0, ge=0, alias="GATEWAY_TOKEN_CACHE_SECONDS")
    """A replica trusts a token it verified for this long; revocations reach the other
    replicas through Redis at once, or within this without it; 0: every request asks the
    database."""
    auth_failures_per_minute: int = Field(60, ge=0, alias="GATEWAY_AUTH_FAILURES_PER_MINUTE")
    """Failed authentications per client address and minute, after which its requests get
    429 unchecked until the minute ends; 0: counted, never throttled."""

    @model_validator(mode="after")
    def _an_admin_token_in_production(self) -> SecuritySettings:
        if self.environment == "production" and not self.admin_token:
            raise ValueError("GATEWAY_ADMIN_TOKEN is required in production")
        return self


class UsageSettings(_EnvGroup):
    enabled: bool = Field(True, alias="GATEWAY_USAGE_ENABLED")
    """Meter every request; off only to measure metering's own cost (`python -m bench`)."""
    journal_dir: Path = Field(Path("var/usage-journal"), alias="GATEWAY_USAGE_JOURNAL_DIR")
    """Where open and unwritten usage records survive a crash of the process (a local disk)."""
    max_pending: int = Field(10_000, ge=1, alias="GATEWAY_USAGE_MAX_PENDING")
    """Usage records held before the database has them; when full, new work gets 503."""
    flush_interval_seconds: float = Field(0.5, gt=0, alias="GATEWAY_USAGE_FLUSH_INTERVAL_SECONDS")
    """How often finished records are written, in one transaction per batch."""
    batch_size: int = Field(500, ge=1, alias="GATEWAY_USAGE_BATCH_SIZE")


class LimitSettings(_EnvGroup):
    """Per-account defaults; an account's own limits (admin API) override them. 0 = none."""

    requests_per_minute: int = Field(600, ge=0, alias="GATEWAY_LIMIT_REQUESTS_PER_MINUTE")
    tokens_per_minute: int = Field(200_000, ge=0, alias="GATEWAY_LIMIT_TOKENS_PER_MINUTE")
    concurrent_streams: int = Field(64, ge=0, alias="GATEWAY_LIMIT_CONCURRENT_STREAMS")
    monthly_tokens: int = Field(0, ge=0, alias="GATEWAY_LIMIT_MONTHLY_TOKENS")
    cache_seconds: float = Field(5.0, ge=0, alias="GATEWAY_LIMIT_CACHE_SECONDS")
    """How long a replica keeps an account's limits before reading them again."""
    local_fallback: bool = Field(False, alias="GATEWAY_LIMIT_LOCAL_FALLBACK")
    """While Redis is down, admit runs against this replica's own counters (each replica then
    grants a whole budget) instead of refusing them with 503; off: a budget is a budget."""


class RedisSettings(_EnvGroup):
    """The Redis client behind shared limits: a dead or stalled Redis fails fast, not hangs."""

    connect_timeout_seconds: float = Field(0.5, gt=0, alias="REDIS_CONNECT_TIMEOUT_SECONDS")
    socket_timeout_seconds: float = Field(1.0, gt=0, alias="REDIS_SOCKET_TIMEOUT_SECONDS")
    """Longest wait for one reply; a timed-out command is not retried (it may have run)."""
    retries: int = Field(1, ge=0, le=5, alias="REDIS_RETRIES")
    """Retries, without backoff, of a command whose connection broke (a Redis that came back
    leaves stale pooled connections behind)."""
    health_check_interval_seconds: float = Field(
        5.0, ge=0, alias="REDIS_HEALTH_CHECK_INTERVAL_SECONDS"
    )
    """A pooled connection idle this long is pinged before it is used; 0: never."""


class MetricsSettings(_EnvGroup):
    per_account: bool = Field(False, alias="GATEWAY_METRICS_PER_ACCOUNT")
    """Token counters labelled by account: one series per account, so off by default."""


class Settings(_EnvGroup):
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    triton: TritonSettings = Field(default_factory=TritonSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    usage: UsageSettings = Field(default_factory=UsageSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    redis_url: str | None = Field(None, alias="REDIS_URL")
    """Shared state of several replicas (rate limits); unset: in-process state."""

    @model_validator(mode="after")
    def _strong_admin_token_where_others_reach_it(self) -> Settings:
        check_admin_token(self, self.server.host)
        return self


class WeakAdminToken(ValueError):
    """The admin token others could reach is guessable; the message never quotes it."""


def settings_problems(error: ValidationError) -> str:
    """A start-up refusal in one line (pydantic's own shows each input, here hidden)."""
    return "; ".join(
        str(problem["msg"]).removeprefix("Value error, ") for problem in error.errors()
    )


def check_admin_token(settings: Settings, host: str) -> None:
    """In production, or listening beyond loopback, the admin token must be strong:
    `WeakAdminToken` says why."""
    token = settings.security.admin_token
    if token is None:
        return
    if settings.security.environment != "production" and is_loopback(host):
        return
    weakness = admin_token_weakness(token)
    if weakness is not None:
        where = (
            "in production"
            if settings.security.environment == "production"
            else f"when listening on {host}"
        )
        raise WeakAdminToken(
            f"GATEWAY_ADMIN_TOKEN is too weak {where}: {weakness}; generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )


def get_settings() -> Settings:
    return Settings()
