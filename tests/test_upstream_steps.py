"""The pipeline's upstream steps (`tools/upstream.py`) driven through their own API against the real sandbox over HTTP.

Each test builds the server's real app state (client, limiter, account, budget, audit log) around a fresh key and
runs the steps the enrichment pipeline runs: profiles (enrich and live), contacts, the overview's enrich, and the
search that turns person ids into profile URLs. What is judged: the bodies the sandbox received, what it billed,
what the reservation booked (charged, and unverified for unknown outcomes), the answers re-joined to what was sent,
progress, and the audit record of every request. Where the upstream re-spells its echoes (`matched_on` in another
spelling of the same identifier) or leaves a row without a profile URL, a transport in front of the real sandbox
rewrites the real answer: the sandbox always echoes its input as given.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import anyio
import httpx2
import pytest

from person_enrich_mcp.account import AccountView
from person_enrich_mcp.api import EnrichEntry, EnrichMatch
from person_enrich_mcp.budget import Owner, Quote, Reservation
from person_enrich_mcp.errors import APIOutcomeUnknownError, ServerError
from person_enrich_mcp.fields import PROFILE_URL_PATH
from person_enrich_mcp.privacy.audit import AuditLog
from person_enrich_mcp.sandbox import SandboxConfig, SandboxServer
from person_enrich_mcp.server import build_server
from person_enrich_mcp.tools import upstream
from person_enrich_mcp.tools.context import AppState
from tests.conftest import ADMIN, Upstream, canary_key, sample_identifiers, settings_for

GROUPS = ("basic_profile", "dev_platform_profiles")  # 2 credits a matched profile on today's /person/enrich
TIERS = ("contact.business_emails", "contact.personal_emails")  # 1 + 2 credits when both come back
PATHS = ("basic_profile.name", "contact.business_emails")  # the overview's 1 + 1
NOBODY = "https://www.linkedin.com/in/nobody-at-all-0f0f0f"
Rewrite = Callable[[str, Any], Any]


# --- the harness --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandboxes() -> Iterator[Callable[..., SandboxServer]]:
    """Small sandboxes per (revision, credits header), shared by this module; fault rules cleared for each test."""
    started: dict[tuple[str, bool], SandboxServer] = {}

    def get(revision: str = "current", *, credits_header: bool = True) -> SandboxServer:
        if (revision, credits_header) not in started:
            config = SandboxConfig(
                revision=cast(Any, revision), credits_header=credits_header, people=400, companies=40,
                rate_limits_enabled=False,
            )  # fmt: skip
            started[revision, credits_header] = SandboxServer(config).start()
        server = started[revision, credits_header]
        assert ADMIN.delete(f"{server.url}/_sandbox/faults").status_code == 200
        return server

    yield get
    for server in started.values():
        server.stop()


def arm(sandbox: SandboxServer, **rule: Any) -> None:
    response = ADMIN.post(f"{sandbox.url}/_sandbox/faults", json=rule)
    assert response.status_code == 200, response.text


class Rewriting(httpx2.AsyncBaseTransport):
    """The real sandbox over HTTP, each successful JSON answer passed through `rewrite(path, payload)`."""

    def __init__(self, rewrite: Rewrite) -> None:
        self._inner = httpx2.AsyncHTTPTransport()
        self._rewrite = rewrite

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        content = await response.aread()
        await response.aclose()
        if response.status_code == 200 and request.url.path.startswith("/person/"):
            content = json.dumps(self._rewrite(request.url.path, json.loads(content))).encode()
        skipped = ("content-length", "content-encoding", "transfer-encoding")
        headers = [(k, v) for k, v in response.headers.items() if k.lower() not in skipped]
        return httpx2.Response(response.status_code, headers=headers, content=content)

    async def aclose(self) -> None:
        await self._inner.aclose()


def respell(url: str) -> str:
    """The same profile URL written another way: http, no `www.`, upper-case host, a trailing slash."""
    slug = url.rsplit("/in/", 1)[1]
    return f"http://LinkedIn.com/in/{slug}/"


def respelled_echoes(path: str, payload: Any) -> Any:
    """Every enrich answer's `matched_on` re-spelled (URLs as `respell`, emails in upper case)."""
    answer: Any = payload
    for entry in cast(list[dict[str, Any]], payload) if isinstance(payload, list) else []:
        echo = str(entry["matched_on"])
        entry["matched_on"] = respell(echo) if "/in/" in echo else echo.upper()
    return answer


@dataclass
class Pipeline:
    """The app state of a server on a fresh key, and what one tool call's runner did."""

    app: AppState
    view: AccountView
    upstream: Upstream
    log: Path
    progress: list[tuple[int, int]] = field(default_factory=list[tuple[int, int]])
    reservation: Reservation | None = None

    def runner(self, total: int, *, held: tuple[Decimal, Decimal] = (Decimal(0), Decimal(0))) -> upstream.Runner:
        """A runner on a new reservation, which already holds `held` (charged, unverified)."""
        self.reservation = Reservation(self.app.budget, Owner("process:steps"), Quote(Decimal(1000), "steps"))
        self.reservation.charge(held[0])
        self.reservation.charge_unverified(held[1])

        async def report(done: int, of: int) -> None:
            self.progress.append((done, of))

        call = self.app.audit.call("enrich_person_by_url", "process:steps", None)
        return upstream.Runner(self.app, self.view, self.reservation, report, total, call)

    @property
    def charged(self) -> Decimal:
        assert self.reservation is not None
        return self.reservation.charged

    @property
    def unverified(self) -> Decimal:
        assert self.reservation is not None
        return self.reservation.unverified

    def records(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [cast(dict[str, Any], json.loads(line)) for line in self.log.read_text(encoding="utf-8").splitlines()]

    def subjects(self, kind: str, identifiers: list[str]) -> list[str]:
        audit = self.app.audit
        assert isinstance(audit, AuditLog)
        return [audit.pseudonyms.of(kind, identifier) for identifier in identifiers]


@asynccontextmanager
async def pipeline(
    sandbox: SandboxServer, tmp_path: Path, *, transport: httpx2.AsyncBaseTransport | None = None, **overrides: Any
) -> AsyncGenerator[Pipeline]:
    """A server's app state against `sandbox` on a fresh key, with an audit log and no retries."""
    key = canary_key("steps")
    log = tmp_path / "audit.jsonl"
    options = {"audit_log": str(log), "max_retries": 0, "request_timeout": 2.0, **overrides}
    server = build_server(settings_for(sandbox.url, key, **options), transport=transport)
    async with server.settings.lifespan(server) as app:  # pyright: ignore[reportOptionalCall]
        yield Pipeline(app, await app.account.view(), Upstream(sandbox.url, key), log)


def urls_of(body: dict[str, Any]) -> list[str]:
    return cast(list[str], body.get("professional_network_profile_urls") or body.get("business_emails") or [])


def charges(records: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """Each record's estimated, charged and unverified credits, and its outcome."""
    return [(r["estimated"], r["charged"], r["unverified"], r["outcome"]) for r in records]


def match(score: float, person_id: int) -> EnrichMatch:
    return EnrichMatch(confidence_score=score, person_data={"crustdata_person_id": person_id})


def entry(matched_on: str, *matches: EnrichMatch, match_type: str = "professional_network_profile_url") -> EnrichEntry:
    return EnrichEntry.model_validate({"matched_on": matched_on, "match_type": match_type, "matches": list(matches)})


# --- pure helpers ---------------------------------------------------------------------------------------------------


def test_chunks_are_batches_of_at_most_25_identifiers_in_order_by_default() -> None:
    items = list(range(51))
    assert upstream.chunks(items) == [items[:25], items[25:50], [50]]
    assert upstream.chunks(items[:25]) == [items[:25]]
    assert upstream.chunks(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert upstream.chunks([], 3) == []


def test_answers_are_rejoined_to_the_urls_sent_even_when_the_echo_is_spelled_differently() -> None:
    sent = ["https://www.linkedin.com/in/ada-one", "https://www.linkedin.com/in/bob-two", NOBODY]
    entries = [
        entry(respell(sent[0]), match(0.5, 1), match(0.9, 2)),
        entry(sent[1], match(1.0, 3)),
        entry("https://www.linkedin.com/in/never-sent", match(1.0, 4)),
        entry("not a url at all", match(1.0, 5)),
    ]
    joined = upstream.rejoin("professional_network_profile_url", entries, sent)
    assert {url: [m.person_data["crustdata_person_id"] for m in ms] for url, ms in joined.items()} == {
        sent[0]: [2, 1],  # best first
        sent[1]: [3],
        NOBODY: [],  # sent, no entry: no match
    }
    assert upstream._matched("professional_network_profile_url", entries, sent) == 2  # pyright: ignore[reportPrivateUsage]


def test_email_answers_are_rejoined_with_the_email_spelling_rules_only() -> None:
    sent = ["ada@northwind-labs.example", "bob@northwind-labs.example"]
    entries = [
        entry("ADA@Northwind-Labs.example", match(0.7, 1), match(0.95, 2), match_type="business_email"),
        entry("https://www.linkedin.com/in/bob", match(1.0, 3), match_type="business_email"),
    ]
    joined = upstream.rejoin("business_email", entries, sent)
    assert {e: [m.person_data["crustdata_person_id"] for m in ms] for e, ms in joined.items()} == {
        sent[0]: [2, 1],
        sent[1]: [],
    }
    assert upstream._matched("business_email", entries, sent) == 1  # pyright: ignore[reportPrivateUsage]
    # Read as profile URLs, an email echo never joins.
    assert upstream._matched("professional_network_profile_url", entries[:1], sent) == 0  # pyright: ignore[reportPrivateUsage]


def test_a_person_id_is_an_integer_and_nothing_else() -> None:
    assert upstream.person_id_of({"crustdata_person_id": 42}) == 42
    assert upstream.person_id_of({"crustdata_person_id": 0}) == 0
    assert upstream.person_id_of({"crustdata_person_id": True}) is None
    assert upstream.person_id_of({"crustdata_person_id": "42"}) is None
    assert upstream.person_id_of({"crustdata_person_id": 4.0}) is None
    assert upstream.person_id_of({}) is None


# --- profiles --------------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_profiles_go_out_in_batches_of_25_each_paid_audited_and_reported_as_progress(
    sandboxes: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    sandbox = sandboxes()
    urls = [*sample_identifiers(sandbox.url, "url", 50), NOBODY]
    async with pipeline(sandbox, tmp_path) as steps:
        runner = steps.runner(len(urls))
        found = await upstream.profiles(runner, urls, GROUPS, live=False)
        await runner.finish()

        sent = steps.upstream.paid_requests()
        assert [r["endpoint"] for r in sent] == ["enrich"] * 3
        assert [urls_of(r["body"]) for r in sent] == [urls[:25], urls[25:50], urls[50:]]
        assert all(r["body"]["fields"] == list(GROUPS) for r in sent)
        assert list(found) == urls and all(found[u] for u in urls[:50]) and found[NOBODY] == []
        assert steps.charged == steps.upstream.billed() == 100 and steps.unverified == 0
        assert steps.progress == [(25, 51), (50, 51), (51, 51)]
        records = steps.records()
        assert [(r["endpoint"], r["kind"], r["identifiers"]) for r in records] == [
            ("enrich", "url", 25), ("enrich", "url", 25), ("enrich", "url", 1)
        ]  # fmt: skip
        assert [r["subjects"] for r in records] == [
            steps.subjects("url", urls[:25]), steps.subjects("url", urls[25:50]), steps.subjects("url", [NOBODY])
        ]  # fmt: skip
        assert all(r["fields"] == list(GROUPS) for r in records)
        assert charges(records) == [("50.00", "50.00", "0.00", "ok"), ("50.00", "50.00", "0.00", "ok"),
                                    ("2.00", "0.00", "0.00", "ok")]  # fmt: skip


@pytest.mark.anyio
async def test_live_profiles_go_to_live_enrich_at_its_price_and_are_audited_as_live(
    sandboxes: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    sandbox = sandboxes()
    urls = sample_identifiers(sandbox.url, "url", 2, offset=60)
    async with pipeline(sandbox, tmp_path) as steps:
        runner = steps.runner(len(urls))
        found = await upstream.profiles(runner, urls, ("basic_profile",), live=True)

        assert [r["endpoint"] for r in steps.upstream.paid_requests()] == ["live"]
        assert list(found) == urls and all(found.values())
        assert steps.charged == steps.upstream.billed() == 14
        (record,) = steps.records()
        assert (record["endpoint"], record["kind"], record["estimated"], record["charged"]) == (
            "live", "url", "14.00", "14.00"
        )  # fmt: skip


@pytest.mark.anyio
async def test_without_the_credits_header_profiles_are_charged_per_matched_url_even_when_echoes_are_respelled(
    sandboxes: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    sandbox = sandboxes(credits_header=False)
    urls = [*sample_identifiers(sandbox.url, "url", 3, offset=70), NOBODY]
    async with pipeline(sandbox, tmp_path, transport=Rewriting(respelled_echoes)) as steps:
        runner = steps.runner(len(urls))
        found = await upstream.profiles(runner, urls, GROUPS, live=False)

        assert list(found) == urls
        assert [bool(found[u]) for u in urls] == [True, True, True, False]
        assert steps.charged == steps.upstream.billed() == 6
        assert charges(steps.records()) == [("8.00", "6.00", "0.00", "ok")]


@pytest.mark.anyio
@pytest.mark.parametrize("credits_header", [True, False], ids=["credits-header", "no-credits-header"])
async def test_a_later_batch_failing_keeps_what_earlier_batches_paid_for_and_sends_nothing_more(
    sandboxes: Callable[..., SandboxServer], tmp_path: Path, credits_header: bool
) -> None:
    sandbox = sandboxes(credits_header=credits_header)
    urls = sample_identifiers(sandbox.url, "url", 30, offset=80)
    arm(sandbox, kind="status", status=503, endpoint="enrich", after=1, count=1)
    async with pipeline(sandbox, tmp_path) as steps:
        runner = steps.runner(len(urls) + 5)
        found = await upstream.profiles(runner, urls, GROUPS, live=False)

        assert list(found) == urls[:25] and all(found.values())
        assert isinstance(runner.failure, ServerError) and runner.stopped
        assert steps.charged == steps.upstream.billed() == 50 and steps.unverified == 0
        assert charges(steps.records()) == [("50.00", "50.00", "0.00", "ok"),
                                            ("10.00", "0.00", "0.00", "upstream_unavailable")]  # fmt: skip
        # A stopped call sends nothing more, and its progress stays where the work stopped.
        assert await upstream.profiles(runner, urls[25:], GROUPS, live=False) == {}
        assert await upstream.contacts(runner, "professional_network_profile_url", urls[:1], TIERS) == {}
        await runner.finish()
        assert len(steps.upstream.paid_requests()) == 2 and len(steps.records()) == 2
        assert steps.progress == [(25, 35)]


@pytest.mark.anyio
async def test_a_failure_of_the_first_request_is_raised_and_audited_with_nothing_charged(
    sandboxes: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    sandbox = sandboxes()
    urls = sample_identifiers(sandbox.url, "url", 30, offset=120)
    arm(sandbox, kind="status", status=503, endpoint="enrich", count=1)
    async with pipeline(sandbox, tmp_path) as steps:
        runner = steps.runner(len(urls))
        with pytest.raises(ServerError):
            await upstream.profiles(runner, urls, GROUPS, live=False)
        assert steps.charged == steps.upstream.billed() == 0 and steps.unverified == 0
        assert charges(steps.records()) == [("50.00", "0.00", "0.00", "upstream_unavailable")]
        assert len(steps.upstream.paid_requests()) == 1 and steps.progress == []


@pytest.mark.anyio
async def test_a_lost_answer_on_a_later_batch_holds_that_batchs_worst_case_as_unverified(
    sandboxes: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    sandbox = sandboxes()
    urls = sample_identifiers(sandbox.url, "url", 30, offset=160)
    arm(sandbox, kind="timeout", endpoint="enrich", after=1, count=1)
    async with pipeline(sandbox, tmp_path, request_timeout=0.5) as steps:
        runner = steps.runner(len(urls))
        with anyio.fail_after(20):
            found = await upstream.profiles(runner, urls, GROUPS, live=False)

        assert list(found) == urls[:25]
        assert isinstance(runner.failure, APIOutcomeUnknownError)
        assert steps.charged == 50 and steps.unverified == 10  # 5 profiles at 2, none of them known to be free
        assert charges(steps.records()) == [("50.00", "50.00", "0.00", "ok"),
                                            ("10.00", "0.00", "10.00", "upstream_outcome_unknown")]  # fmt: skip


@pytest.mark.anyio
@pytest.mark.parametrize("credits_header", [True, False], ids=["credits-header", "no-credits-header"])
async def test_an_unreadable_answer_books_what_it_said_it_billed_or_else_its_worst_case_as_unverified(
    sandboxes: Callable[..., SandboxServer], tmp_path: Path, credits_header: bool
) -> None:
    sandbox = sandboxes(credits_header=credits_header)
    urls = sample_identifiers(sandbox.url, "url", 28, offset=200)
    arm(sandbox, kind="malformed", endpoint="enrich", after=1, count=1)
    async with pipeline(sandbox, tmp_path) as steps:
        runner = steps.runner(len(urls))
        found = await upstream.profiles(runner, urls, GROUPS, live=False)

        assert list(found) == urls[:25] and runner.failure is not None
        assert steps.upstream.billed() == 56  # the unreadable answer was processed and billed
        if credits_header:
            assert (steps.charged, steps.unverified) == (56, 0)
            expected = ("6.00", "6.00", "0.00", "upstream_bad_response")
        else:
            assert (steps.charged, steps.unverified) == (50, 6)
            expected = ("6.00", "0.00", "6.00", "upstream_bad_response")
        assert charges(steps.records()) == [("50.00", "50.00", "0.00", "ok"), expected]


@pytest.mark.anyio
async def test_a_request_cancelled_before_it_was_sent_is_audited_as_cancelled_and_costs_nothing(
    sandboxes: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    sandbox = sandboxes()
    urls = sample_identifiers(sandbox.url, "url", 2, offset=240)
    async with pipeline(sandbox, tmp_path) as steps:
        runner = steps.runner(len(urls))
        with anyio.CancelScope() as scope:
            scope.cancel()
            await upstream.profiles(runner, urls, GROUPS, live=False)
        assert charges(steps.records()) == [("4.00", "0.00", "0.00", "cancelled")]
        assert steps.upstream.paid_requests() == [] and steps.charged == 0


@pytest.mark.anyio
async def test_what_a_request_billed_lowers_the_known_account_balance(
    sandboxes: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    sandbox = sandboxes()
    urls = sample_identifiers(sandbox.url, "url", 3, offset=250)
    async with pipeline(sandbox, tmp_path, account_balance_seconds=3600) as steps:
        response = ADMIN.post(
            f"{sandbox.url}/_sandbox/balance", json={"credits": "100"},
            headers={"authorization": f"Bearer {steps.upstream.key}"},
        )  # fmt: skip
        assert response.status_code == 200, response.text
        steps.app.account.invalidate()
        steps.view = await steps.app.account.view()
        assert steps.view.balance == 100
        runner = steps.runner(len(urls))
        await upstream.profiles(runner, urls, GROUPS, live=False)
        assert steps.charged == 6
        assert (await steps.app.account.view()).balance == 94


@pytest.mark.anyio
async def test_each_request_is_audited_with_what_it_added_to_a_reservation_that_already_held_charges(
    sandboxes: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    sandbox = sandboxes()
    urls = sample_identifiers(sandbox.url, "url", 27, offset=260)
    arm(sandbox, kind="timeout", endpoint="enrich", after=1, count=1)
    async with pipeline(sandbox, tmp_path, request_timeout=0.5) as steps:
        runner = steps.runner(len(urls), held=(Decimal(5), Decimal(3)))
        with anyio.fail_after(20):
            await upstream.profiles(runner, urls, GROUPS, live=False)

        assert (steps.charged, steps.unverified) == (55, 7)
        assert charges(steps.records()) == [("50.00", "50.00", "0.00", "ok"),
                                            ("4.00", "0.00", "4.00", "upstream_outcome_unknown")]  # fmt: skip


class BilledError(httpx2.AsyncBaseTransport):
    """The real sandbox over HTTP, except that the `nth` look-up (from 0) is answered, without reaching it, by a
    500 that says it billed `credits`: an upstream that processed the request and then failed."""

    def __init__(self, nth: int, credits: str) -> None:
        self._inner = httpx2.AsyncHTTPTransport()
        self._nth = nth
        self._credits = credits
        self._seen = 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.path.startswith("/person/"):
            self._seen += 1
            if self._seen - 1 == self._nth:
                body: dict[str, Any] = {"error": {"type": "internal_error", "message": "boom", "metadata": []}}
                headers = {"x-credits-used": self._credits, "content-type": "application/json"}
                return httpx2.Response(500, headers=headers, content=json.dumps(body).encode())
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("nth", [0, 1], ids=["first-request", "later-request"])
async def test_an_error_answer_that_reports_a_bill_is_booked_at_that_bill_whether_raised_or_recorded(
    sandboxes: Callable[..., SandboxServer], tmp_path: Path, nth: int
) -> None:
    sandbox = sandboxes()
    urls = sample_identifiers(sandbox.url, "url", 27, offset=280)
    async with pipeline(sandbox, tmp_path, transport=BilledError(nth, "4")) as steps:
        runner = steps.runner(len(urls))
        if nth == 0:
            with pytest.raises(ServerError):
                await upstream.profiles(runner, urls, GROUPS, live=False)
            assert (steps.charged, steps.unverified) == (4, 0)
            assert charges(steps.records()) == [("50.00", "4.00", "0.00", "upstream_unavailable")]
        else:
            found = await upstream.profiles(runner, urls, GROUPS, live=False)
            assert list(found) == urls[:25] and isinstance(runner.failure, ServerError)
            assert (steps.charged, steps.unverified) == (54, 0)
            assert charges(steps.records()) == [("50.00", "50.00", "0.00", "ok"),
                                                ("4.00", "4.00", "0.00", "upstream_unavailable")]  # fmt: skip


# --- contacts ----------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_contacts_by_work_email_go_out_in_batches_and_are_audited_as_email_look_ups_of_those_tiers(
    sandboxes: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    sandbox = sandboxes()
    emails = sample_identifiers(sandbox.url, "email", 26)
    async with pipeline(sandbox, tmp_path) as steps:
        runner = steps.runner(len(emails))
        found = await upstream.contacts(runner, "business_email", emails, TIERS)

        sent = steps.upstream.paid_requests()
        assert [(r["endpoint"], r["body"]["business_emails"], r["body"]["fields"]) for r in sent] == [
            ("contact", emails[:25], list(TIERS)), ("contact", emails[25:], list(TIERS))
        ]  # fmt: skip
        assert list(found) == emails and all(found.values())
        assert steps.charged == steps.upstream.billed() > 0 and steps.progress == [(25, 26), (26, 26)]
        records = steps.records()
        assert [(r["endpoint"], r["kind"], r["fields"], r["estimated"]) for r in records] == [
            ("contact", "email", list(TIERS), "75.00"), ("contact", "email", list(TIERS), "3.00")
        ]  # fmt: skip
        assert [r["subjects"] for r in records] == [
            steps.subjects("email", emails[:25]),
            steps.subjects("email", emails[25:]),
        ]
        assert sum(Decimal(r["charged"]) for r in records) == steps.charged


@pytest.mark.anyio
async def test_without_the_credits_header_contacts_by_url_are_charged_per_tier_returned_even_when_echoes_are_respelled(
    sandboxes: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    sandbox = sandboxes(credits_header=False)
    urls = [*sample_identifiers(sandbox.url, "url", 8, offset=300), NOBODY]
    async with pipeline(sandbox, tmp_path, transport=Rewriting(respelled_echoes)) as steps:
        runner = steps.runner(len(urls))
        found = await upstream.contacts(runner, "professional_network_profile_url", urls, TIERS)

        assert list(found) == urls and all(found[u] for u in urls[:-1]) and found[NOBODY] == []
        assert steps.charged == steps.upstream.billed() > 0 and steps.unverified == 0
        (record,) = steps.records()
        assert (record["endpoint"], record["kind"], record["subjects"], record["estimated"]) == (
            "contact", "url", steps.subjects("url", urls), "27.00"
        )  # fmt: skip
        assert Decimal(record["charged"]) == steps.charged


@pytest.mark.anyio
async def test_a_lost_contact_answer_holds_the_batchs_worst_case_for_every_tier_asked_as_unverified(
    sandboxes: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    sandbox = sandboxes()
    urls = sample_identifiers(sandbox.url, "url", 27, offset=320)
    arm(sandbox, kind="timeout", endpoint="contact", after=1, count=1)
    async with pipeline(sandbox, tmp_path, request_timeout=0.5) as steps:
        runner = steps.runner(len(urls))
        with anyio.fail_after(20):
            found = await upstream.contacts(runner, "professional_network_profile_url", urls, TIERS)

        assert list(found) == urls[:25] and isinstance(runner.failure, APIOutcomeUnknownError)
        assert steps.charged == steps.upstream.billed() and steps.unverified == 6  # 2 people, 1 + 2 credits each
        assert [r["outcome"] for r in steps.records()] == ["ok", "upstream_outcome_unknown"]


# --- the overview's enrich -------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_overview_enrich_by_work_email_goes_out_in_batches_audited_as_email_look_ups_of_those_paths(
    sandboxes: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    sandbox = sandboxes("overview")
    emails = sample_identifiers(sandbox.url, "email", 26, offset=40)
    async with pipeline(sandbox, tmp_path) as steps:
        runner = steps.runner(len(emails))
        found = await upstream.overview(
            runner, "business_email", emails, PATHS, min_score=None, force_fetch=False, enrich_realtime=False
        )

        sent = steps.upstream.paid_requests()
        assert [(r["endpoint"], r["body"]["business_emails"], r["body"]["fields"]) for r in sent] == [
            ("enrich", emails[:25], list(PATHS)), ("enrich", emails[25:], list(PATHS))
        ]  # fmt: skip
        assert list(found) == emails and all(found.values())
        assert steps.charged == steps.upstream.billed() == 52 and steps.progress == [(25, 26), (26, 26)]
        records = steps.records()
        assert [(r["endpoint"], r["kind"], r["fields"]) for r in records] == [("enrich", "email", list(PATHS))] * 2
        assert [r["subjects"] for r in records] == [
            steps.subjects("email", emails[:25]),
            steps.subjects("email", emails[25:]),
        ]
        assert charges(records) == [("50.00", "50.00", "0.00", "ok"), ("2.00", "2.00", "0.00", "ok")]


@pytest.mark.anyio
async def test_without_the_credits_header_the_overview_enrich_by_url_is_charged_per_match_despite_respelled_echoes(
    sandboxes: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    sandbox = sandboxes("overview", credits_header=False)
    urls = [*sample_identifiers(sandbox.url, "url", 3, offset=340), NOBODY]
    async with pipeline(sandbox, tmp_path, transport=Rewriting(respelled_echoes)) as steps:
        runner = steps.runner(len(urls))
        found = await upstream.overview(
            runner, "professional_network_profile_url", urls, PATHS, min_score=None, force_fetch=False,
            enrich_realtime=False,
        )  # fmt: skip

        assert list(found) == urls and [bool(found[u]) for u in urls] == [True, True, True, False]
        assert steps.charged == steps.upstream.billed() == 6
        (record,) = steps.records()
        assert (record["endpoint"], record["kind"], record["subjects"]) == (
            "enrich",
            "url",
            steps.subjects("url", urls),
        )
        assert charges([record]) == [("8.00", "6.00", "0.00", "ok")]


@pytest.mark.anyio
async def test_a_later_overview_batch_failing_keeps_the_batches_already_paid_for(
    sandboxes: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    sandbox = sandboxes("overview")
    urls = sample_identifiers(sandbox.url, "url", 26, offset=360)
    arm(sandbox, kind="status", status=503, endpoint="enrich", after=1, count=1)
    async with pipeline(sandbox, tmp_path) as steps:
        runner = steps.runner(len(urls))
        found = await upstream.overview(
            runner, "professional_network_profile_url", urls, PATHS, min_score=None, force_fetch=False,
            enrich_realtime=False,
        )  # fmt: skip

        assert list(found) == urls[:25] and isinstance(runner.failure, ServerError)
        assert steps.charged == steps.upstream.billed() == 50
        assert [r["outcome"] for r in steps.records()] == ["ok", "upstream_unavailable"]


# --- person ids to profile URLs ---------------------------------------------------------------------------------------


def searchable_ids(sandbox: SandboxServer, n: int) -> dict[int, str]:
    return {p.person_id: p.profile_url for p in sandbox.state.dataset.searchable[:n]}


@pytest.mark.anyio
async def test_person_ids_are_resolved_to_profile_urls_100_a_search_each_paid_per_result_and_audited(
    sandboxes: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    sandbox = sandboxes()
    people = searchable_ids(sandbox, 101)
    ids = list(people)
    async with pipeline(sandbox, tmp_path) as steps:
        runner = steps.runner(len(ids))
        found = await upstream.profile_urls_of(runner, ids)

        assert found == people
        sent = steps.upstream.paid_requests()
        assert [(r["endpoint"], r["body"]["limit"], r["body"]["filters"]) for r in sent] == [
            ("search", 100, {"field": "crustdata_person_id", "type": "in", "value": ids[:100]}),
            ("search", 1, {"field": "crustdata_person_id", "type": "in", "value": ids[100:]}),
        ]
        assert all(r["body"]["fields"] == ["crustdata_person_id", PROFILE_URL_PATH] for r in sent)
        assert steps.charged == steps.upstream.billed() == Decimal("3.03")
        records = steps.records()
        assert [(r["endpoint"], r["kind"], r["identifiers"], r["fields"]) for r in records] == [
            ("search", "pid", 100, ["crustdata_person_id", PROFILE_URL_PATH]),
            ("search", "pid", 1, ["crustdata_person_id", PROFILE_URL_PATH]),
        ]
        assert [r["subjects"] for r in records] == [
            steps.subjects("pid", [str(i) for i in ids[:100]]), steps.subjects("pid", [str(ids[100])])
        ]  # fmt: skip
        assert charges(records) == [("3.00", "3.00", "0.00", "ok"), ("0.03", "0.03", "0.00", "ok")]


def first_row_without_a_profile_url(path: str, payload: Any) -> Any:
    answer: Any = payload
    if path == "/person/search":
        first = cast(dict[str, Any], payload["profiles"][0])
        first["social_handles"] = {}
    return answer


@pytest.mark.anyio
async def test_a_search_row_without_a_profile_url_resolves_nobody_and_rows_are_paid_without_the_credits_header(
    sandboxes: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    sandbox = sandboxes(credits_header=False)
    people = searchable_ids(sandbox, 30)
    async with pipeline(sandbox, tmp_path, transport=Rewriting(first_row_without_a_profile_url)) as steps:
        runner = steps.runner(len(people))
        found = await upstream.profile_urls_of(runner, list(people))

        assert len(found) == 29 and all(people[i] == url for i, url in found.items())
        assert steps.charged == steps.upstream.billed() == Decimal("0.90")


@pytest.mark.anyio
async def test_a_later_search_failing_keeps_the_profile_urls_already_paid_for(
    sandboxes: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    sandbox = sandboxes()
    people = searchable_ids(sandbox, 105)
    arm(sandbox, kind="status", status=503, endpoint="search", after=1, count=1)
    async with pipeline(sandbox, tmp_path) as steps:
        runner = steps.runner(len(people))
        found = await upstream.profile_urls_of(runner, list(people))

        assert found == dict(list(people.items())[:100]) and isinstance(runner.failure, ServerError)
        assert steps.charged == steps.upstream.billed() == 3
        assert charges(steps.records()) == [
            ("3.00", "3.00", "0.00", "ok"),
            ("0.15", "0.00", "0.00", "upstream_unavailable"),
        ]


# --- progress ----------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_progress_never_passes_the_total_and_finish_reports_the_rest_once(
    sandboxes: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    async with pipeline(sandboxes(), tmp_path) as steps:
        runner = steps.runner(10)
        await runner.advance(3)
        await runner.advance(4)
        await runner.finish()
        await runner.finish()
        assert steps.progress == [(3, 10), (7, 10), (10, 10)]

        steps.progress.clear()
        runner = steps.runner(10)
        await runner.advance(25)
        await runner.finish()  # already complete: nothing more to say
        assert steps.progress == [(10, 10)]

        steps.progress.clear()
        runner = steps.runner(0)  # nothing planned at all: still one step, reported done
        await runner.finish()
        assert steps.progress == [(1, 1)]
