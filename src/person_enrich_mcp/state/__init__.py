"""Where budgets, reservations, the profile cache and the rate-limit counters live.

`StateStore` is the one interface. `open_store` picks the backend from `PERSON_ENRICH_STATE_URL`:
`memory://` (one process), `sqlite:///path` (durable on one host), `redis://...` (shared by replicas).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from person_enrich_mcp.errors import ConfigurationError
from person_enrich_mcp.state.base import Account, BudgetSnapshot, ReserveOutcome, StateStore
from person_enrich_mcp.state.memory import MemoryStore

__all__ = ["Account", "BudgetSnapshot", "MemoryStore", "ReserveOutcome", "StateStore", "open_store"]


def open_store(url: str) -> StateStore:
    """The store a URL names.

    Raises:
        ConfigurationError: for an unknown scheme, a missing path, or Redis without the `redis` package.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return MemoryStore()
    if scheme == "sqlite":
        path = url.split("://", 1)[1]
        path = path[1:] if path.startswith("/") and not path.startswith("//") else path
        if not path or path == "/":
            raise ConfigurationError(
                "PERSON_ENRICH_STATE_URL: sqlite needs a file, e.g. sqlite:////var/lib/pe/state.db"
            )
        from person_enrich_mcp.state.sqlite import SQLiteStore

        return SQLiteStore(path)
    if scheme in ("redis", "rediss", "unix"):
        try:
            from person_enrich_mcp.state.redis import RedisStore
        except ImportError:  # pragma: no cover - depends on the install
            raise ConfigurationError(
                "PERSON_ENRICH_STATE_URL names Redis but the redis package is missing: "
                "install the redis extra from the checkout (pip install '.[redis]', or uv tool install '.[redis]')"
            ) from None
        return RedisStore(url)
    raise ConfigurationError(
        f"PERSON_ENRICH_STATE_URL: unknown scheme {scheme!r}; use memory://, sqlite:///path or redis://host:port/db"
    )
