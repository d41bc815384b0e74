"""Bearer tokens for HTTP: a file of `principal sha256-of-token` lines, checked in constant time.

Only hashes are at rest. `person-enrich-mcp token create NAME` prints a new random token once, with the line
to add to the file. The file is re-read whenever its content changes (compared by hash, so a rewrite that
keeps the modification time counts), so tokens can be added or revoked without a restart.

It fails closed: a malformed line is skipped (one warning naming its line number, never its content) and the
other lines apply; a file that is missing or cannot be read accepts no token at all until it can be read again.
Each change is logged once, not once per request. The client's token authenticates it to this server only: it
is never forwarded upstream.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from mcp.server.auth.provider import AccessToken, TokenVerifier

from person_enrich_mcp.errors import ConfigurationError

logger = logging.getLogger(__name__)

SCOPE = "person-enrich"
TOKEN_PREFIX = "pem_"
_PRINCIPAL_RE = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_HASH_RE = re.compile(r"[0-9a-f]{64}")


def token_hash(token: str) -> str:
    """The hex SHA-256 of a token, as stored in the tokens file."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(principal: str) -> tuple[str, str]:
    """A new random token and the tokens-file line for it.

    Raises:
        ConfigurationError: if the principal name is not a plain identifier.
    """
    if not _PRINCIPAL_RE.fullmatch(principal):
        raise ConfigurationError("token create: NAME must be 1-64 letters, digits, '_', '.', '@' or '-'")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, f"{principal} {token_hash(token)}"


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: str
    digest: bytes


def read_tokens(text: str) -> tuple[list[_Entry], list[int]]:
    """Parse `principal sha256hex` lines (blank lines and `#` comments ignored): the entries, and the numbers
    of the lines that are malformed (skipped)."""
    entries: list[_Entry] = []
    bad: list[int] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2 or not _PRINCIPAL_RE.fullmatch(parts[0]) or not _HASH_RE.fullmatch(parts[1].lower()):
            bad.append(number)
            continue
        entries.append(_Entry(parts[0], bytes.fromhex(parts[1].lower())))
    return entries, bad


def _bad_line(source: str, number: int) -> str:
    return (
        f"{source}, line {number}: expected 'principal sha256-of-token' (64 hex digits); "
        "create lines with `person-enrich-mcp token create NAME`"
    )


def parse_tokens_file(text: str, *, source: str = "tokens file") -> list[_Entry]:
    """Parse a tokens file strictly.

    Raises:
        ConfigurationError: naming the first bad line (never echoing a secret).
    """
    entries, bad = read_tokens(text)
    if bad:
        raise ConfigurationError(_bad_line(source, bad[0]))
    return entries


class TokenFileVerifier(TokenVerifier):
    """The SDK's token-verifier seam, backed by the tokens file (re-read on every check, applied on change)."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        self._seen: bytes | str | None = None  # the content hash last applied, or the read error last reported
        self._entries: list[_Entry] = []
        try:
            self._path.read_bytes()
        except OSError as exc:  # at start a wrong path is a mistake to report, not a server nobody can use
            raise ConfigurationError(f"PERSON_ENRICH_TOKENS_FILE: cannot read {self._path}: {exc.strerror}") from None
        self._refresh()

    def __repr__(self) -> str:
        return f"TokenFileVerifier({str(self._path)!r}, principals={len(self._entries)})"

    def _refresh(self) -> None:
        """Apply the file as it is now; log once per change."""
        try:
            content = self._path.read_bytes()
        except OSError as exc:
            problem = f"cannot read it ({exc.strerror})"
            with self._lock:
                changed, self._seen, self._entries = self._seen != problem, problem, []
            if changed:
                logger.warning("tokens file %s: %s; no token is accepted until it can be read", self._path, problem)
            return
        digest = hashlib.sha256(content).digest()
        with self._lock:
            if digest == self._seen:
                return
        entries, bad = read_tokens(content.decode("utf-8", errors="replace"))
        with self._lock:
            if digest == self._seen:  # another check applied the same content meanwhile
                return
            self._entries, self._seen = entries, digest
        for number in bad:
            logger.warning(
                "%s; the line is skipped, the other lines apply", _bad_line(f"tokens file {self._path}", number)
            )
        logger.info("loaded %d principals from %s", len(entries), self._path)

    async def verify_token(self, token: str) -> AccessToken | None:
        """The principal a token belongs to, or None; every entry is compared, in constant time."""
        self._refresh()
        digest = hashlib.sha256(token.encode()).digest()
        match: str | None = None
        with self._lock:
            entries = self._entries
        for entry in entries:
            if hmac.compare_digest(digest, entry.digest) and match is None:
                match = entry.principal
        if match is None:
            return None
        return AccessToken(token=token, client_id=match, scopes=[SCOPE], subject=match)
