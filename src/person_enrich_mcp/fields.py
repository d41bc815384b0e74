"""The field catalog, `fields` parsing, projection of `person_data`, and the per-result size cap.

A selection is a set of dot-paths into `person_data` (a section group such as `contact` is the path of its
whole subtree). The server always sends its selection upstream explicitly and then projects each
`person_data` locally to exactly those paths, because the upstream may return more than asked.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from person_enrich_mcp.errors import InputError

FIELDS_RESOURCE_URI = "person-enrich://fields"
MAX_FIELDS = 60

_ROLE_LEAVES = [
    "name",
    "title",
    "description",
    "location.raw",
    "employment_type",
    "start_date",
    "end_date",
    "is_default",
    "position_id",
    "professional_network_id",
    "crustdata_company_id",
    "company_website",
    "company_website_domain",
    "company_profile_picture_permalink",
    "company_professional_network_profile_url",
    "seniority_level",
    "function_category",
    "years_at_company",
    "years_at_company_raw",
    "company_headcount_latest",
    "company_headcount_range",
    "company_industries",
    "company_professional_network_industry",
    "company_type",
    "company_headquarters_country",
    "company_hq_location",
    "business_email_verified",
]


def _under(prefix: str, leaves: str | tuple[str, ...] | list[str]) -> list[str]:
    names = leaves.split() if isinstance(leaves, str) else list(leaves)
    return [f"{prefix}.{leaf}" for leaf in names]


# Every leaf path of an enrich `person_data` (reference Part 2, §5.1). Section groups and intermediate
# objects are derived from these.
LEAF_PATHS: tuple[str, ...] = (
    "crustdata_person_id",
    "updated_at",
    *_under(
        "basic_profile",
        "name first_name last_name headline current_title summary languages last_updated "
        "professional_network_name profile_picture_permalink",
    ),
    *_under("basic_profile.location", "raw city state country continent full_location"),
    *_under(
        "professional_network",
        "profile_picture_url profile_picture_permalink name pronoun headline current_title summary connections "
        "followers joined_date verifications open_to_cards metadata.last_scraped_source",
    ),
    *_under("professional_network.location", "raw city state country continent"),
    "social_handles.professional_network_identifier.profile_url",
    "social_handles.dev_platform_identifier.profile_url",
    "social_handles.twitter_identifier.slug",
    *_under("experience.employment_details.current", _ROLE_LEAVES),
    *_under("experience.employment_details.past", _ROLE_LEAVES),
    *_under(
        "education.schools",
        "school degree field_of_study start_year end_year activities_and_societies institute_logo_url "
        "professional_network_id",
    ),
    "skills.professional_network_skills",
    *_under("contact.business_emails", "email status last_updated crustdata_company_id"),
    *_under("contact.personal_emails", "email status last_updated"),
    "contact.phone_numbers",
    "contact.websites",
    *_under(
        "dev_platform_profiles",
        "account_type profile_url name email location.raw company_text bio website_url profile_picture_url "
        "is_hireable is_site_admin confidence_score public_repo_count followers following declared_handles "
        "org_memberships metadata.created_at metadata.last_scraped_source metadata.last_updated",
    ),
    *_under(
        "certifications",
        "name issuing_organization issue_date expiration_date credential_id credential_url source",
    ),
    "honors.title",
)

SECTIONS: tuple[str, ...] = (
    "basic_profile",
    "professional_network",
    "social_handles",
    "experience",
    "education",
    "skills",
    "contact",
    "dev_platform_profiles",
    "certifications",
    "honors",
)


def _all_paths(leaves: tuple[str, ...]) -> tuple[str, ...]:
    paths: dict[str, None] = {}
    for leaf in leaves:
        parts = leaf.split(".")
        for end in range(1, len(parts) + 1):
            paths[".".join(parts[:end])] = None
    return tuple(paths)


ALL_PATHS: tuple[str, ...] = _all_paths(LEAF_PATHS)
_VALID = frozenset(ALL_PATHS)

# What a look-up returns without `fields`: enough to recognise the person, at the base price of 1 credit.
DEFAULT_PATHS: tuple[str, ...] = (
    "basic_profile.name",
    "basic_profile.headline",
    "basic_profile.current_title",
    "basic_profile.location.full_location",
    "experience.employment_details.current.name",
    "social_handles.professional_network_identifier.profile_url",
)

# The only path search_then_enrich asks the search for: the identifier it then enriches.
PROFILE_URL_PATH = "social_handles.professional_network_identifier.profile_url"


def section_of(path: str) -> str:
    """The top-level section a path belongs to (`crustdata_person_id` and `updated_at` are their own)."""
    return path.split(".", 1)[0]


def _covered(path: str, by: str) -> bool:
    return path == by or path.startswith(by + ".")


def _prefixes(path: str) -> tuple[str, ...]:
    """`path` and every dot-prefix of it: exactly the `by` for which `_covered(path, by)` holds."""
    parts = path.split(".")
    return tuple(".".join(parts[:end]) for end in range(1, len(parts) + 1))


# Selections come from a handful of field lists (the default, and what callers ask for again and again), so the
# set logic below is computed once per distinct input and then served from these caches on the hot path.
@lru_cache(maxsize=1024)
def _minimal(paths: tuple[str, ...]) -> tuple[str, ...]:
    ordered = sorted(set(paths), key=lambda p: (p.count("."), p))
    kept: set[str] = set()
    for path in ordered:
        if not any(prefix in kept for prefix in _prefixes(path)):
            kept.add(path)
    return tuple(sorted(kept))


@lru_cache(maxsize=4096)
def _covers(mine: tuple[str, ...], theirs: tuple[str, ...]) -> bool:
    held = frozenset(mine)
    return all(any(prefix in held for prefix in _prefixes(p)) for p in theirs)


@lru_cache(maxsize=4096)
def _touches(paths: tuple[str, ...], path: str) -> bool:
    return any(_covered(p, path) or _covered(path, p) for p in paths)


@dataclass(frozen=True, slots=True)
class FieldSelection:
    """A minimal, sorted set of dot-paths: no path is inside another one of the set."""

    paths: tuple[str, ...]

    @classmethod
    def of(cls, paths: list[str] | tuple[str, ...]) -> FieldSelection:
        """Build a minimal selection from valid paths (callers validate first)."""
        return cls(_minimal(tuple(paths)))

    def covers(self, other: FieldSelection) -> bool:
        """True if every path of `other` is this selection's path or inside one of them."""
        return _covers(self.paths, other.paths)

    def union(self, other: FieldSelection) -> FieldSelection:
        """The smallest selection covering both."""
        return FieldSelection.of(self.paths + other.paths)

    def touches(self, path: str) -> bool:
        """True if the selection asks for any data at or under `path`."""
        return _touches(self.paths, path)

    def not_covered_by(self, other: FieldSelection) -> tuple[str, ...]:
        """This selection's paths that `other` does not cover (what a cached `other` still lacks)."""
        return tuple(p for p in self.paths if not _covers(other.paths, (p,)))

    @property
    def key(self) -> str:
        """A stable string for cache keys and logs."""
        return ",".join(self.paths)


DEFAULT_SELECTION = FieldSelection.of(DEFAULT_PATHS)


def parse_fields(values: list[str] | None) -> FieldSelection:
    """Validate a `fields` argument; `None` or empty means the compact default.

    Raises:
        InputError: naming every unknown path, with the closest valid ones.
    """
    if not values:
        return DEFAULT_SELECTION
    if len(values) > MAX_FIELDS:
        raise InputError(f"At most {MAX_FIELDS} fields; ask for whole sections instead. Nothing was sent or spent.")
    cleaned = [v.strip() for v in values]
    unknown = [v for v in cleaned if v not in _VALID]
    if unknown:
        hints: list[str] = []
        for bad in unknown[:5]:
            close = difflib.get_close_matches(bad, ALL_PATHS, n=3, cutoff=0.6)
            hints.append(f"'{bad[:80]}'" + (f" (did you mean {', '.join(close)}?)" if close else ""))
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise InputError(
            f"Unknown fields: {'; '.join(hints)}{more}. Nothing was sent or spent. Use section names "
            f"({', '.join(SECTIONS)}) or dot-paths listed in the resource {FIELDS_RESOURCE_URI}."
        )
    return FieldSelection.of(cleaned)


# A trie of the selection: a key mapped to None takes that whole subtree.
_Trie = dict[str, "_Trie | None"]


@lru_cache(maxsize=256)
def _trie(paths: tuple[str, ...]) -> _Trie:
    root: _Trie = {}
    for path in paths:
        node = root
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = None
    return root


# `compact` and `_project` run for every field of every person of every result: plain loops, and the
# `is None` / truthiness tests below instead of helper calls, keep them cheap (JSON values only).
def compact(value: Any) -> Any:
    """Drop nulls, empty strings and empty collections, recursively."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():  # pyright: ignore[reportUnknownVariableType]
            if isinstance(item, dict | list):
                item = compact(item)
                if item:
                    out[key] = item
            elif item is not None and item != "":
                out[key] = item
        return out
    if isinstance(value, list):
        kept: list[Any] = []
        for item in value:  # pyright: ignore[reportUnknownVariableType]
            if isinstance(item, dict | list):
                item = compact(item)
                if item:
                    kept.append(item)
            elif item is not None and item != "":
                kept.append(item)
        return kept
    return value


def _project(value: Any, trie: _Trie) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, sub in trie.items():
            item = value.get(key)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            if item is None:
                continue
            kept = compact(item) if sub is None else _project(item, sub)
            if kept is not None and kept != "" and kept != [] and kept != {}:
                out[key] = kept
        return out
    if isinstance(value, list):
        items = (_project(item, trie) for item in value)  # pyright: ignore[reportUnknownVariableType]
        return [item for item in items if item]
    return None  # a dot-path that runs into a scalar selects nothing


def merge(older: dict[str, Any], newer: dict[str, Any]) -> dict[str, Any]:
    """`newer` laid over `older`: objects merge key by key, anything else (lists included) is replaced.

    Used to join one person's data from several requests (profile sections, contact tiers) and from the cache.
    """
    out = dict(older)
    for key, value in newer.items():
        held = out.get(key)
        if isinstance(value, dict) and isinstance(held, dict):
            out[key] = merge(cast(dict[str, Any], held), cast(dict[str, Any], value))
        else:
            out[key] = value
    return out


def project(person_data: dict[str, Any], selection: FieldSelection) -> dict[str, Any]:
    """Keep exactly the selected paths of one `person_data`, without empties."""
    projected: Any = _project(person_data, _trie(selection.paths))
    return cast(dict[str, Any], projected) if isinstance(projected, dict) else {}


# --- the size cap -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Truncation:
    """What the size cap removed from a result, so the model knows what it did not see."""

    max_list_items: int | None
    list_items_dropped: int
    max_string_chars: int | None
    strings_shortened: int
    people_omitted: int

    def note(self, max_bytes: int) -> str:
        """One sentence for the model: what was cut and how to get it."""
        cuts: list[str] = []
        if self.max_list_items is not None and self.list_items_dropped:
            cuts.append(f"lists cut to {self.max_list_items} items ({self.list_items_dropped} items dropped)")
        if self.max_string_chars is not None and self.strings_shortened:
            cuts.append(f"{self.strings_shortened} long texts cut to {self.max_string_chars} characters")
        if self.people_omitted:
            cuts.append(f"the last {self.people_omitted} people omitted")
        return (
            f"Result trimmed to fit {max_bytes} bytes: {'; '.join(cuts)}. Ask for fewer fields or fewer people "
            "to see the rest; repeat look-ups are served from the cache at no cost."
        )


def json_size(value: Any) -> int:
    """Bytes of the compact UTF-8 JSON encoding, as clients receive it."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _cap_lists(value: Any, limit: int, counter: list[int]) -> Any:
    if isinstance(value, dict):
        return {k: _cap_lists(v, limit, counter) for k, v in value.items()}  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, list):
        items: list[Any] = value  # pyright: ignore[reportUnknownVariableType]
        if len(items) > limit:
            counter[0] += len(items) - limit
            items = items[:limit]
        return [_cap_lists(v, limit, counter) for v in items]
    return value


def _cap_strings(value: Any, limit: int, counter: list[int]) -> Any:
    if isinstance(value, dict):
        return {k: _cap_strings(v, limit, counter) for k, v in value.items()}  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, list):
        return [_cap_strings(v, limit, counter) for v in value]  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, str) and len(value) > limit:
        counter[0] += 1
        return value[: limit - 1] + "…"
    return value


_LIST_STEPS = (20, 10, 5, 3, 2, 1)
_STRING_STEPS = (1000, 300, 120)


def fit_to_size(items: list[Any], max_bytes: int) -> tuple[list[Any], Truncation | None]:
    """Shrink `items` (people, in order) until their JSON fits `max_bytes`; never fails.

    First lists inside each item are cut shorter, then long strings, and only then are whole items dropped
    from the end. The returned `Truncation` names only the cuts that removed something.
    """
    if json_size(items) <= max_bytes:
        return items, None
    list_limit: int | None = None
    list_dropped = 0
    current = items
    for limit in _LIST_STEPS:
        counter = [0]
        current = [_cap_lists(item, limit, counter) for item in items]
        list_limit, list_dropped = (limit, counter[0]) if counter[0] else (None, 0)
        if json_size(current) <= max_bytes:
            return current, Truncation(list_limit, list_dropped, None, 0, 0)
    capped = current
    string_limit: int | None = None
    shortened = 0
    for limit in _STRING_STEPS:
        counter = [0]
        current = [_cap_strings(item, limit, counter) for item in capped]
        string_limit, shortened = (limit, counter[0]) if counter[0] else (None, 0)
        if json_size(current) <= max_bytes:
            return current, Truncation(list_limit, list_dropped, string_limit, shortened, 0)
    omitted = 0
    while current and json_size(current) > max_bytes:
        current = current[:-1]
        omitted += 1
    return current, Truncation(list_limit, list_dropped, string_limit, shortened, omitted)
