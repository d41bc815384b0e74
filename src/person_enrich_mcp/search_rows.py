"""Search rows as candidates: which requested fields a search can return, and rows in the enrich shape.

A search-only call (`search_then_enrich` with `enrich: false`) shows the rows of a search page, 0.03 a result,
so a model can look at candidates before paying for their profiles. A row holds less than a profile (no contact
data, skills or network details) and names some things differently: its employer objects carry `company_name`
where enrich returns `name`. This module maps a `fields` selection (enrich paths) to what search is asked for,
and turns each row into the enrich shape, so the same selection reads the same way in both modes.
"""

from __future__ import annotations

from typing import Any, cast

from person_enrich_mcp.api.contract import CONTACT_TIERS, PERSON_RETURN_PATHS
from person_enrich_mcp.fields import PROFILE_URL_PATH, FieldSelection

_RETURNABLE = frozenset(PERSON_RETURN_PATHS)
_ROLE_SCOPES = ("current", "past")
# Lists whose element keys differ between the search and enrich shapes (or between the upstream's own tables): the
# whole list is asked for, and projected locally.
_CONTAINERS = (
    "experience.employment_details.current",
    "experience.employment_details.past",
    "education.schools",
)


def _unavailable(path: str) -> bool:
    """True when search rows never carry `path`: contact data (rows hold only has_* flags), or nothing returnable."""
    if path == "contact" or any(path == t or path.startswith(t + ".") for t in CONTACT_TIERS):
        return True
    parts = path.split(".")
    if any(".".join(parts[:end]) in _RETURNABLE for end in range(len(parts), 0, -1)):
        return False
    return not any(r.startswith(path + ".") for r in _RETURNABLE)


def _asked(path: str) -> str:
    """What search is asked for to return `path`: its longest returnable prefix, widened to a whole role or school."""
    for container in _CONTAINERS:
        if path == container or path.startswith(container + "."):
            return container
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in _RETURNABLE:
            return prefix
    return path  # a group above returnable paths (`experience`): search takes it as it is


def search_fields(selection: FieldSelection) -> tuple[list[str], list[str]]:
    """(the `fields` to send search, the requested paths search rows cannot carry)."""
    unavailable = [p for p in selection.paths if _unavailable(p)]
    asked = [_asked(p) for p in selection.paths if not _unavailable(p)]
    return list(FieldSelection.of([*asked, PROFILE_URL_PATH]).paths), unavailable


def as_profile(row: dict[str, Any]) -> dict[str, Any]:
    """A search row in the enrich shape: each role's `company_name` also as `name`, where the row has no `name`."""
    experience: Any = row.get("experience")
    details: Any = cast(dict[str, Any], experience).get("employment_details") if isinstance(experience, dict) else None
    if not isinstance(details, dict):
        return row
    details = cast(dict[str, Any], details)
    renamed: dict[str, Any] = dict(details)
    for scope in _ROLE_SCOPES:
        roles: Any = details.get(scope)
        if isinstance(roles, list):
            renamed[scope] = [_with_name(role) for role in cast(list[Any], roles)]
    return {**row, "experience": {**cast(dict[str, Any], experience), "employment_details": renamed}}


def _with_name(role: Any) -> Any:
    if not isinstance(role, dict):
        return role
    fields = cast(dict[str, Any], role)
    if "name" in fields or "company_name" not in fields:
        return fields
    return {**fields, "name": fields["company_name"]}
