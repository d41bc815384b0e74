"""Normalise and validate identifiers before anything is spent.

Upstream, one malformed identifier fails a whole batch of 25, and a personal mailbox never matches a
`business_emails` look-up. So every identifier is checked here: valid ones are normalised (and
de-duplicated), invalid ones are reported one by one and never sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import quote, unquote, urlsplit

from person_enrich_mcp.untrusted import clean_text

PROFILE_URL_PREFIX = "https://www.linkedin.com/in/"

_HOST_RE = re.compile(r"(?:(?:www|[a-z]{2})\.)?linkedin\.com")
_SLUG_CHARS_RE = re.compile(r"[\w\-.]+", re.UNICODE)
MIN_SLUG_LENGTH = 3
MAX_SLUG_LENGTH = 100
# Deliberately narrower than RFC 5322: the upstream rejects a whole batch for one address it cannot read,
# so only the characters work addresses use in practice pass (letters, digits, . _ % + -).
_EMAIL_RE = re.compile(
    r"[a-z0-9_%+-]+(?:\.[a-z0-9_%+-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)
MAX_IDENTIFIER_LENGTH = 320
# A rejected identifier is echoed back at most this long, so hostile input cannot inflate the result.
ECHO_LENGTH = 120
# Control characters and whitespace (regex `\s` on str is exactly `str.isspace`), found in one C-level scan.
_CONTROL_OR_SPACE_RE = re.compile(r"[\x00-\x1f\s]")

# Consumer mailbox providers: `business_emails` never resolves these, so a look-up is a guaranteed miss.
PERSONAL_MAIL_DOMAINS = frozenset(
    {
        "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de", "ymail.com",
        "outlook.com", "hotmail.com", "hotmail.co.uk", "live.com", "msn.com", "icloud.com", "me.com", "mac.com",
        "aol.com", "proton.me", "protonmail.com", "pm.me", "gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com",
        "yandex.com", "yandex.ru", "mail.ru", "qq.com", "163.com", "126.com", "zoho.com", "fastmail.com",
        "hey.com", "tutanota.com", "comcast.net", "att.net", "verizon.net",
    }
)  # fmt: skip


class IdentifierRejected(ValueError):
    """An identifier failed local validation; the message says why and how to fix it."""


@dataclass(frozen=True, slots=True)
class IdentifierProblem:
    """One identifier that was not sent upstream, and why."""

    identifier: str
    reason: str


@dataclass(slots=True)
class IdentifierBatch:
    """The outcome of checking a list of identifiers.

    `accepted` maps each normalised identifier to the first input spelling that produced it, in input order;
    duplicates (after normalisation) are sent once.
    """

    accepted: dict[str, str] = field(default_factory=dict[str, str])
    problems: list[IdentifierProblem] = field(default_factory=list[IdentifierProblem])
    duplicates: int = 0

    @property
    def normalised(self) -> list[str]:
        """The identifiers to look up, normalised and unique, in input order."""
        return list(self.accepted)


def _check_length(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise IdentifierRejected("empty identifier")
    if len(value) > MAX_IDENTIFIER_LENGTH:
        raise IdentifierRejected(f"longer than {MAX_IDENTIFIER_LENGTH} characters")
    if _CONTROL_OR_SPACE_RE.search(value):
        raise IdentifierRejected("contains whitespace or control characters")
    return value


def normalise_profile_url(raw: str) -> str:
    """Return the canonical `https://www.linkedin.com/in/<slug>` form of a profile URL.

    Accepts `http`, no scheme, no `www.`, country sub-domains, upper-case hosts, a trailing slash, a query
    string and a fragment (both dropped). Rejects other hosts, credentials, ports, and anything that is not
    a single `/in/<slug>` path.

    Raises:
        IdentifierRejected: with a reason a model can act on.
    """
    return _profile_url_seen_lately(raw)


def normalise_business_email(raw: str) -> str:
    """Return a lower-cased business email address.

    Raises:
        IdentifierRejected: for malformed addresses, display-name forms, and personal mailbox domains.
    """
    return _business_email_seen_lately(raw)


def _canonical_profile_url(raw: str) -> str:
    """The canonical form of a profile URL (`normalise_profile_url`, uncached).

    Raises:
        IdentifierRejected: with a reason a model can act on.
    """
    value = _check_length(raw)
    if "://" not in value:
        if ":" in value.split("/", 1)[0]:
            raise IdentifierRejected("not an http(s) URL; expected https://www.linkedin.com/in/<slug>")
        value = "https://" + value
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unbalanced "[" read as an IPv6 literal
        raise IdentifierRejected("not a valid URL; expected https://www.linkedin.com/in/<slug>") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise IdentifierRejected("not an http(s) URL; expected https://www.linkedin.com/in/<slug>")
    if "@" in parts.netloc:  # a user name, a password or both
        raise IdentifierRejected("URL must not contain credentials")
    try:
        has_port = parts.port is not None
    except ValueError:  # a port that is not a number
        has_port = True
    if has_port:
        raise IdentifierRejected("URL must not name a port")
    host = (parts.hostname or "").rstrip(".")  # `hostname` is lower case already
    if not _HOST_RE.fullmatch(host):
        raise IdentifierRejected("not a professional network profile URL; expected https://www.linkedin.com/in/<slug>")
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) != 2 or segments[0].lower() != "in":
        if segments and segments[0].lower() == "pub":
            raise IdentifierRejected("legacy /pub/ URL; open the profile and use its /in/<slug> URL")
        raise IdentifierRejected("expected a single /in/<slug> path, e.g. https://www.linkedin.com/in/jane-doe")
    # Invalid UTF-8 in an escape decodes to U+FFFD, which no slug holds. After one round of decoding a slug holds
    # no "%" either (not a slug character): one that does was double-encoded or malformed.
    slug = unquote(segments[1])
    if not _SLUG_CHARS_RE.fullmatch(slug) or slug.strip(".-") == "":
        raise IdentifierRejected("the profile slug has characters a profile URL cannot have")
    if not MIN_SLUG_LENGTH <= len(slug) <= MAX_SLUG_LENGTH:
        size = "too short" if len(slug) < MIN_SLUG_LENGTH else "too long"
        raise IdentifierRejected(
            f"the profile slug is {size} ({len(slug)} characters; profile slugs have {MIN_SLUG_LENGTH} to "
            f"{MAX_SLUG_LENGTH}): check that the URL was copied whole"
        )
    # Canonical form: lower case, non-ASCII percent-encoded (as profile URLs are shared), so it is stable.
    # (A slug holds no "/", and letters, digits, "-", "_" and "." are never encoded.)
    return PROFILE_URL_PREFIX + quote(slug.lower())


def _canonical_business_email(raw: str) -> str:
    """A business email address, lower-cased (`normalise_business_email`, uncached).

    Raises:
        IdentifierRejected: for malformed addresses, display-name forms, and personal mailbox domains.
    """
    if "<" in raw or ">" in raw:
        raise IdentifierRejected("pass the bare address (jane@company.com), without a display name or angle brackets")
    value = _check_length(raw)
    lowered = value.lower()
    if lowered.startswith("mailto:"):
        raise IdentifierRejected("pass the bare address, without mailto:")
    if len(lowered) > 254 or not _EMAIL_RE.fullmatch(lowered):
        raise IdentifierRejected("not a valid email address")
    domain = lowered.rsplit("@", 1)[1]
    if domain in PERSONAL_MAIL_DOMAINS:
        raise IdentifierRejected(
            f"{domain} is a personal mailbox; business_emails only resolves work addresses, so this look-up "
            "would always miss and was not sent (no credits spent)"
        )
    return lowered


# Both normalisers are pure functions of their input, and a call checks its identifiers twice (when pricing the
# confirmation and again in the tool), while agents repeat look-ups: answers are kept for the strings seen lately.
# The caches wrap the plain checks rather than decorating them, so the checks stay ordinary functions that the
# mutation run (`scripts/mutation`, which skips decorated functions) can break.
_profile_url_seen_lately = lru_cache(maxsize=2048)(_canonical_profile_url)
_business_email_seen_lately = lru_cache(maxsize=2048)(_canonical_business_email)


def _echo(raw: str) -> str:
    """A rejected identifier as it is shown back: cleaned like third-party text (it may hold anything), and short."""
    shown = clean_text(raw)
    return shown if len(shown) <= ECHO_LENGTH else shown[: ECHO_LENGTH - 1] + "…"


def _check_all(raw_values: list[str], normalise: Callable[[str], str]) -> IdentifierBatch:
    batch = IdentifierBatch()
    for raw in raw_values:
        try:
            canonical = normalise(raw)
        except IdentifierRejected as exc:
            batch.problems.append(IdentifierProblem(identifier=_echo(raw), reason=str(exc)))
            continue
        if canonical in batch.accepted:
            batch.duplicates += 1
        else:
            batch.accepted[canonical] = raw
    return batch


def check_profile_urls(raw_values: list[str]) -> IdentifierBatch:
    """Validate and normalise profile URLs; duplicates after normalisation are kept once."""
    return _check_all(raw_values, normalise_profile_url)


def check_business_emails(raw_values: list[str]) -> IdentifierBatch:
    """Validate and normalise business emails; duplicates after normalisation are kept once."""
    return _check_all(raw_values, normalise_business_email)
