"""The operator's field policy: fields (or whole tiers and sections) this server never fetches.

`PERSON_ENRICH_DENY_FIELDS=contact.personal_emails,contact.phone_numbers` keeps those tiers out of every call: a
call that asks for one (or for a group containing one, such as `contact`) is refused before anything is
reserved, with the fields it may ask for instead; the compact default simply leaves denied paths out. A work-email
look-up needs the work-email tier to resolve the address, so denying `contact.business_emails` refuses those.
"""

from __future__ import annotations

from dataclasses import dataclass

from person_enrich_mcp.api.contract import RESOLVING_TIER
from person_enrich_mcp.errors import ConfigurationError, FieldDeniedError
from person_enrich_mcp.fields import ALL_PATHS, FieldSelection

SETTING = "PERSON_ENRICH_DENY_FIELDS"
_VALID = frozenset(ALL_PATHS)


def _inside(path: str, by: str) -> bool:
    return path == by or path.startswith(by + ".")


@dataclass(frozen=True, slots=True)
class FieldPolicy:
    """The denied field paths (empty: everything the account's plan allows)."""

    denied: tuple[str, ...] = ()

    @classmethod
    def of(cls, paths: tuple[str, ...]) -> FieldPolicy:
        """A policy from configured paths.

        Raises:
            ConfigurationError: naming a path that is not in the field catalog.
        """
        unknown = [p for p in paths if p not in _VALID]
        if unknown:
            raise ConfigurationError(
                f"{SETTING}: unknown field {unknown[0]!r}; use section names or dot-paths from the field catalog "
                "(e.g. contact.personal_emails,contact.phone_numbers)"
            )
        return cls(tuple(sorted(set(paths))))

    def blocked(self, selection: FieldSelection) -> list[str]:
        """The denied paths a selection would fetch (at, under or above one of its paths)."""
        return [d for d in self.denied if selection.touches(d)]

    def apply(self, selection: FieldSelection, *, explicit: bool, kind: str = "url") -> FieldSelection:
        """The selection to fetch: the default without denied paths, or an explicit one that touches none.

        Raises:
            FieldDeniedError: when an explicit selection asks for a denied field, when nothing of the default is
                left, or when a work-email look-up needs a denied tier.
        """
        if not self.denied:
            return selection
        if kind == "email" and any(_inside(RESOLVING_TIER, d) for d in self.denied):
            raise FieldDeniedError(
                f"The operator of this server forbids {RESOLVING_TIER} ({SETTING}), which a look-up by work email "
                "needs to resolve the address. Nothing was sent or spent. Look the person up by profile URL instead."
            )
        blocked = self.blocked(selection)
        if not blocked:
            return selection
        if not explicit:
            kept = tuple(p for p in selection.paths if not any(_inside(p, d) or _inside(d, p) for d in self.denied))
            if kept:
                return FieldSelection.of(kept)
        instead = self._alternatives(selection)
        hint = f" You may ask for {', '.join(instead)}." if instead else ""
        raise FieldDeniedError(
            f"The operator of this server forbids {', '.join(blocked)} ({SETTING}). Nothing was sent or spent. "
            f"Call again without {'them' if len(blocked) > 1 else 'it'}.{hint}"
        )

    def _alternatives(self, selection: FieldSelection) -> list[str]:
        """Allowed children of any selected path that contains a denied one (`contact` -> its allowed tiers)."""
        shown: list[str] = []
        for path in selection.paths:
            if not any(_inside(d, path) and d != path for d in self.denied):
                continue
            depth = path.count(".") + 1
            shown.extend(
                candidate
                for candidate in ALL_PATHS
                if candidate.startswith(path + ".")
                and candidate.count(".") == depth
                and not any(_inside(candidate, d) or _inside(d, candidate) for d in self.denied)
            )
        return shown[:6]
