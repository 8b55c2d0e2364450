"""The async engine, owned by the app's lifespan, and one session per request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def create_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url, pool_size=pool_size, pool_pre_ping=True, connect_args=_postgres_connect_args(url)
    )


def _postgres_connect_args(url: str) -> dict[str, Any]:
    return {"timeout": 5} if make_url(url).get_backend_name() == "postgresql" else {}


def _sqlite_pragmas(connection: Any, _: object) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class DatabasePlugin(InitPluginProtocol):
    """Creates the engine when the app starts, disposes it when the app stops."""

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self._url = url
        self._pool_size = pool_size
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.lifespan.append(self.lifespan)
        app_config.dependencies["db_session"] = Provide(self.provide_session)
        app_config.dependencies["db_sessions"] = Provide(
            lambda: self.sessions, sync_to_thread=False
        )
        return app_config

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        engine = create_engine(self._url, self._pool_size)
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        try:
            yield
        finally:
            self._sessions = None
            await engine.dispose()

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        if self._sessions is None:
            raise RuntimeError("the database exists only while the app runs")
        return self._sessions

    async def provide_session(self) -> AsyncIterator[AsyncSession]:
        """Commit when the handler succeeds, roll back when it raises."""
        async with self.sessions() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def ready(self) -> bool:
        async with self.sessions() as session:
            await session.execute(text("SELECT 1"))
        return True
