"""Everything a running sandbox holds, and how it is built from a config."""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from person_enrich_mcp.sandbox.autocomplete import SuggestionIndex
from person_enrich_mcp.sandbox.billing import Ledger
from person_enrich_mcp.sandbox.catalog import CONTACT_FIELDS, FieldCatalog
from person_enrich_mcp.sandbox.config import ConfigError, SandboxConfig
from person_enrich_mcp.sandbox.dataset import Dataset, generate_dataset
from person_enrich_mcp.sandbox.endpoints import CONTACT_PATH, ENRICH_PATH, LIVE_PATH, SEARCH_PATH
from person_enrich_mcp.sandbox.faults import FaultInjector
from person_enrich_mcp.sandbox.filters import SearchIndex
from person_enrich_mcp.sandbox.hostile import make_hostile
from person_enrich_mcp.sandbox.plans import Plan, PlanBook
from person_enrich_mcp.sandbox.ratelimit import RateLimiter

IDENTIFIER_KINDS = ("url", "email", "multi_email", "opted_out_url", "hostile_url")


@dataclass
class SandboxState:
    """Everything the running sandbox holds: config, dataset, indices, ledger, limiter, faults, plans, connections."""

    config: SandboxConfig
    initial_config: SandboxConfig
    dataset: Dataset
    catalog: FieldCatalog
    search_index: SearchIndex
    suggestions: SuggestionIndex
    ledger: Ledger
    limiter: RateLimiter
    faults: FaultInjector
    plans: PlanBook
    # Filled by the server's protocol class so faults can cut a connection; empty for in-process ASGI use.
    transports: dict[tuple[str, int], asyncio.Transport] = field(
        default_factory=dict[tuple[str, int], asyncio.Transport]
    )
    hanging: set[asyncio.Transport] = field(default_factory=set[asyncio.Transport])
    # API requests received and not yet answered: lets a test act while a call is on the wire.
    in_flight: int = 0
    _samples: dict[str, list[str]] = field(default_factory=dict[str, list[str]])

    def reset(self) -> None:
        """Back to the state at start: start-up config, fault rules and plans, empty ledger and rate windows."""
        config = self.initial_config
        self.config = config
        self.ledger = Ledger(config.balance)
        self.limiter = RateLimiter(config.clock)
        self.faults = FaultInjector(config.faults, config.fault_seed)
        self.plans = PlanBook(config.default_plan)

    def release_hanging(self) -> None:
        """Abort every connection held open by a `timeout` fault (called on shutdown, in the server's loop)."""
        for transport in list(self.hanging):
            transport.abort()
        self.hanging.clear()

    def plan_vocabularies(self) -> dict[str, Collection[str]]:
        """The field names a plan may disable or price, per endpoint path."""
        return plan_vocabularies(self.catalog)

    def identifiers(self, kind: str) -> list[str]:
        """A deterministic list of valid identifiers of one kind (cached); shuffled except `hostile_url`."""
        cached = self._samples.get(kind)
        if cached is not None:
            return cached
        dataset = self.dataset
        if kind == "url":
            items = [p.profile_url for p in dataset.searchable]
        elif kind == "email":
            items = [p.business_emails[0] for p in dataset.searchable if p.business_emails]
        elif kind == "multi_email":
            items = list(dataset.multi_candidate_emails())
        elif kind == "hostile_url":
            items = [p.profile_url for p in dataset.hostile]
        else:
            items = [p.profile_url for p in dataset.people if p.opted_out]
        if kind != "hostile_url":  # hostile people are "the first N": keep that order
            random.Random(f"{dataset.seed}:{kind}").shuffle(items)
        self._samples[kind] = items
        return items


def plan_vocabularies(catalog: FieldCatalog) -> dict[str, Collection[str]]:
    """The field names a plan may disable or price, per endpoint path (autocomplete has none)."""
    return {
        ENRICH_PATH: catalog.profile_paths,
        LIVE_PATH: catalog.profile_paths,
        CONTACT_PATH: CONTACT_FIELDS,
        SEARCH_PATH: catalog.search_paths,
    }


@functools.lru_cache(maxsize=8)
def _prepared(
    seed: int, people: int, companies: int, hostile_people: int
) -> tuple[Dataset, FieldCatalog, SearchIndex, SuggestionIndex]:
    # Datasets are immutable once built, so apps in one process (tests, benchmarks) share one per size.
    dataset = generate_dataset(seed, people, companies)
    # Before anything derives search rows or indices from the profiles, so those see the hostile text too.
    dataset.hostile = make_hostile(dataset.searchable, hostile_people)
    return dataset, FieldCatalog(dataset), SearchIndex(dataset), SuggestionIndex(dataset.searchable)


def build_state(config: SandboxConfig) -> SandboxState:
    """Generate (or reuse) the dataset and build the run-time state for `config`."""
    dataset, catalog, index, suggestions = _prepared(
        config.seed, config.people, config.companies, config.hostile_people
    )
    check_gated(config.gated_fields, catalog)
    check_plan(config.default_plan, plan_vocabularies(catalog))
    return SandboxState(
        config=config,
        initial_config=config,
        dataset=dataset,
        catalog=catalog,
        search_index=index,
        suggestions=suggestions,
        ledger=Ledger(config.balance),
        limiter=RateLimiter(config.clock),
        faults=FaultInjector(config.faults, config.fault_seed),
        plans=PlanBook(config.default_plan),
    )


def check_gated(gated: Sequence[str], catalog: FieldCatalog) -> None:
    """Refuse `gated_fields` entries that name nothing enrich can return."""
    unknown = [g for g in gated if g not in catalog.enrich_paths]
    if unknown:
        raise ConfigError(f"gated field(s) not in the enrich catalog: {', '.join(unknown)}")


def check_plan(plan: Plan, vocabularies: dict[str, Collection[str]]) -> None:
    """Refuse a plan built in code (the config's `default_plan`) that names fields its endpoints do not have."""
    for path, names in plan.disabled_fields.items():
        unknown = [n for n in names if n not in vocabularies.get(path, ())]
        if unknown:
            raise ConfigError(f"default plan disables field(s) not returned by {path}: {', '.join(unknown)}")
