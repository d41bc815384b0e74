"""People named by hashes of their identifiers: what the suppression file, the cache's erasure index and
the audit log hold instead of profile URLs and email addresses.

A subject is one normalised identifier of a kind: a profile URL (`identifiers.normalise_profile_url`), an email
(lower-cased), or an email domain (`@domain`). Its hash is the hex SHA-256 of `<kind>:<value>`, for example
`sha256("email:jane@acme.com")` or `sha256("domain:@acme.com")`, so an operator can compute one with
`printf 'email:%s' jane@acme.com | sha256sum`. The prefix keeps the kinds apart.

An email is covered by its own hash and by the hash of its domain and of every parent domain above the
registrable one (`jane@eu.acme.com` by `@eu.acme.com` and `@acme.com`), so a domain opt-out covers its
sub-domains.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, cast

from person_enrich_mcp.fields import PROFILE_URL_PATH
from person_enrich_mcp.identifiers import IdentifierRejected, normalise_profile_url

Kind = Literal["url", "email", "domain"]

# Any address shape (personal mailboxes included: an opt-out may name one, and contact data returns them).
_EMAIL_RE = re.compile(r"[a-z0-9._%+'-]+@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_DOMAIN_RE = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


@dataclass(frozen=True, slots=True)
class Subject:
    """One normalised identifier of a person (or, for `domain`, of everyone at an email domain)."""

    kind: Kind
    value: str

    @property
    def hash(self) -> str:
        """The hex SHA-256 of `<kind>:<value>`: what the suppression file stores."""
        return subject_hash(self.kind, self.value)


def subject_hash(kind: Kind, value: str) -> str:
    """The hex SHA-256 of `<kind>:<value>` (value already normalised)."""
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def parse_subject(raw: str) -> Subject:
    """Read what an operator typed: `@domain` (or `@sub.domain`), an email address, or a profile URL.

    Raises:
        IdentifierRejected: naming what was expected.
    """
    value = raw.strip()
    if value.startswith("@"):
        domain = value[1:].lower().rstrip(".")
        if not _DOMAIN_RE.fullmatch(domain):
            raise IdentifierRejected("not an email domain; expected @company.com")
        return Subject("domain", "@" + domain)
    if "@" in value and "/" not in value:
        email = value.lower()
        if email.startswith("mailto:"):
            email = email[len("mailto:") :]
        if not _EMAIL_RE.fullmatch(email):
            raise IdentifierRejected("not an email address")
        return Subject("email", email)
    return Subject("url", normalise_profile_url(value))


def _domains(email: str) -> Iterator[str]:
    """`@domain` for the email's domain and each parent that still has two labels."""
    labels = email.rsplit("@", 1)[1].split(".")
    for start in range(len(labels) - 1):
        yield "@" + ".".join(labels[start:])


def email_hashes(email: str) -> set[str]:
    """The hashes that cover one email: the address itself and its domains."""
    lowered = email.strip().lower()
    found = {subject_hash("email", lowered)}
    found.update(subject_hash("domain", domain) for domain in _domains(lowered))
    return found


def identifier_hashes(identifier: str) -> set[str]:
    """The hashes that cover a normalised look-up identifier (a profile URL or an email)."""
    if "@" in identifier and "/" not in identifier:
        return email_hashes(identifier)
    return {subject_hash("url", identifier)}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in cast(dict[str, Any], value).values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in cast(list[Any], value):
            yield from _strings(item)


def profile_url_in(person_data: dict[str, Any]) -> str | None:
    """The normalised profile URL a person's data carries, if any."""
    value: Any = person_data
    for part in PROFILE_URL_PATH.split("."):
        value = cast(dict[str, Any], value).get(part) if isinstance(value, dict) else None
    if not isinstance(value, str):
        return None
    try:
        return normalise_profile_url(value)
    except IdentifierRejected:
        return None


# The sections that hold email addresses (work, personal, developer platform): walked whole, so an email in a
# field added there later is still seen; the rest of a profile (free text, roles, schools) is not walked.
EMAIL_SECTIONS = ("contact", "dev_platform_profiles")


def person_hashes(person_data: dict[str, Any]) -> set[str]:
    """Every subject hash a person's data reveals: their profile URL, and each email in their contact and
    developer-platform sections with its domains."""
    found: set[str] = set()
    url = profile_url_in(person_data)
    if url is not None:
        found.add(subject_hash("url", url))
    for text in _strings([person_data.get(section) for section in EMAIL_SECTIONS]):
        if "@" in text:
            lowered = text.strip().lower()
            if _EMAIL_RE.fullmatch(lowered):
                found |= email_hashes(lowered)
    return found


def hashes_of_all(people: Iterable[dict[str, Any]]) -> set[str]:
    """The union of `person_hashes` over several people."""
    found: set[str] = set()
    for person in people:
        found |= person_hashes(person)
    return found
