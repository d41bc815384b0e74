"""Request-body checks shared by the endpoints; each failure is a 400 `invalid_request` with a clear message."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, cast

from person_enrich_mcp.sandbox.calls import invalid

MAX_IDENTIFIERS = 25
URLS = "professional_network_profile_urls"
EMAILS = "business_emails"

_PROFILE_URL = re.compile(r"^https?://(?:(?:www|[a-z]{2})\.)?linkedin\.com/in/([^/?#\s]+)/?$", re.IGNORECASE)
_EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$")


def object_body(body: Any, allowed: Sequence[str]) -> dict[str, Any]:
    """The body as an object whose keys are all in `allowed` (the upstream's schemas forbid any other key)."""
    if not isinstance(body, dict):
        raise invalid("Request body must be a JSON object")
    request = cast("dict[str, Any]", body)
    unknown = [k for k in request if k not in allowed]
    if unknown:
        raise invalid(
            f"Unknown parameter(s): {', '.join(repr(u) for u in unknown)}. Allowed parameters: {', '.join(allowed)}"
        )
    return request


def string_list(value: Any, name: str, max_items: int | None) -> list[str]:
    """A non-empty array of non-empty strings, at most `max_items` long."""
    if not isinstance(value, list):
        raise invalid(f"'{name}' must be an array of strings")
    items = cast("list[Any]", value)
    if not items:
        raise invalid(f"'{name}' must contain at least 1 item")
    if max_items is not None and len(items) > max_items:
        raise invalid(f"'{name}' accepts at most {max_items} items; got {len(items)}")
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            raise invalid(f"'{name}'[{i}] must be a non-empty string; got {item!r}")
    return cast("list[str]", items)


def optional_bool(request: dict[str, Any], name: str) -> bool:
    """A boolean parameter; absent or null means false."""
    value = request.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid(f"'{name}' must be true or false; got {value!r}")
    return value


def profile_slug(url: str) -> str:
    """The lower-cased slug of a profile URL; anything but `http(s)://[www.|xx.]linkedin.com/in/<slug>[/]` is a 400."""
    match = _PROFILE_URL.match(url.strip())
    if match is None:
        raise invalid(f"Invalid professional network profile URL: {url!r}. Expected https://www.linkedin.com/in/<slug>")
    return match.group(1).lower()


def check_business_email(email: str) -> None:
    """Refuse a malformed business e-mail with a 400 naming it."""
    if not _EMAIL.match(email.strip()):
        raise invalid(f"Invalid business email: {email!r}")


def identifiers(request: dict[str, Any], *, emails_allowed: bool) -> tuple[str, list[str]]:
    """Which identifier list the request uses and its items, validated (one malformed item fails the batch)."""
    has_urls = URLS in request
    has_emails = emails_allowed and EMAILS in request
    if has_urls and has_emails:
        raise invalid(f"Provide exactly one of '{URLS}' or '{EMAILS}', not both")
    if not has_urls and not has_emails:
        if emails_allowed:
            raise invalid(f"Missing identifier: provide '{URLS}' or '{EMAILS}'")
        raise invalid(f"Missing required parameter '{URLS}'")
    kind = URLS if has_urls else EMAILS
    items = string_list(request[kind], kind, max_items=MAX_IDENTIFIERS)
    for item in items:
        if kind == URLS:
            profile_slug(item)
        else:
            check_business_email(item)
    return kind, items


def closed_fields(value: Any, vocabulary: Sequence[str], what: str) -> list[str] | None:
    """A `fields` list drawn from a closed vocabulary (None when omitted); anything else lists the vocabulary."""
    if value is None:
        return None
    fields = string_list(value, "fields", max_items=None)
    unknown = [f for f in fields if f not in vocabulary]
    if unknown:
        raise invalid(
            f"Unsupported field(s) in 'fields': {', '.join(repr(u) for u in unknown)}. "
            f"{what} accepts only: {', '.join(vocabulary)} (see metadata.available_fields).",
            {"available_fields": list(vocabulary)},
        )
    return fields
