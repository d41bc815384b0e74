"""Field catalogs derived by walking the generated shapes, and projection of `person_data`.

This is the sandbox's own reading of the upstream contract. It deliberately shares nothing with the server's
field catalog, so the two can disagree and the integration tests can notice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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
# Today's /person/enrich (and live enrich) `fields` vocabulary: groups only, no `contact`
# (n8n filter-fields.generated.ts FIELD_VOCABULARY["person.enrich"]).
CURRENT_ENRICH_GROUPS: tuple[str, ...] = (
    "basic_profile",
    "professional_network",
    "skills",
    "social_handles",
    "experience",
    "education",
    "certifications",
    "honors",
    "dev_platform_profiles",
    "assessment",
    "social_posts",
)
# Today's /person/contact/enrich `fields` vocabulary (FIELD_VOCABULARY["person.contactEnrich"]).
CONTACT_FIELDS: tuple[str, ...] = (
    "contact.business_emails",
    "contact.personal_emails",
    "contact.phone_numbers",
    "contact.websites",
)
DEFAULT_CONTACT_FIELDS: tuple[str, ...] = CONTACT_FIELDS[:3]
DEFAULT_FAMILIES: tuple[str, ...] = ("basic_profile", "social_handles")
ENRICH_TOP_LEVEL_SCALARS: tuple[str, ...] = ("crustdata_person_id", "updated_at")

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
        profile = {p for p in enrich if p.split(".", 1)[0] in CURRENT_ENRICH_GROUPS or p in ENRICH_TOP_LEVEL_SCALARS}
        profile.update(CURRENT_ENRICH_GROUPS)
        # What a plan may disable on /person/enrich and live enrich: the groups and every path below them.
        self.profile_paths: frozenset[str] = frozenset(profile)
        # The leaves, as `GET /account/endpoints` lists them; a group with no data here is its own leaf.
        self.profile_leaves: list[str] = sorted(p for p in profile if not any(q.startswith(p + ".") for q in profile))
        self.search_leaves: list[str] = sorted(p for p in search if not any(q.startswith(p + ".") for q in search))


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
