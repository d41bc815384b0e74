"""Bearer tokens for HTTP: a file of `principal sha256-of-token` lines, checked in constant time.

Only hashes are at rest. `person-enrich-mcp token create NAME` prints a new random token once, with the line
to add to the file. The file is re-read when it changes, so tokens can be added or revoked without a restart.
The client's token authenticates it to this server only: it is never forwarded upstream.
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


def parse_tokens_file(text: str, *, source: str = "tokens file") -> list[_Entry]:
    """Parse `principal sha256hex` lines (blank lines and `#` comments ignored).

    Raises:
        ConfigurationError: naming the first bad line (never echoing a secret).
    """
    entries: list[_Entry] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2 or not _PRINCIPAL_RE.fullmatch(parts[0]) or not _HASH_RE.fullmatch(parts[1].lower()):
            raise ConfigurationError(
                f"{source}, line {number}: expected 'principal sha256-of-token' (64 hex digits); "
                "create lines with `person-enrich-mcp token create NAME`"
            )
        entries.append(_Entry(parts[0], bytes.fromhex(parts[1].lower())))
    return entries


class TokenFileVerifier(TokenVerifier):
    """The SDK's token-verifier seam, backed by the tokens file."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._entries: list[_Entry] = []
        self._load()  # fail at startup, not on the first request, when the file is missing or malformed

    def __repr__(self) -> str:
        return f"TokenFileVerifier({str(self._path)!r}, principals={len(self._entries)})"

    def _load(self) -> None:
        try:
            stat = self._path.stat()
            if stat.st_mtime == self._mtime:
                return
            entries = parse_tokens_file(self._path.read_text(encoding="utf-8"), source=str(self._path))
        except OSError as exc:
            raise ConfigurationError(f"PERSON_ENRICH_TOKENS_FILE: cannot read {self._path}: {exc.strerror}") from None
        with self._lock:
            self._entries, self._mtime = entries, stat.st_mtime
        logger.info("loaded %d principals from %s", len(entries), self._path)

    async def verify_token(self, token: str) -> AccessToken | None:
        """The principal a token belongs to, or None; every entry is compared, in constant time."""
        try:
            self._load()
        except ConfigurationError:
            logger.exception("tokens file unreadable; keeping the last good copy")
        digest = hashlib.sha256(token.encode()).digest()
        match: str | None = None
        with self._lock:
            for entry in self._entries:
                if hmac.compare_digest(digest, entry.digest) and match is None:
                    match = entry.principal
        if match is None:
            return None
        return AccessToken(token=token, client_id=match, scopes=[SCOPE], subject=match)
