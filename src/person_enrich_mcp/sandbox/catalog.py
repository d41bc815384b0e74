"""Field catalogs derived by walking the generated shapes, projection of `person_data`, and the sandbox's pricing.

This is the sandbox's own reading of the upstream contract. It deliberately shares nothing with the server's
field catalog or pricing, so the two can disagree and the integration tests can notice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, cast

from person_enrich_mcp.sandbox.dataset import Dataset

ENRICH_GROUPS: tuple[str, ...] = (
    "basic_profile",
    "professional_network",
    "skills",
    "contact",
    "social_handles",
    "experience",
    "education",
    "certifications",
    "honors",
    "dev_platform_profiles",
)
DEFAULT_FAMILIES: tuple[str, ...] = ("basic_profile", "social_handles")
ENRICH_TOP_LEVEL_SCALARS: tuple[str, ...] = ("crustdata_person_id", "updated_at")

BASE_CREDITS = Decimal(1)
MAX_CREDITS_PER_PROFILE = Decimal(7)
SEARCH_CREDITS_PER_PROFILE = Decimal("0.03")
CONTACT_ADD_ONS: dict[str, Decimal] = {
    "contact.business_emails": Decimal(1),
    "contact.personal_emails": Decimal(2),
    "contact.phone_numbers": Decimal(2),
}
DEV_PLATFORM_ADD_ON = Decimal(1)

# Walking every person is exact but slow; the generator gives every optional key a probability of at least a
# few percent, so a prefix of this size covers them all (a test walks the whole dataset to prove it).
_CATALOG_SAMPLE = 150

ProjectionTree = dict[str, "ProjectionTree"]


def collect_paths(documents: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every dot-path present in any of `documents`, descending into objects inside lists."""
    paths: set[str] = set()
    for document in documents:
        _walk(document, "", paths)
    return paths


def _walk(node: Mapping[str, Any], prefix: str, paths: set[str]) -> None:
    for key, value in node.items():
        path = f"{prefix}{key}"
        paths.add(path)
        if isinstance(value, dict):
            _walk(cast("Mapping[str, Any]", value), f"{path}.", paths)
        elif isinstance(value, list):
            for item in cast("list[Any]", value):
                if isinstance(item, dict):
                    _walk(cast("Mapping[str, Any]", item), f"{path}.", paths)


class FieldCatalog:
    """The selectable field paths of the enrich and search shapes for one dataset."""

    def __init__(self, dataset: Dataset, *, exhaustive: bool = False) -> None:
        sample = dataset.people if exhaustive else dataset.people[:_CATALOG_SAMPLE]
        enrich = collect_paths(p.data for p in sample)
        enrich.update(ENRICH_GROUPS)
        enrich.update(ENRICH_TOP_LEVEL_SCALARS)
        self.enrich_paths: frozenset[str] = frozenset(enrich)
        self.enrich_sorted: list[str] = sorted(enrich)
        search = collect_paths(p.search for p in sample)
        self.search_paths: frozenset[str] = frozenset(search)
        self.search_sorted: list[str] = sorted(search)
        self.search_groups: tuple[str, ...] = tuple(sample[0].search) if sample else ()


def build_tree(paths: Iterable[str]) -> ProjectionTree:
    """A projection tree from dot-paths; an empty subtree means "the whole value"."""
    tree: ProjectionTree = {}
    for path in paths:
        node = tree
        parts = path.split(".")
        for i, part in enumerate(parts):
            if part in node and not node[part]:
                break  # an ancestor is already selected whole
            if i == len(parts) - 1:
                node[part] = {}
            else:
                node = node.setdefault(part, {})
    return tree


def project(value: Any, tree: ProjectionTree) -> Any:
    """Keep only the parts of `value` named by `tree`, descending into lists element by element."""
    if not tree:
        return value
    if isinstance(value, dict):
        source = cast("dict[str, Any]", value)
        return {key: project(item, tree[key]) for key, item in source.items() if key in tree}
    if isinstance(value, list):
        return [project(item, tree) for item in cast("list[Any]", value)]
    # A scalar or null where some other person has an object: nothing below it to keep.
    return value


def enrich_selection(
    fields: Sequence[str] | None, *, default_fields: str, include_default_families: bool
) -> ProjectionTree | None:
    """What an enrich call returns for `fields` (None means the whole profile).

    Upstream returns more than asked, so the sandbox does too: the default families are added, and a dot-path
    outside `contact` selects its whole top-level section. Contact paths stay exact, so personal e-mails and
    phone numbers only come back when they (or `contact`) were asked for.
    """
    if fields is None:
        if default_fields == "all":
            return None
        return build_tree(("crustdata_person_id", *DEFAULT_FAMILIES))
    selected: list[str] = ["crustdata_person_id"]
    if include_default_families:
        selected.extend(DEFAULT_FAMILIES)
    for path in fields:
        top = path.split(".", 1)[0]
        selected.append(path if top == "contact" else top)
    return build_tree(selected)


def enrich_unit_cost(fields: Sequence[str] | None, *, default_fields: str, realtime: bool) -> Decimal:
    """Credits for one matched identifier: base 1 plus add-ons named by the requested fields, capped at 7."""
    if realtime:
        return MAX_CREDITS_PER_PROFILE
    if fields is None:
        return MAX_CREDITS_PER_PROFILE if default_fields == "all" else BASE_CREDITS
    cost = BASE_CREDITS
    for add_on, price in CONTACT_ADD_ONS.items():
        if any(f == "contact" or f == add_on or f.startswith(add_on + ".") for f in fields):
            cost += price
    if any(f == "dev_platform_profiles" or f.startswith("dev_platform_profiles.") for f in fields):
        cost += DEV_PLATFORM_ADD_ON
    return min(cost, MAX_CREDITS_PER_PROFILE)


def gated_hits(fields: Sequence[str], gated: Sequence[str]) -> list[str]:
    """The gated fields a request touches: asked for directly, through an ancestor group, or through a sub-path."""
    return [g for g in gated if any(f == g or f.startswith(g + ".") or g.startswith(f + ".") for f in fields)]


def strip_gated(person_data: dict[str, Any], gated: Sequence[str]) -> dict[str, Any]:
    """Remove gated paths from a profile returned without an explicit `fields` list."""
    result = person_data
    for path in gated:
        result = _without(result, path.split("."))
    return result


def _without(value: Any, parts: list[str]) -> Any:
    if isinstance(value, list):
        return [_without(item, parts) for item in cast("list[Any]", value)]
    if not isinstance(value, dict):
        return value
    source = cast("dict[str, Any]", value)
    head = parts[0]
    if head not in source:
        return source
    copy = dict(source)
    if len(parts) == 1:
        del copy[head]
    else:
        copy[head] = _without(source[head], parts[1:])
    return copy
