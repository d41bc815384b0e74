"""`person-enrich-mcp check`: what a new key can do, found out without spending a credit.

It reads `GET /user/credits` (key and version header), `GET /account/endpoints` (which person endpoints and
fields the account has, their rate limits and prices) and, where that listing is not served, an empty request to
`/person/contact/enrich` (which API revision the upstream speaks). All of these are free. A problem that stops
the server from working is one actionable sentence and a non-zero exit; a limitation of the plan (no contact
data, no live refresh, withheld fields) is reported, and the exit stays 0.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

import httpx2

from person_enrich_mcp import __version__
from person_enrich_mcp.account import AccountService, AccountView
from person_enrich_mcp.api import CONTACT, ENRICH, LIVE, SEARCH, Dialect, PersonAPI, RateLimiter, RetryPolicy, contract
from person_enrich_mcp.api.client import API_VERSION
from person_enrich_mcp.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PersonEnrichError,
    format_credits,
)
from person_enrich_mcp.settings import Settings
from person_enrich_mcp.state import MemoryStore

_FEATURES: dict[str, str] = {
    ENRICH: "profile look-ups (enrich_person_by_url and the enrich step of search_then_enrich)",
    CONTACT: "contact fields (emails, phones) and enrich_person_by_email",
    LIVE: "force_fetch / enrich_realtime (fresh profiles from the web)",
    SEARCH: "search_then_enrich",
}
_CORE = (ENRICH, SEARCH)


@dataclass(slots=True)
class EndpointReport:
    """One person endpoint as the check found it."""

    path: str
    enabled: bool | None
    rate_limit_rpm: int
    disabled_fields: list[str] = field(default_factory=list[str])


@dataclass(slots=True)
class CheckReport:
    """Everything `check` found out, and the problems and limitations in one sentence each."""

    base_url: str
    api_version: str = API_VERSION
    key_accepted: bool | None = None
    dialect: str | None = None
    dialect_source: str | None = None
    account_listing: bool = False
    balance: str | None = None
    token_limit_rpm: int | None = None
    prices: dict[str, str] = field(default_factory=dict[str, str])
    endpoints: dict[str, EndpointReport] = field(default_factory=dict[str, EndpointReport])
    problems: list[str] = field(default_factory=list[str])
    limitations: list[str] = field(default_factory=list[str])

    @property
    def ok(self) -> bool:
        """Nothing stops the server from working."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """The report as JSON (for scripts: `check --json`)."""
        return {"ok": self.ok, **asdict(self)}

    def render(self) -> str:
        """The report for a person at a terminal."""
        lines = [f"person-enrich-mcp {__version__} check of {self.base_url} (x-api-version {self.api_version})"]
        if self.key_accepted:
            lines.append("key: accepted")
        if self.dialect:
            lines.append(f"API revision: {self.dialect} (decided by {self.dialect_source})")
        if self.endpoints:
            lines.append(
                "person endpoints"
                + (" (from the account listing):" if self.account_listing else " (listing not served; documented):")
            )
            for name, entry in self.endpoints.items():
                state = {True: "enabled", False: "NOT ENABLED", None: "not listed"}[entry.enabled]
                withheld = f", withholds {', '.join(entry.disabled_fields)}" if entry.disabled_fields else ""
                lines.append(f"  {name:<13}{entry.path:<44}{state}, {entry.rate_limit_rpm}/min{withheld}")
        if self.prices:
            lines.append("prices: " + "; ".join(f"{k} {v}" for k, v in self.prices.items()))
        if self.token_limit_rpm is not None:
            lines.append(f"key-wide limit: {self.token_limit_rpm} requests/min")
        if self.balance is not None:
            lines.append(f"balance: {self.balance} credits")
        lines.extend(f"limitation: {text}" for text in self.limitations)
        lines.extend(f"PROBLEM: {text}" for text in self.problems)
        lines.append("ok: nothing was spent" if self.ok else "not ok: nothing was spent")
        return "\n".join(lines)


def _client(settings: Settings, transport: httpx2.AsyncBaseTransport | None) -> PersonAPI:
    limiter = RateLimiter(
        MemoryStore(),
        limits=dict(contract.DOCUMENTED_RPM),
        window_seconds=settings.rate_window_seconds,
        max_wait=settings.max_wait_seconds,
        bucket_prefix="check",
    )
    return PersonAPI(
        base_url=settings.api_base_url,
        api_key=settings.require_api_key(),
        limiter=limiter,
        retry=RetryPolicy(max_retries=1, base_delay=0.2, max_delay=1.0, max_wait=settings.max_wait_seconds),
        timeout=httpx2.Timeout(settings.request_timeout, connect=settings.connect_timeout),
        user_agent=f"person-enrich-mcp/{__version__} (check)",
        transport=transport,
    )


async def run_check(settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None) -> CheckReport:
    """Check the key, the version header, the dialect, the account's endpoints, limits, prices and balance.

    Raises:
        ConfigurationError: when no API key is configured.
    """
    from person_enrich_mcp.server import configured_rpm  # the server's reading of the rate-limit settings

    report = CheckReport(base_url=settings.api_base_url)
    api = _client(settings, transport)
    try:
        if not await _check_key(api, report):
            return report
        account = AccountService(
            api,
            MemoryStore(),
            scope="check",
            pinned=None if settings.api_dialect == "auto" else Dialect(settings.api_dialect),
            configured_rpm=configured_rpm(settings),
        )
        try:
            view = await account.view()
        except PersonEnrichError as exc:
            report.problems.append(f"Reading the account failed ({type(exc).__name__}): {exc}. Retry in a minute.")
            return report
        _describe(view, api.limiter, report)
    finally:
        await api.aclose()
    return report


async def _check_key(api: PersonAPI, report: CheckReport) -> bool:
    """The key and the version header, through the free balance read; False when nothing more can be learned."""
    try:
        credits = (await api.user_credits()).data.credits
    except AuthenticationError:
        report.key_accepted = False
        report.problems.append(
            "The upstream rejected the API key (401): set CRUSTDATA_API_KEY to a valid Crustdata key."
        )
        return False
    except APIConnectionError:
        report.problems.append(
            f"Cannot reach {report.base_url}: check the network, or PERSON_ENRICH_API_BASE_URL if it is set."
        )
        return False
    except BadRequestError as exc:
        report.problems.append(
            f"The upstream rejected the request headers (400: {str(exc)[:200]}): this server sends x-api-version "
            f"{report.api_version}; check that PERSON_ENRICH_API_BASE_URL points at the Crustdata API."
        )
        return False
    except NotFoundError:
        # An upstream of the overview's revision has no balance to ask; an empty enrich is a free 400 once the
        # key is accepted (and its missing routes answer 404 before they look at the key).
        accepted = await api.key_accepted()
        report.key_accepted = accepted
        if accepted is False:
            report.problems.append(
                "The upstream rejected the API key (401): set CRUSTDATA_API_KEY to a valid Crustdata key."
            )
            return False
        return True
    except APIError as exc:
        report.problems.append(f"The upstream failed ({type(exc).__name__}): {str(exc)[:200]}. Retry later.")
        return False
    report.key_accepted = True
    report.balance = format_credits(credits)
    if credits <= 0:
        report.problems.append("The account has no credits left: top it up before looking anyone up.")
    return True


def _describe(view: AccountView, limiter: RateLimiter, report: CheckReport) -> None:
    report.dialect = view.dialect.value
    report.dialect_source = view.dialect_source
    report.account_listing = view.source == "account"
    report.token_limit_rpm = view.token_limit_rpm
    if view.balance is not None:
        report.balance = format_credits(view.balance)
    names = (ENRICH, CONTACT, LIVE, SEARCH) if view.dialect is Dialect.CURRENT else (ENRICH, SEARCH)
    for name in names:
        entry = view.access(name)
        report.endpoints[name] = EndpointReport(
            path=contract.PATHS[name],
            enabled=entry.enabled if entry is not None else None,
            rate_limit_rpm=limiter.limit(name),
            disabled_fields=sorted(entry.disabled_fields) if entry is not None else [],
        )
        if entry is not None and not entry.enabled:
            sentence = (
                f"{contract.PATHS[name]} is not enabled for this account, so {_FEATURES[name]} will be refused; "
                "ask your Crustdata account manager to enable it."
            )
            (report.problems if name in _CORE else report.limitations).append(sentence)
        elif entry is not None and entry.disabled_fields:
            report.limitations.append(
                f"{contract.PATHS[name]} withholds {', '.join(sorted(entry.disabled_fields)[:8])}: calls asking for "
                "them are refused before spending; drop them or ask your account manager."
            )
    if not report.account_listing and view.dialect is Dialect.CURRENT:
        report.limitations.append(
            f"{contract.ACCOUNT_ENDPOINTS_PATH} is not served for this key: rate limits and prices are the "
            "documented ones; set PERSON_ENRICH_*_RPM if the account's limits are lower."
        )
    prices = view.prices
    report.prices = {
        "profile": f"{format_credits(prices.enrich.base)}/matched profile",
        "search": f"{prices.search_per_result}/result",
        "source": prices.source,
    }
    if view.dialect is Dialect.CURRENT:
        tiers = ", ".join(f"{t.split('.', 1)[1]} {format_credits(p)}" for t, p in prices.contact.addons.items() if p)
        report.prices["contact"] = tiers or format_credits(prices.contact.base)
        report.prices["live"] = f"{format_credits(prices.live.base)}/profile"


def render_json(report: CheckReport) -> str:
    """The report as one JSON document."""
    return json.dumps(report.to_json(), indent=2, default=lambda o: str(o) if isinstance(o, Decimal) else o)
