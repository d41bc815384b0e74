"""Where budgets, reservations, the profile cache and the rate-limit counters live.

`StateStore` is the one interface. `open_store` picks the backend from `PERSON_ENRICH_STATE_URL`:
`memory://` (one process), `sqlite:///path` (durable on one host), `redis://...` (shared by replicas).
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
    "Account",
    "BudgetSnapshot",
    "MemoryStore",
    "Release",
    "ReserveOutcome",
    "StateStore",
    "open_store",
    "sqlite_path",
]

logger = logging.getLogger(__name__)


def sqlite_path(url: str) -> Path:
    """The absolute file a `sqlite://` URL names: four slashes absolute, three relative to the working directory.

    Raises:
        ConfigurationError: for a URL without a file, or an in-memory database (nothing durable about it).
    """
    rest = url.split("://", 1)[1]
    if not rest.startswith("/"):
        raise ConfigurationError(
            f"PERSON_ENRICH_STATE_URL: {url!r} names no file; use sqlite:////absolute/path.db (four slashes) "
            "or sqlite:///relative/path.db (three)"
        )
    path = rest[1:]
    if not path or path.endswith("/"):
        raise ConfigurationError("PERSON_ENRICH_STATE_URL: sqlite needs a file, e.g. sqlite:////var/lib/pe/state.db")
    if path.split("?", 1)[0] in (":memory:", "file::memory:") or "mode=memory" in path:
        raise ConfigurationError(
            "PERSON_ENRICH_STATE_URL: an in-memory SQLite database keeps nothing across restarts; use memory:// "
            "for state that lives with the process, or a file, e.g. sqlite:////var/lib/pe/state.db"
        )
    return Path(path).absolute()


def open_store(url: str) -> StateStore:
    """The store a URL names.

    Raises:
        ConfigurationError: for an unknown scheme, a missing path, or Redis without the `redis` package.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return MemoryStore()
    if scheme == "sqlite":
        path = sqlite_path(url)
        if url.split("://", 1)[1].startswith("//"):
            logger.info("state store: SQLite file %s", path)
        else:  # three slashes: easy to mean /var/... and get var/... under whatever directory the server starts in
            logger.warning(
                "state store: SQLite file %s (relative to the working directory; for an absolute path use four "
                "slashes, sqlite:////%s)",
                path,
                str(path).lstrip("/"),
            )
        from person_enrich_mcp.state.sqlite import SQLiteStore

        return SQLiteStore(path)
    if scheme in ("redis", "rediss", "unix"):
        try:
            from person_enrich_mcp.state.redis import RedisStore
        except ImportError:  # pragma: no cover - depends on the install
            raise ConfigurationError(
                "PERSON_ENRICH_STATE_URL names Redis but the redis package is missing: "
                "pip install 'person-enrich-mcp[redis]'"
            ) from None
        return RedisStore(url)
    raise ConfigurationError(
        f"PERSON_ENRICH_STATE_URL: unknown scheme {scheme!r}; use memory://, sqlite:///path or redis://host:port/db"
    )
