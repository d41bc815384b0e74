"""Where budgets, reservations, the profile cache and the rate-limit counters live.

`StateStore` is the one interface. `open_store` picks the backend from `PERSON_ENRICH_STATE_URL`:
`memory://` (one process), `sqlite:///path` (durable on one host), `redis://...` (shared by replicas). The profile
cache (person data) has its own setting, `PERSON_ENRICH_CACHE_URL`: process memory unless the operator opts in to
`shared` (the state store) or a store of its own (`open_cache_store`).

SQLite URLs read as SQLAlchemy reads them: `sqlite:////var/lib/pe/state.db` (four slashes) is absolute,
`sqlite:///state.db` (three) is relative to the working directory at start, and is resolved then, once.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

from person_enrich_mcp.errors import ConfigurationError
from person_enrich_mcp.state.base import Account, BudgetSnapshot, Release, ReserveOutcome, StateStore
from person_enrich_mcp.state.memory import MemoryStore

__all__ = [
    "SHARED_CACHE",
    "Account",
    "BudgetSnapshot",
    "MemoryStore",
    "Release",
    "ReserveOutcome",
    "StateStore",
    "check_cache_url",
    "check_store_url",
    "describe_store",
    "open_cache_store",
    "open_store",
    "sqlite_path",
]

logger = logging.getLogger(__name__)

STATE_SETTING = "PERSON_ENRICH_STATE_URL"
CACHE_SETTING = "PERSON_ENRICH_CACHE_URL"
# `PERSON_ENRICH_CACHE_URL=shared`: the profile cache lives in the state store.
SHARED_CACHE = "shared"
_SCHEMES = ("memory", "sqlite", "redis", "rediss", "unix")


def sqlite_path(url: str, setting: str = STATE_SETTING) -> Path:
    """The absolute file a `sqlite://` URL names: four slashes absolute, three relative to the working directory.

    Raises:
        ConfigurationError: for a URL without a file, or an in-memory database (nothing durable about it).
    """
    rest = url.split("://", 1)[1]
    if not rest.startswith("/"):
        raise ConfigurationError(
            f"{setting}: {url!r} names no file; use sqlite:////absolute/path.db (four slashes) "
            "or sqlite:///relative/path.db (three)"
        )
    path = rest[1:]
    if not path or path.endswith("/"):
        raise ConfigurationError(f"{setting}: sqlite needs a file, e.g. sqlite:////var/lib/pe/state.db")
    if path.split("?", 1)[0] in (":memory:", "file::memory:") or "mode=memory" in path:
        raise ConfigurationError(
            f"{setting}: an in-memory SQLite database keeps nothing across restarts; use memory:// for state that "
            "lives with the process, or a file, e.g. sqlite:////var/lib/pe/state.db"
        )
    return Path(path).absolute()


def check_store_url(url: str, setting: str = STATE_SETTING) -> str:
    """The backend a store URL names (`memory`, `sqlite` or `redis`), checked without connecting.

    Raises:
        ConfigurationError: for an unknown scheme or a SQLite URL without a file.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme not in _SCHEMES:
        raise ConfigurationError(
            f"{setting}: unknown scheme {scheme!r}; use memory://, sqlite:///path or redis://host:port/db"
        )
    if scheme == "sqlite":
        sqlite_path(url, setting)
        return "sqlite"
    return "memory" if scheme == "memory" else "redis"


def open_store(url: str, setting: str = STATE_SETTING) -> StateStore:
    """The store a URL names.

    Raises:
        ConfigurationError: for an unknown scheme, a missing path, or Redis without the `redis` package.
    """
    kind = check_store_url(url, setting)
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        path = sqlite_path(url, setting)
        if url.split("://", 1)[1].startswith("//"):
            logger.info("%s: SQLite file %s", setting, path)
        else:  # three slashes: easy to mean /var/... and get var/... under whatever directory the server starts in
            logger.warning(
                "%s: SQLite file %s (relative to the working directory; for an absolute path use four slashes, "
                "sqlite:////%s)",
                setting,
                path,
                str(path).lstrip("/"),
            )
        from person_enrich_mcp.state.sqlite import SQLiteStore

        return SQLiteStore(path)
    try:
        from person_enrich_mcp.state.redis import RedisStore
    except ImportError:  # pragma: no cover - depends on the install
        raise ConfigurationError(
            f"{setting} names Redis but the redis package is missing: install the redis extra from the checkout "
            "(pip install '.[redis]', or uv tool install '.[redis]')"
        ) from None
    return RedisStore(url)


def check_cache_url(url: str) -> str:
    """`shared`, or the backend the cache URL names.

    Raises:
        ConfigurationError: as `check_store_url`, naming `PERSON_ENRICH_CACHE_URL`.
    """
    return SHARED_CACHE if url.strip().lower() == SHARED_CACHE else check_store_url(url, CACHE_SETTING)


def open_cache_store(url: str, state: StateStore) -> tuple[StateStore, bool]:
    """The store the profile cache lives in, and whether it is its own (to be closed with the server).

    Raises:
        ConfigurationError: as `open_store`, naming `PERSON_ENRICH_CACHE_URL`.
    """
    if check_cache_url(url) == SHARED_CACHE:
        return state, False
    return open_store(url, CACHE_SETTING), True


def describe_store(url: str) -> str:
    """A store URL as it may be logged: no user name or password."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=netloc).geturl()
