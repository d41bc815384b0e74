"""Drift check: `api.contract` agrees with the committed copy of the upstream's generated tables, and with the
server's own field catalog.

The copy, `docs/upstream/person-api-2025-11-01.tables.json`, transcribes the person tables of
`crustdata/n8n-nodes-crustdata` `nodes/Crustdata/filter-fields.generated.ts` at one commit. Lists are compared in
order (the upstream's order is what a model and the error messages show); sets (`REQUEST_PARAMS`, operators) as
sets.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, cast

import pytest

from person_enrich_mcp import fields
from person_enrich_mcp.api import contract
from person_enrich_mcp.api.client import API_VERSION
from person_enrich_mcp.api.contract import Dialect
from person_enrich_mcp.api.routes import is_contact, route

TABLES_PATH = Path(__file__).resolve().parent.parent / "docs" / "upstream" / "person-api-2025-11-01.tables.json"
UPSTREAM_REPOSITORY = "crustdata/n8n-nodes-crustdata"
UPSTREAM_FILE = "nodes/Crustdata/filter-fields.generated.ts"


def _tables() -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(TABLES_PATH.read_text(encoding="utf-8")))


TABLES = _tables()


def _strings(value: Any) -> list[str]:
    assert isinstance(value, list), value
    items = cast(list[Any], value)
    assert all(isinstance(item, str) for item in items)
    return cast(list[str], items)


# --- the copy names its source ----------------------------------------------------------------------------------------


def test_the_copy_names_its_repository_path_and_commit() -> None:
    source = cast(dict[str, Any], TABLES["source"])

    assert source["repository"] == UPSTREAM_REPOSITORY
    assert source["path"] == UPSTREAM_FILE
    assert re.fullmatch(r"[0-9a-f]{40}", str(source["commit"])), source["commit"]


def test_the_copy_is_of_the_api_version_the_client_sends() -> None:
    assert TABLES["spec_version"] == API_VERSION


def test_the_contract_module_points_at_the_same_source_and_copy() -> None:
    doc = contract.__doc__ or ""

    assert UPSTREAM_REPOSITORY in doc
    assert UPSTREAM_FILE in doc
    assert "docs/upstream/person-api-2025-11-01.tables.json" in doc


# --- every table equals the copy --------------------------------------------------------------------------------------

ORDERED_TABLES: dict[str, tuple[tuple[str, ...], Any]] = {
    "PERSON_FILTER_FIELDS": (contract.PERSON_FILTER_FIELDS, TABLES["person_filter_fields"]),
    "PERSON_SORTABLE_FIELDS": (contract.PERSON_SORTABLE_FIELDS, TABLES["person_sortable_fields"]),
    "PERSON_AUTOCOMPLETE_FIELDS": (contract.PERSON_AUTOCOMPLETE_FIELDS, TABLES["person_autocomplete_fields"]),
    "PERSON_RETURN_PATHS": (contract.PERSON_RETURN_PATHS, TABLES["person_return_paths"]),
    "ENRICH_GROUPS": (contract.ENRICH_GROUPS, TABLES["field_vocabulary"]["person.enrich"]),
    "CONTACT_TIERS": (contract.CONTACT_TIERS, TABLES["field_vocabulary"]["person.contactEnrich"]),
    "FILTER_COMBINATORS": (contract.FILTER_COMBINATORS, TABLES["filter_combinators"]),
}


@pytest.mark.parametrize("name", list(ORDERED_TABLES))
def test_an_ordered_table_equals_the_copy_in_order(name: str) -> None:
    ours, theirs = ORDERED_TABLES[name]
    expected = _strings(theirs)

    assert expected, f"the copy's {name} is empty"
    missing = [p for p in expected if p not in ours]
    extra = [p for p in ours if p not in expected]
    assert (missing, extra) == ([], []), f"{name}: missing {missing}, not upstream {extra}"
    assert list(ours) == expected, f"{name} is in a different order than upstream"


@pytest.mark.parametrize("name", list(ORDERED_TABLES))
def test_an_ordered_table_has_no_duplicates(name: str) -> None:
    ours, _ = ORDERED_TABLES[name]

    assert len(set(ours)) == len(ours)


def test_request_params_name_the_same_endpoints_and_keys_as_the_copy() -> None:
    copied = cast(dict[str, Any], TABLES["request_params"])

    assert set(contract.REQUEST_PARAMS) == set(copied)
    for path, keys in copied.items():
        assert contract.REQUEST_PARAMS[path] == frozenset(_strings(keys)), path


def test_request_params_cover_every_person_endpoint_the_client_posts_to() -> None:
    assert set(contract.PATHS.values()) == set(contract.REQUEST_PARAMS)


def test_the_operators_are_the_copys_api_spellings() -> None:
    spellings = _strings(list(cast(dict[str, Any], TABLES["operator_to_api"]).values()))

    assert len(set(spellings)) == len(spellings)
    assert set(contract.OPERATORS) == set(spellings)
    assert all(meaning.strip() for meaning in contract.OPERATORS.values())


def test_the_overview_enrich_keys_extend_todays() -> None:
    today = contract.REQUEST_PARAMS[contract.PATHS[contract.ENRICH]]

    assert today <= contract.OVERVIEW_ENRICH_PARAMS
    assert contract.OVERVIEW_ENRICH_PARAMS - today == {
        "business_emails",
        "min_similarity_score",
        "force_fetch",
        "enrich_realtime",
    }


# --- internal consistency ---------------------------------------------------------------------------------------------


def test_every_sortable_field_is_filterable() -> None:
    assert [f for f in contract.PERSON_SORTABLE_FIELDS if f not in contract.PERSON_FILTER_FIELDS] == []


def test_the_iso3_columns_are_filterable() -> None:
    assert contract.ISO3_COLUMNS.issubset(contract.PERSON_FILTER_FIELDS)


def test_the_resolving_tier_and_priced_tiers_are_contact_tiers() -> None:
    assert contract.RESOLVING_TIER in contract.CONTACT_TIERS
    assert list(contract.CONTACT_TIER_PRICES) == list(contract.CONTACT_TIERS)


def test_every_endpoint_has_a_documented_rate_limit() -> None:
    names = (contract.ENRICH, contract.CONTACT, contract.LIVE, contract.SEARCH, contract.AUTOCOMPLETE, contract.ACCOUNT)

    assert set(contract.DOCUMENTED_RPM) == set(names)
    assert all(rpm > 0 for rpm in contract.DOCUMENTED_RPM.values())


# --- the server's field catalog maps onto the vocabularies ------------------------------------------------------------


NON_CONTACT_PATHS = [p for p in fields.ALL_PATHS if not is_contact(p)]
CONTACT_LEAVES = [p for p in fields.LEAF_PATHS if is_contact(p)]


def test_the_catalog_has_both_kinds_of_path() -> None:
    assert len(NON_CONTACT_PATHS) > 100
    assert len(CONTACT_LEAVES) >= len(contract.CONTACT_TIERS)


@pytest.mark.parametrize("path", NON_CONTACT_PATHS)
def test_every_non_contact_catalog_path_maps_to_a_group(path: str) -> None:
    section = fields.section_of(path)
    routed = route(Dialect.CURRENT, (path,))

    assert routed.groups, f"{path} reaches no /person/enrich group"
    assert set(routed.groups) <= set(contract.ENRICH_GROUPS)
    assert routed.tiers == ()
    if section in contract.ENRICH_GROUPS:
        assert routed.groups == (section,)
    else:
        # Only the top-level scalars that come with any group live outside one.
        assert path in {"crustdata_person_id", "updated_at"}


@pytest.mark.parametrize("path", CONTACT_LEAVES)
def test_every_contact_leaf_maps_to_exactly_one_tier(path: str) -> None:
    routed = route(Dialect.CURRENT, (path,))
    owning = [t for t in contract.CONTACT_TIERS if path == t or path.startswith(t + ".")]

    assert len(owning) == 1, f"{path} is in no contact tier"
    assert routed.tiers == tuple(owning)
    assert routed.groups == ()


def test_every_contact_tier_is_a_catalog_path() -> None:
    assert set(contract.CONTACT_TIERS) <= set(fields.ALL_PATHS)


def test_every_catalog_section_is_a_group_or_contact() -> None:
    assert set(fields.SECTIONS) - set(contract.ENRICH_GROUPS) == {"contact"}
