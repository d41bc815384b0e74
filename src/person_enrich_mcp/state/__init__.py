"""Where budgets, reservations, the profile cache and the rate-limit counters live.

`StateStore` is the one interface; `memory` is the backend for a single process. Durable and shared
backends implement the same protocol.
"""

from person_enrich_mcp.state.base import Account, BudgetSnapshot, ReserveOutcome, StateStore
from person_enrich_mcp.state.memory import MemoryStore

__all__ = ["Account", "BudgetSnapshot", "MemoryStore", "ReserveOutcome", "StateStore"]
