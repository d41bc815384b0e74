"""Fault injection: rules that make the next (or a random share of) requests fail in a chosen way."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any

from person_enrich_mcp.sandbox.config import FaultRule


@dataclass
class ActiveRule:
    """A rule plus its run-time state: id, remaining count and how often it fired."""

    rule_id: int
    rule: FaultRule
    remaining: int | None
    applied: int = 0
    skipped: int = 0

    def to_json(self) -> dict[str, Any]:
        """The rule as listed by `GET /_sandbox/faults`."""
        return {"id": self.rule_id, **self.rule.to_dict(), "remaining": self.remaining, "applied": self.applied}


class FaultInjector:
    """Holds the active rules and decides, request by request, whether one fires."""

    def __init__(self, rules: tuple[FaultRule, ...] = (), seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self._rules: list[ActiveRule] = []
        self._next_id = 1
        self._lock = threading.Lock()
        for rule in rules:
            self.add(rule)

    def add(self, rule: FaultRule) -> dict[str, Any]:
        """Activate a rule; returns its listing."""
        with self._lock:
            active = ActiveRule(self._next_id, rule, rule.count)
            self._next_id += 1
            self._rules.append(active)
            return active.to_json()

    def clear(self) -> int:
        """Remove every rule; returns how many there were."""
        with self._lock:
            count = len(self._rules)
            self._rules.clear()
            return count

    def list(self) -> list[dict[str, Any]]:
        """Every rule with its remaining count (null for rate rules) and times applied."""
        with self._lock:
            return [r.to_json() for r in self._rules]

    def pick(self, endpoint: str) -> FaultRule | None:
        """The first rule that fires for this request, consuming a count or drawing from the seeded RNG."""
        with self._lock:
            for active in self._rules:
                rule = active.rule
                if rule.endpoint is not None and rule.endpoint != endpoint:
                    continue
                if active.skipped < rule.after:
                    active.skipped += 1
                    continue
                if active.remaining is not None:
                    if active.remaining <= 0:
                        continue
                    active.remaining -= 1
                elif rule.rate is None or self._rng.random() >= rule.rate:
                    continue
                active.applied += 1
                return rule
            return None
