"""The synthetic dataset: determinism, realism, reserved domains, closed value sets, and the field catalog."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

from person_enrich_mcp.sandbox import SandboxServer, generate_dataset
from person_enrich_mcp.sandbox.catalog import FieldCatalog
from person_enrich_mcp.sandbox.dataset import (
    COMPANY_STATUSES,
    FUNCTION_CATEGORIES,
    HEADCOUNT_RANGES,
    OPEN_TO_CARDS,
    SENIORITY_LEVELS,
    Dataset,
)

PROFILE_URL = re.compile(r"^https://www\.linkedin\.com/in/[a-z0-9]+(?:-[a-z0-9]+)+$")
EMAIL = re.compile(r"^[a-z0-9.]+@[a-z0-9.-]+\.example$")
PHONE = re.compile(r"^\+1\d{3}55501\d{2}$")
URL_HOST = re.compile(r"^https?://([^/]+)")
ALLOWED_HOSTS = re.compile(r"^(www\.linkedin\.com|github\.com|media\.example\.test|[a-z0-9.-]+\.example)$")


@functools.cache
def _small(seed: int = 7) -> Dataset:
    return generate_dataset(seed, people=600, companies=60)


def _dump(dataset: Dataset) -> str:
    return json.dumps(
        [[p.data, p.search, p.opted_out, p.business_emails] for p in dataset.people], sort_keys=True, ensure_ascii=True
    )


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in cast("dict[str, Any]", value).values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in cast("list[Any]", value):
            yield from _strings(item)


def test_same_seed_and_size_give_byte_identical_data() -> None:
    again = generate_dataset(7, people=600, companies=60)
    assert _dump(again) == _dump(_small())
    assert [c.role_template for c in again.companies] == [c.role_template for c in _small().companies]


def test_a_different_seed_gives_different_data() -> None:
    other = _small(8)
    assert _dump(other) != _dump(_small())
    assert {p.slug for p in other.people} != {p.slug for p in _small().people}


def test_email_candidates_are_deterministic_per_email() -> None:
    first = _small()
    second = generate_dataset(7, people=600, companies=60)
    for email in list(first.by_email)[:200]:
        a = [(c.person.person_id, c.score) for c in first.email_candidates(email)]
        b = [(c.person.person_id, c.score) for c in second.email_candidates(email)]
        assert a == b


def test_default_dataset_has_the_documented_sizes(sandbox: SandboxServer) -> None:
    dataset = sandbox.state.dataset
    assert len(dataset.people) == 5000
    assert len(dataset.companies) == 300
    opted_out = sum(p.opted_out for p in dataset.people)
    assert 20 <= opted_out <= 90  # about 1%
    assert len(dataset.searchable) == 5000 - opted_out
    assert dataset.generation_seconds < 5  # a loose guard; the README figure is measured separately


def test_identifiers_are_unique_and_indexed(sandbox: SandboxServer) -> None:
    dataset = sandbox.state.dataset
    ids = [p.person_id for p in dataset.people]
    assert len(set(ids)) == len(ids) and ids == sorted(ids)
    assert len(dataset.by_slug) == len(dataset.people)
    emails = [e for p in dataset.people for e in p.business_emails]
    assert len(set(emails)) == len(emails) == len(dataset.by_email)
    for person in dataset.people[:500]:
        assert dataset.by_id[person.person_id] is person
        assert dataset.lookup_slug(person.slug.upper()) is person
        assert PROFILE_URL.match(person.profile_url), person.profile_url


@pytest.mark.parametrize("seed", [7, 8])
def test_only_reserved_domains_fictional_phones_and_media_hosts_appear(seed: int) -> None:
    for person in _small(seed).people:
        for text in _strings(person.data):
            if "@" in text[1:]:  # "@org" company handles are not addresses
                assert EMAIL.match(text), text
            host = URL_HOST.match(text)
            if host:
                assert ALLOWED_HOSTS.match(host.group(1)), text
        for phone in person.data["contact"]["phone_numbers"]:
            assert PHONE.match(phone), phone
        for url in _strings(person.data["basic_profile"]["profile_picture_permalink"]):
            assert url.startswith("https://media.example.test/")


def test_data_is_varied_like_real_responses(sandbox: SandboxServer) -> None:
    people = [p.data for p in sandbox.state.dataset.people]

    def share(predicate: Callable[[dict[str, Any]], Any]) -> float:
        return sum(1 for d in people if predicate(d)) / len(people)

    def contact_empty(d: dict[str, Any]) -> bool:
        return not any(d["contact"].values())

    assert 0.1 < share(contact_empty) < 0.25
    assert 0.4 < share(lambda d: not d["dev_platform_profiles"]) < 0.9
    assert 0.05 < share(lambda d: len(d["experience"]["employment_details"]["current"]) > 1) < 0.2
    assert 0.02 < share(lambda d: not d["experience"]["employment_details"]["current"]) < 0.1
    assert 0.01 < share(lambda d: d["basic_profile"]["first_name"] is None) < 0.1
    assert 0.2 < share(lambda d: d["basic_profile"]["summary"] == "") < 0.4
    assert 0.3 < share(lambda d: d["contact"]["personal_emails"]) < 0.5
    assert 0.05 < share(lambda d: d["honors"]) < 0.3
    assert share(lambda d: "pronoun" not in d["professional_network"]) > 0.1
    countries = {d["basic_profile"]["location"]["country"] for d in people}
    assert len(countries) >= 15


def test_closed_value_sets_and_role_invariants_hold(sandbox: SandboxServer) -> None:
    dataset = sandbox.state.dataset
    company_ids = {c.company_id for c in dataset.companies}
    for person in dataset.people:
        data = person.data
        assert set(data["professional_network"]["open_to_cards"]) <= set(OPEN_TO_CARDS)
        details = data["experience"]["employment_details"]
        for scope in ("current", "past"):
            for role in details[scope]:
                assert role["seniority_level"] in SENIORITY_LEVELS
                assert role["function_category"] in FUNCTION_CATEGORIES
                assert role["company_headcount_range"] in HEADCOUNT_RANGES
                assert role["company_status"] in COMPANY_STATUSES
                assert role["crustdata_company_id"] in company_ids
                assert role["company_website_domain"].endswith(".example")
                assert isinstance(role["professional_network_id"], str)
                if scope == "current":
                    assert role["end_date"] is None
                else:
                    assert role["start_date"] < role["end_date"]
        for email in data["contact"]["business_emails"]:
            assert email["status"] in ("verified", "unverified")
        assert data["updated_at"] <= "2026-03-01"


def test_search_profile_shape_matches_the_documented_differences(sandbox: SandboxServer) -> None:
    for person in sandbox.state.dataset.people[:300]:
        row = person.search
        assert "skills" not in row and "dev_platform_profiles" not in row
        assert row["metadata"]["updated_at"] == person.data["updated_at"]
        assert row["contact"] == {
            "has_business_email": bool(person.data["contact"]["business_emails"]),
            "has_personal_email": bool(person.data["contact"]["personal_emails"]),
            "has_phone_number": bool(person.data["contact"]["phone_numbers"]),
        }
        current = person.data["experience"]["employment_details"]["current"]
        rows = row["experience"]["employment_details"]["current"]
        assert [r["company_name"] for r in rows] == [r["name"] for r in current]
        assert all("seniority_level" not in r and "name" not in r for r in rows)
        assert isinstance(row["years_of_experience_raw"], float)


@pytest.mark.parametrize("seed", [7, 8])
def test_the_sampled_field_catalog_equals_a_walk_of_every_person(seed: int) -> None:
    # The app samples a prefix of the people; every key must already appear in it.
    sampled = FieldCatalog(_small(seed))
    full = FieldCatalog(_small(seed), exhaustive=True)
    assert sampled.enrich_paths == full.enrich_paths
    assert sampled.search_paths == full.search_paths


@pytest.mark.parametrize("size", [1, 2, 17])
def test_tiny_datasets_work(size: int) -> None:
    dataset = generate_dataset(3, people=size, companies=1)
    assert len(dataset.people) == size
    assert FieldCatalog(dataset).enrich_paths >= {"basic_profile", "contact", "crustdata_person_id"}
