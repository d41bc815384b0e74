"""The field catalog, `fields` parsing, projection of `person_data`, compaction, and the size cap."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from person_enrich_mcp.errors import InputError
from person_enrich_mcp.fields import (
    ALL_PATHS,
    DEFAULT_PATHS,
    DEFAULT_SELECTION,
    FIELDS_RESOURCE_URI,
    LEAF_PATHS,
    MAX_FIELDS,
    PROFILE_URL_PATH,
    SECTIONS,
    FieldSelection,
    Truncation,
    compact,
    fit_to_size,
    json_size,
    parse_fields,
    project,
    section_of,
)

JSON = dict[str, object]


def _inside(path: str, container: str) -> bool:
    return path == container or path.startswith(container + ".")


def _person() -> JSON:
    return {
        "crustdata_person_id": 42,
        "updated_at": "2025-10-01T00:00:00Z",
        "basic_profile": {
            "name": "Jane Doe",
            "headline": "CTO at Acme",
            "current_title": "CTO",
            "summary": "Builds things.",
            "languages": [],
            "location": {"raw": "London", "city": "London", "country": "United Kingdom", "full_location": "London, UK"},
        },
        "social_handles": {
            "professional_network_identifier": {"profile_url": "https://www.linkedin.com/in/jane-doe"},
            "twitter_identifier": {"slug": None},
        },
        "experience": {
            "employment_details": {
                "current": [{"name": "Acme", "title": "CTO", "start_date": "2020-01-01", "description": ""}],
                "past": [
                    {"name": "Initech", "title": "Engineer", "end_date": "2019-12-31"},
                    {"name": "Globex", "title": None, "end_date": "2015-06-30"},
                    {"name": "Hooli"},
                ],
            }
        },
        "contact": {
            "business_emails": [{"email": "jane@acme.com", "status": "verified"}],
            "personal_emails": [{"email": "jane@example.org", "status": None}],
            "phone_numbers": ["+44 20 7946 0000"],
            "websites": [],
        },
        "dev_platform_profiles": [{"profile_url": "https://github.com/jane", "followers": 0, "is_hireable": False}],
    }


# --- catalog ------------------------------------------------------------------------------------------------


def test_every_section_is_a_selectable_path() -> None:
    assert set(SECTIONS) <= set(ALL_PATHS)
    assert {section_of(p) for p in LEAF_PATHS} == set(SECTIONS) | {"crustdata_person_id", "updated_at"}


def test_every_intermediate_object_of_a_leaf_is_selectable() -> None:
    for leaf in LEAF_PATHS:
        parts = leaf.split(".")
        for end in range(1, len(parts) + 1):
            assert ".".join(parts[:end]) in ALL_PATHS


def test_catalog_has_no_duplicate_paths() -> None:
    assert len(set(ALL_PATHS)) == len(ALL_PATHS)
    assert len(set(LEAF_PATHS)) == len(LEAF_PATHS)


@pytest.mark.parametrize(
    "path",
    [
        "basic_profile.summary",
        "contact",
        "contact.business_emails",
        "contact.personal_emails",
        "contact.phone_numbers",
        "contact.websites",
        "dev_platform_profiles",
        "social_handles.dev_platform_identifier.profile_url",
        "experience.employment_details.current",
        "experience.employment_details.past.title",
        "updated_at",
    ],
)
def test_documented_dot_paths_are_in_the_catalog(path: str) -> None:
    assert path in ALL_PATHS


def test_section_of_names_the_top_level_section() -> None:
    assert section_of("contact.business_emails.email") == "contact"
    assert section_of("basic_profile") == "basic_profile"
    assert section_of("crustdata_person_id") == "crustdata_person_id"


def test_profile_url_path_is_a_valid_leaf() -> None:
    assert PROFILE_URL_PATH in LEAF_PATHS


# --- parse_fields ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [None, []])
def test_no_fields_means_the_compact_default_selection(values: list[str] | None) -> None:
    assert parse_fields(values) == DEFAULT_SELECTION


def test_default_selection_is_valid_and_has_no_paid_contact_data() -> None:
    assert set(DEFAULT_SELECTION.paths) == set(DEFAULT_PATHS)
    assert all(p in ALL_PATHS for p in DEFAULT_SELECTION.paths)
    assert not DEFAULT_SELECTION.touches("contact")
    assert not DEFAULT_SELECTION.touches("dev_platform_profiles")


def test_parse_fields_strips_whitespace_and_minimises() -> None:
    selection = parse_fields([" contact.business_emails ", "contact", "basic_profile.name", "basic_profile.name"])

    assert selection.paths == ("basic_profile.name", "contact")


def test_an_unknown_field_is_named_with_the_closest_valid_paths() -> None:
    with pytest.raises(InputError) as caught:
        parse_fields(["basic_profile", "contact.bussiness_emails"])

    message = str(caught.value)
    assert "'contact.bussiness_emails'" in message
    assert "did you mean contact.business_emails" in message
    assert "Nothing was sent or spent" in message
    assert FIELDS_RESOURCE_URI in message
    assert "'basic_profile'" not in message


def test_an_unknown_field_without_close_matches_gets_no_suggestion_but_lists_sections() -> None:
    with pytest.raises(InputError) as caught:
        parse_fields(["zzzzzzzz"])

    message = str(caught.value)
    assert "'zzzzzzzz'." in message
    assert "did you mean" not in message
    assert all(section in message for section in SECTIONS)


def test_the_search_spelling_company_name_is_refused_with_the_enrich_spelling_suggested() -> None:
    with pytest.raises(InputError) as caught:
        parse_fields(["experience.employment_details.current.company_name"])

    assert "experience.employment_details.current.name" in str(caught.value)


def test_many_unknown_fields_are_summarised_after_five() -> None:
    bad = [f"nope_{i}" for i in range(8)]

    with pytest.raises(InputError) as caught:
        parse_fields(bad)

    message = str(caught.value)
    assert all(f"'nope_{i}'" in message for i in range(5))
    assert "'nope_5'" not in message
    assert "and 3 more" in message


def test_a_very_long_unknown_field_is_cut_in_the_message() -> None:
    bad = "x" * 500

    with pytest.raises(InputError) as caught:
        parse_fields([bad])

    assert f"'{'x' * 80}'" in str(caught.value)
    assert "x" * 81 not in str(caught.value)


@pytest.mark.parametrize("bad", ["Contact", "contact.", ".contact", "contact..business_emails", "", "basic_profile.*"])
def test_paths_must_match_the_catalog_exactly(bad: str) -> None:
    with pytest.raises(InputError, match="Unknown fields"):
        parse_fields([bad])


def test_more_than_the_maximum_number_of_fields_is_refused() -> None:
    values = list(ALL_PATHS[: MAX_FIELDS + 1])

    with pytest.raises(InputError) as caught:
        parse_fields(values)

    assert f"At most {MAX_FIELDS} fields" in str(caught.value)
    assert "Nothing was sent or spent" in str(caught.value)


def test_exactly_the_maximum_number_of_fields_is_accepted() -> None:
    values = list(LEAF_PATHS[:MAX_FIELDS])

    selection = parse_fields(values)

    assert selection.covers(FieldSelection.of(values))


# --- FieldSelection -------------------------------------------------------------------------------------------


def test_of_keeps_a_minimal_sorted_set() -> None:
    selection = FieldSelection.of(["contact.phone_numbers", "basic_profile", "contact", "basic_profile.name"])

    assert selection.paths == ("basic_profile", "contact")


def test_a_path_that_only_shares_a_text_prefix_is_not_inside() -> None:
    selection = FieldSelection.of(["a.b", "a.bc", "a.b.c"])

    assert selection.paths == ("a.b", "a.bc")
    assert not FieldSelection(("a.b",)).covers(FieldSelection(("a.bc",)))
    assert not FieldSelection(("a.b",)).touches("a.bc")


def test_a_group_covers_its_dot_paths_but_not_the_reverse() -> None:
    group = FieldSelection.of(["contact"])
    leaf = FieldSelection.of(["contact.business_emails.email"])

    assert group.covers(leaf)
    assert not leaf.covers(group)


def test_siblings_do_not_cover_each_other() -> None:
    assert not FieldSelection.of(["contact.business_emails"]).covers(FieldSelection.of(["contact.personal_emails"]))


def test_union_is_the_smallest_selection_covering_both() -> None:
    a = FieldSelection.of(["contact.business_emails", "basic_profile.name"])
    b = FieldSelection.of(["contact", "education"])

    assert a.union(b).paths == ("basic_profile.name", "contact", "education")


def test_touches_looks_both_up_and_down_the_tree() -> None:
    selection = FieldSelection.of(["contact.business_emails.email"])

    assert selection.touches("contact")
    assert selection.touches("contact.business_emails")
    assert selection.touches("contact.business_emails.email")
    assert not selection.touches("contact.personal_emails")
    assert FieldSelection.of(["contact"]).touches("contact.phone_numbers")


def test_empty_selection_covers_only_the_empty_selection() -> None:
    empty = FieldSelection.of([])

    assert empty.covers(empty)
    assert not empty.covers(DEFAULT_SELECTION)
    assert DEFAULT_SELECTION.covers(empty)


def test_key_is_stable_and_order_independent() -> None:
    one = FieldSelection.of(["contact", "basic_profile.name"])
    two = FieldSelection.of(["basic_profile.name", "contact", "contact.websites"])

    assert one.key == two.key == "basic_profile.name,contact"


_PATHS = st.lists(st.sampled_from(ALL_PATHS), max_size=8)
_SELECTIONS = _PATHS.map(FieldSelection.of)


@given(_PATHS)
def test_of_is_idempotent(paths: list[str]) -> None:
    once = FieldSelection.of(paths)

    assert FieldSelection.of(once.paths) == once
    assert FieldSelection.of(list(reversed(paths))) == once


@given(_PATHS)
def test_of_is_minimal_and_sorted(paths: list[str]) -> None:
    selection = FieldSelection.of(paths)

    assert list(selection.paths) == sorted(selection.paths)
    for a in selection.paths:
        for b in selection.paths:
            assert a == b or not _inside(a, b)


@given(_PATHS)
def test_of_covers_every_input_path(paths: list[str]) -> None:
    selection = FieldSelection.of(paths)

    assert all(any(_inside(p, kept) for kept in selection.paths) for p in paths)
    assert set(selection.paths) <= set(paths)


@given(_SELECTIONS)
def test_covers_is_reflexive(selection: FieldSelection) -> None:
    assert selection.covers(selection)


@given(_SELECTIONS, _SELECTIONS, _SELECTIONS)
def test_covers_is_transitive(a: FieldSelection, b: FieldSelection, c: FieldSelection) -> None:
    ab = a.union(b)
    abc = ab.union(c)

    assert abc.covers(ab) and ab.covers(a)
    assert abc.covers(a)
    if a.covers(b) and b.covers(c):
        assert a.covers(c)


@given(_SELECTIONS, _SELECTIONS)
def test_union_covers_both_and_is_commutative(a: FieldSelection, b: FieldSelection) -> None:
    union = a.union(b)

    assert union.covers(a)
    assert union.covers(b)
    assert union == b.union(a)


@given(_SELECTIONS, _SELECTIONS)
def test_covers_means_the_union_adds_nothing(a: FieldSelection, b: FieldSelection) -> None:
    assert a.covers(b) == (a.union(b) == a)


@given(_SELECTIONS, st.sampled_from(ALL_PATHS))
def test_a_covering_selection_touches_whatever_the_covered_one_touches(a: FieldSelection, path: str) -> None:
    wider = a.union(FieldSelection.of(["basic_profile"]))

    if a.touches(path):
        assert wider.touches(path)


# --- projection -------------------------------------------------------------------------------------------------


def test_projection_keeps_exactly_the_selected_leaf() -> None:
    projected = project(_person(), FieldSelection.of(["basic_profile.name"]))

    assert projected == {"basic_profile": {"name": "Jane Doe"}}


def test_projection_of_a_group_keeps_its_whole_subtree_without_empties() -> None:
    projected = project(_person(), FieldSelection.of(["contact"]))

    assert projected == {
        "contact": {
            "business_emails": [{"email": "jane@acme.com", "status": "verified"}],
            "personal_emails": [{"email": "jane@example.org"}],
            "phone_numbers": ["+44 20 7946 0000"],
        }
    }


def test_projection_drops_what_upstream_returned_beyond_the_request() -> None:
    projected = project(_person(), FieldSelection.of(["contact.business_emails.email"]))

    assert projected == {"contact": {"business_emails": [{"email": "jane@acme.com"}]}}


def test_projection_into_lists_of_objects_keeps_the_path_in_each_item() -> None:
    projected = project(_person(), FieldSelection.of(["experience.employment_details.past.title"]))

    assert projected == {"experience": {"employment_details": {"past": [{"title": "Engineer"}]}}}


def test_projection_of_two_leaves_of_the_same_list_keeps_them_together() -> None:
    selection = FieldSelection.of(
        ["experience.employment_details.past.name", "experience.employment_details.past.title"]
    )

    projected = project(_person(), selection)

    assert projected == {
        "experience": {
            "employment_details": {
                "past": [{"name": "Initech", "title": "Engineer"}, {"name": "Globex"}, {"name": "Hooli"}]
            }
        }
    }


def test_a_dot_path_that_runs_into_a_scalar_selects_nothing() -> None:
    data: JSON = {"basic_profile": {"location": "London"}}

    assert project(data, FieldSelection.of(["basic_profile.location.city"])) == {}


def test_projection_of_missing_sections_is_empty() -> None:
    assert project({"crustdata_person_id": 1}, FieldSelection.of(["education", "honors.title"])) == {}


def test_projection_keeps_falsy_scalars_that_are_data() -> None:
    projected = project(_person(), FieldSelection.of(["dev_platform_profiles"]))

    assert projected == {
        "dev_platform_profiles": [{"profile_url": "https://github.com/jane", "followers": 0, "is_hireable": False}]
    }


def test_projection_does_not_modify_its_input() -> None:
    person = _person()
    before = copy.deepcopy(person)

    project(person, FieldSelection.of(["contact", "basic_profile.name"]))

    assert person == before


def test_the_default_selection_projects_a_compact_profile() -> None:
    projected = project(_person(), DEFAULT_SELECTION)

    assert projected == {
        "basic_profile": {
            "name": "Jane Doe",
            "headline": "CTO at Acme",
            "current_title": "CTO",
            "location": {"full_location": "London, UK"},
        },
        "experience": {"employment_details": {"current": [{"name": "Acme"}]}},
        "social_handles": {"professional_network_identifier": {"profile_url": "https://www.linkedin.com/in/jane-doe"}},
    }


def test_compact_drops_nulls_empty_strings_and_empty_collections_recursively() -> None:
    value: JSON = {
        "a": None,
        "b": "",
        "c": [],
        "d": {},
        "e": {"f": {"g": None}, "h": [None, "", {}, []]},
        "i": [{"j": None}, {"k": "kept"}],
        "l": 0,
        "m": False,
        "n": "text",
    }

    assert compact(value) == {"i": [{"k": "kept"}], "l": 0, "m": False, "n": "text"}


def test_compact_leaves_scalars_alone() -> None:
    assert compact("x") == "x"
    assert compact(0) == 0
    assert compact(None) is None


# A person_data generator shaped by the catalog: any node may be missing, empty, a scalar, an object, or a list of
# objects; unknown keys are sprinkled in, as an upstream that returns more than asked would do.

_EMPTY_VALUES: list[object] = [None, "", [], {}]
_EMPTYISH = st.sampled_from(_EMPTY_VALUES)
_SCALARS = st.one_of(st.text(max_size=4), st.integers(-3, 3), st.booleans(), st.none())
_LEAF_VALUES = st.one_of(
    _EMPTYISH,
    _SCALARS,
    st.lists(_SCALARS, max_size=3),
    st.dictionaries(st.sampled_from(["x", "y"]), _SCALARS, max_size=2),
)


def _catalog_trie() -> dict[str, object]:
    root: dict[str, object] = {}
    for leaf in LEAF_PATHS:
        node = root
        for part in leaf.split("."):
            node = cast(dict[str, object], node.setdefault(part, {}))
    return root


def _data_for(node: dict[str, object], depth: int) -> st.SearchStrategy[object]:
    if not node or depth > 5:
        return _LEAF_VALUES
    children = {key: _data_for(cast(dict[str, object], sub), depth + 1) for key, sub in node.items()}
    obj = st.fixed_dictionaries({}, optional={**children, "unrequested": _LEAF_VALUES})
    return st.one_of(obj, st.lists(obj, min_size=1, max_size=2), obj, _LEAF_VALUES)


# Half sections, half any path, so projections are often non-empty.
_PROJECTION_SELECTIONS = st.lists(
    st.one_of(st.sampled_from(SECTIONS), st.sampled_from(ALL_PATHS)), min_size=1, max_size=8
).map(FieldSelection.of)

_PERSON_DATA: st.SearchStrategy[JSON] = st.fixed_dictionaries(
    {key: _data_for(cast(dict[str, object], sub), 1) for key, sub in _catalog_trie().items()}
)


def _walk(value: object, path: str) -> Iterator[tuple[str, object]]:
    """Every (dot-path, value) in a projected tree, list indices left out."""
    yield path, value
    if isinstance(value, dict):
        for key, item in cast(JSON, value).items():
            yield from _walk(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for item in cast(list[object], value):
            yield from _walk(item, path)


@settings(max_examples=150)
@given(_PERSON_DATA, _PROJECTION_SELECTIONS)
def test_projection_never_returns_a_path_outside_the_selection_nor_an_empty_value(
    data: JSON, selection: FieldSelection
) -> None:
    projected = project(data, selection)

    for path, value in _walk(projected, ""):
        assert value not in (None, "", [], {}) or path == ""
        if not path:
            continue
        assert any(_inside(path, s) or _inside(s, path) for s in selection.paths), path
        if not isinstance(value, dict | list):
            assert any(_inside(path, s) for s in selection.paths), path


@settings(max_examples=100)
@given(_PERSON_DATA, _PROJECTION_SELECTIONS)
def test_projection_is_idempotent(data: JSON, selection: FieldSelection) -> None:
    once = project(data, selection)

    assert project(once, selection) == once


@settings(max_examples=100)
@given(_PERSON_DATA, _PROJECTION_SELECTIONS, _PROJECTION_SELECTIONS)
def test_projecting_a_superset_then_a_subset_equals_projecting_the_subset(
    data: JSON, small: FieldSelection, extra: FieldSelection
) -> None:
    big = small.union(extra)

    assert project(project(data, big), small) == project(data, small)


# --- the size cap -------------------------------------------------------------------------------------------------


def test_json_size_counts_utf8_bytes_of_compact_json() -> None:
    assert json_size({"a": 1}) == len('{"a":1}')
    assert json_size(["é"]) == len('["é"]'.encode())
    assert json_size(["é"]) == 6


def test_items_that_fit_are_returned_unchanged_without_a_truncation() -> None:
    items: list[object] = [_person(), _person()]

    out, truncation = fit_to_size(items, json_size(items))

    assert out is items
    assert truncation is None


def test_long_lists_are_cut_first_and_strings_left_alone() -> None:
    person: JSON = {"summary": "s" * 1500, "skills": [f"skill-{i:02d}" for i in range(50)]}
    items: list[object] = [person]
    cap = json_size([{"summary": "s" * 1500, "skills": [f"skill-{i:02d}" for i in range(20)]}])

    out, truncation = fit_to_size(items, cap)

    assert truncation == Truncation(20, 30, None, 0, 0)
    assert out == [{"summary": "s" * 1500, "skills": [f"skill-{i:02d}" for i in range(20)]}]
    assert json_size(out) <= cap


def test_list_cuts_step_down_until_the_result_fits() -> None:
    items: list[object] = [{"past": [{"title": f"role {i}"} for i in range(40)]}]
    cap = json_size([{"past": [{"title": f"role {i}"} for i in range(3)]}])

    out, truncation = fit_to_size(items, cap)

    assert truncation is not None
    assert truncation.max_list_items == 3
    assert truncation.list_items_dropped == 37
    assert out == [{"past": [{"title": "role 0"}, {"title": "role 1"}, {"title": "role 2"}]}]


def test_nested_lists_are_all_cut_and_every_dropped_item_counted() -> None:
    items: list[object] = [{"a": [[1, 2, 3], [4, 5, 6], [7, 8, 9]], "b": list(range(10))}]

    out, truncation = fit_to_size(items, json_size([{"a": [[1]], "b": [0]}]))

    assert out == [{"a": [[1]], "b": [0]}]
    assert truncation is not None
    assert truncation.max_list_items == 1
    assert truncation.list_items_dropped == 2 + 2 + 9


def test_long_strings_are_cut_after_lists_with_an_ellipsis() -> None:
    items: list[object] = [{"summary": "x" * 5000, "jobs": ["a", "b", "c"]}]

    out, truncation = fit_to_size(items, 1100)

    assert truncation is not None
    assert truncation.max_string_chars == 1000
    assert truncation.strings_shortened == 1
    assert truncation.people_omitted == 0
    person = cast(JSON, out[0])
    summary = cast(str, person["summary"])
    assert len(summary) == 1000
    assert summary.endswith("…")
    assert json_size(out) <= 1100


def test_whole_people_are_dropped_from_the_end_only_as_a_last_resort() -> None:
    items: list[object] = [{"id": i, "name": f"person {i}", "bio": "b" * 100} for i in range(10)]
    cap = json_size(items[:4])

    out, truncation = fit_to_size(items, cap)

    assert out == items[:4]
    assert truncation is not None
    assert truncation.people_omitted == 6


def test_the_size_cap_does_not_modify_its_input() -> None:
    items: list[object] = [{"summary": "x" * 3000, "jobs": list(range(50))}, _person()]
    before = copy.deepcopy(items)

    fit_to_size(items, 500)

    assert items == before


@pytest.mark.parametrize("cap", [0, 1, 2, 3, 10])
def test_tiny_caps_never_fail_and_return_what_fits(cap: int) -> None:
    items: list[object] = [_person(), _person()]

    out, truncation = fit_to_size(items, cap)

    assert out == []
    assert truncation is not None
    assert truncation.people_omitted == 2


def test_an_empty_list_of_people_survives_any_cap() -> None:
    out, truncation = fit_to_size([], 0)

    assert out == []
    assert truncation is not None
    assert truncation.people_omitted == 0


def test_the_note_says_what_was_cut_and_how_to_see_the_rest() -> None:
    note = Truncation(20, 30, 300, 2, 3).note(8000)

    assert "8000 bytes" in note
    assert "lists cut to 20 items (30 items dropped)" in note
    assert "2 long texts cut to 300 characters" in note
    assert "the last 3 people omitted" in note
    assert "fewer fields" in note


def test_the_truncation_names_only_the_cuts_that_happened() -> None:
    items: list[object] = [{"summary": "x" * 5000}]

    out, truncation = fit_to_size(items, 1100)

    assert json_size(out) <= 1100
    assert truncation is not None
    assert truncation.max_list_items is None
    assert "lists cut" not in truncation.note(1100)


_TEXT = st.text(alphabet="abcé…", max_size=1500)
_PERSON_LIKE = st.dictionaries(
    st.sampled_from(["name", "summary", "skills", "jobs", "id"]),
    st.one_of(
        _TEXT,
        st.integers(),
        st.lists(st.one_of(_TEXT, st.dictionaries(st.just("t"), _TEXT, max_size=1)), max_size=30),
    ),
    max_size=5,
)


@settings(max_examples=80)
@given(st.lists(_PERSON_LIKE, max_size=6), st.integers(0, 6000))
def test_the_size_cap_never_fails_and_only_removes(items: list[dict[str, object]], cap: int) -> None:
    people = cast(list[object], items)

    out, truncation = fit_to_size(people, cap)

    if json_size(people) <= cap:
        assert truncation is None
        assert out == people
        return
    assert truncation is not None
    assert json_size(out) <= cap or out == []
    assert len(out) + truncation.people_omitted == len(people)
    assert json_size(out) <= json_size(people)
    for kept, original in zip(out, people, strict=False):
        assert set(cast(JSON, kept)) == set(cast(JSON, original))
