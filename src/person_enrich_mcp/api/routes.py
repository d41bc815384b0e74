"""Which upstream requests serve a look-up, in the dialect the upstream speaks.

A tool asks for field paths; this module decides what goes on the wire. Today's upstream splits one look-up into
profile section groups (`/person/enrich`, or Live Enrich for a fresh fetch) and contact tiers
(`/person/contact/enrich`), and resolves a work email through Contact Enrich. The overview's upstream serves it
all from one `/person/enrich`, with the exact paths, the email key and the refresh flags.
"""

from __future__ import annotations

from dataclasses import dataclass

from person_enrich_mcp.api.contract import CONTACT_TIERS, ENRICH_GROUPS, Dialect

CONTACT_SECTION = "contact"
# Top-level scalars that come back with any group; when a look-up asks for nothing else, one group is still sent.
_ALWAYS_RETURNED = frozenset({"crustdata_person_id", "updated_at"})
_CARRIER_GROUP = "basic_profile"


def is_contact(path: str) -> bool:
    """True for the contact section and any path inside it."""
    return path == CONTACT_SECTION or path.startswith(CONTACT_SECTION + ".")


def tiers_of(paths: tuple[str, ...]) -> tuple[str, ...]:
    """The contact tiers the paths need (the whole section needs every tier), in vocabulary order."""
    return tuple(
        tier for tier in CONTACT_TIERS if any(p in (CONTACT_SECTION, tier) or p.startswith(tier + ".") for p in paths)
    )


def groups_of(paths: tuple[str, ...]) -> tuple[str, ...]:
    """The section groups `/person/enrich` must be asked for to return the non-contact paths."""
    sections = {p.split(".", 1)[0] for p in paths if not is_contact(p)}
    groups = [g for g in ENRICH_GROUPS if g in sections]
    if not groups and sections & _ALWAYS_RETURNED:
        groups = [_CARRIER_GROUP]
    return tuple(groups)


@dataclass(frozen=True, slots=True)
class Route:
    """The upstream requests one look-up needs.

    Today's dialect: `groups` for the profile step (`/person/enrich`, or Live Enrich when `live`), `tiers` for the
    contact step. The overview's dialect: `fields`, sent as they are to its single `/person/enrich`.
    """

    dialect: Dialect
    groups: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    live: bool = False

    @property
    def empty(self) -> bool:
        """Nothing to fetch."""
        return not (self.groups or self.tiers or self.fields)


def route(dialect: Dialect, paths: tuple[str, ...], *, live: bool = False) -> Route:
    """The requests that return `paths` (field dot-paths) for one look-up."""
    if not paths:
        return Route(dialect)
    if dialect is Dialect.OVERVIEW:
        return Route(dialect, fields=paths, live=live)
    groups = groups_of(paths)
    return Route(dialect, groups=groups, tiers=tiers_of(paths), live=live and bool(groups))
