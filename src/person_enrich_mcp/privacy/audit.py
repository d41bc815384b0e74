"""The audit trail: one JSON line per upstream request (and per look-up served from the cache or refused by the
opt-out list), naming people only by salted hashes.

A record says when, which principal and session, which tool, which endpoint, how many identifiers and their
salted hashes, which fields, the credits estimated and charged, the call's cache hits, and the outcome. Given an
identifier and the salt, `audit find` answers "who looked this person up, when, for which fields, at what cost";
without the salt the hashes cannot be tested against guesses, and no record holds anything of the answer.

The salt is the secret that makes the hashes unlinkable: a file (`PERSON_ENRICH_AUDIT_SALT_FILE`, by default
`<log>.salt`, created with mode 0600 on first start). Destroying it makes every record written with it
anonymous for good.

The log is append-only: the file is opened with `O_APPEND` and each record is one `write`. When the file is
renamed or removed (logrotate), the next record reopens the path, so `create` rotation needs no signal. A record
that cannot be written is an error: no further look-up is made until the log is writable again (fail closed).
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import logging
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Protocol, cast

from person_enrich_mcp.errors import ConfigurationError, PrivacyUnavailableError, format_credits
from person_enrich_mcp.privacy.subjects import Subject

logger = logging.getLogger(__name__)

SETTING = "PERSON_ENRICH_AUDIT_LOG"
SALT_SETTING = "PERSON_ENRICH_AUDIT_SALT_FILE"
STDERR = "stderr"
SALT_SUFFIX = ".salt"
RECORD_VERSION = 1
# Hex digits of a salted hash kept in a record: 128 bits, plenty to tell people apart, shorter lines.
PSEUDONYM_HEX = 32
IdentifierKind = Literal["url", "email", "pid", "none"]


def _now_iso(clock: float) -> str:
    return datetime.fromtimestamp(clock, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def salt_path_for(log: str, configured: str | None) -> Path:
    """Where the salt lives: the configured file, else `<log>.salt` next to a file log.

    Raises:
        ConfigurationError: for a stderr log without a configured salt file.
    """
    if configured:
        return Path(configured)
    if log == STDERR:
        raise ConfigurationError(
            f"{SETTING}=stderr needs {SALT_SETTING}: a file holding the salt (created if missing), so that "
            "`person-enrich-mcp audit find` can search the records later"
        )
    return Path(log + SALT_SUFFIX)


def read_salt(path: Path, *, create: bool) -> bytes:
    """The salt in a file; with `create`, a new random one is written (mode 0600) when the file is missing.

    Raises:
        ConfigurationError: when the file is missing (and not to be created), unreadable or too short.
    """
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        if not create:
            raise ConfigurationError(
                f"{SALT_SETTING}: {path} does not exist; without the salt the audit log cannot be searched"
            ) from None
        path.parent.mkdir(parents=True, exist_ok=True)
        text = secrets.token_hex(32)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another replica created it first: use theirs
            return read_salt(path, create=False)
        except OSError as exc:
            raise ConfigurationError(f"{SALT_SETTING}: cannot create {path}: {exc.strerror}") from None
        with os.fdopen(descriptor, "w", encoding="ascii") as out:
            out.write(text + "\n")
        logger.warning("created a new audit salt at %s: keep it secret, and back it up with the log", path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{SALT_SETTING}: cannot read {path}: {exc}") from None
    if len(text) < 32:
        raise ConfigurationError(f"{SALT_SETTING}: {path} holds fewer than 32 characters; use a long random salt")
    return text.encode("ascii")


class Pseudonyms:
    """Salted hashes of identifiers (HMAC-SHA256 keyed by the salt, truncated)."""

    def __init__(self, salt: bytes) -> None:
        self._salt = salt
        # Names the salt in every record without revealing it, so `audit find` can tell records it cannot match.
        self.key_id = hashlib.sha256(b"key-id:" + salt).hexdigest()[:8]

    def __repr__(self) -> str:
        return f"Pseudonyms(key_id={self.key_id!r})"

    def of(self, kind: str, value: str) -> str:
        """The salted hash of a normalised identifier of a kind (`url`, `email`, `pid`)."""
        digest = hmac.new(self._salt, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
        return digest[:PSEUDONYM_HEX]

    def of_subject(self, subject: Subject) -> str:
        """The salted hash `audit find` looks for, for a subject an operator typed."""
        return self.of(subject.kind, subject.value)


class _Sink(Protocol):
    def write(self, line: str) -> None: ...
    def close(self) -> None: ...


class _StderrSink:
    def __init__(self) -> None:
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        with self._lock:
            sys.stderr.write(line)
            sys.stderr.flush()

    def close(self) -> None:
        """Nothing to close."""


class _FileSink:
    """An append-only file that follows rotation: reopened when the path names another file (or none)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._open()

    def _open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def _rotated(self) -> bool:
        assert self._fd is not None
        try:
            on_path = self._path.stat()
        except FileNotFoundError:
            return True
        held = os.fstat(self._fd)
        return (on_path.st_dev, on_path.st_ino) != (held.st_dev, held.st_ino)

    def write(self, line: str) -> None:
        data = line.encode()
        with self._lock:
            if self._fd is None or self._rotated():
                self.close()
                self._open()
            assert self._fd is not None
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError(f"short write to the audit log ({written} of {len(data)} bytes)")

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _session_label(session: str) -> str:
    """A session as recorded: HTTP session ids are capabilities, so only their hash is kept.

    A legacy HTTP session is `http:<principal>:<session id>` (a sessionless client's is `http:<principal>`).
    """
    kind, _, rest = session.partition(":")
    if kind == "http-session" and rest:
        return f"http-session:{hashlib.sha256(rest.encode()).hexdigest()[:16]}"
    principal, _, session_id = rest.partition(":")
    if kind == "http" and session_id:
        return f"http:{principal}:{hashlib.sha256(session_id.encode()).hexdigest()[:16]}"
    return session


class AuditLog:
    """Where records go, and the pseudonyms they use."""

    enabled = True

    def __init__(self, target: str, salt: bytes, *, clock: Callable[[], float] = time.time) -> None:
        """Open the log.

        Raises:
            ConfigurationError: when a file log cannot be opened.
        """
        self.target = target
        self.pseudonyms = Pseudonyms(salt)
        self._clock = clock
        self._broken: str | None = None
        try:
            self._sink: _Sink = _StderrSink() if target == STDERR else _FileSink(Path(target))
        except OSError as exc:
            raise ConfigurationError(f"{SETTING}: cannot open {target}: {exc.strerror}") from None

    def __repr__(self) -> str:
        return f"AuditLog({self.target!r})"

    def require(self) -> None:
        """Refuse a new look-up while records cannot be written.

        Raises:
            PrivacyUnavailableError: while the log is unwritable.
        """
        if self._broken is None:
            return
        raise PrivacyUnavailableError(
            "This server's audit log cannot be written, so it makes no look-ups until the operator fixes it "
            f"({SETTING}). Nothing was sent or spent; tell the operator."
        )

    def write(self, record: dict[str, Any]) -> None:
        """Append one record; a failure is logged (without the record) and stops further look-ups."""
        line = json.dumps(record, separators=(",", ":"), sort_keys=False) + "\n"
        try:
            self._sink.write(line)
        except OSError as exc:
            if self._broken is None:
                logger.error("audit log %s unwritable, refusing look-ups until it is: %s", self.target, exc)
            self._broken = str(exc)
            return
        if self._broken is not None:
            logger.warning("audit log %s writable again: look-ups resume", self.target)
            self._broken = None

    def call(self, tool: str, session: str, principal: str | None) -> AuditCall:
        """The records of one tool call."""
        return AuditCall(self, tool, session, principal)

    def now(self) -> str:
        """The record timestamp (UTC, milliseconds)."""
        return _now_iso(self._clock())

    def close(self) -> None:
        """Close the file."""
        self._sink.close()


class DisabledAudit:
    """No audit log configured: calls are not recorded."""

    enabled = False
    target = None

    def require(self) -> None:
        """Always usable."""

    def call(self, tool: str, session: str, principal: str | None) -> AuditCall:
        """A call whose records go nowhere."""
        return AuditCall(None, tool, session, principal)

    def close(self) -> None:
        """Nothing to close."""


def _hash_identifiers(pseudonyms: Pseudonyms, kind: IdentifierKind, identifiers: Sequence[str]) -> list[str]:
    if kind == "none":
        return []
    return [pseudonyms.of(kind, identifier) for identifier in identifiers]


class AuditCall:
    """Writes the records of one tool call, all carrying the same call id."""

    def __init__(self, log: AuditLog | None, tool: str, session: str, principal: str | None) -> None:
        self._log = log
        self.id = secrets.token_hex(8)
        self.tool = tool
        self.session = _session_label(session)
        self.principal = principal
        self.cache_hits = 0

    def _write(
        self,
        endpoint: str,
        kind: IdentifierKind,
        identifiers: Sequence[str],
        fields: Iterable[str],
        *,
        estimated: Decimal,
        charged: Decimal,
        unverified: Decimal,
        outcome: str,
        extra: dict[str, Any] | None = None,
    ) -> None:
        log = self._log
        if log is None:
            return
        record: dict[str, Any] = {
            "v": RECORD_VERSION,
            "at": log.now(),
            "call": self.id,
            "principal": self.principal,
            "session": self.session,
            "tool": self.tool,
            "endpoint": endpoint,
            "identifiers": len(identifiers),
            "kind": kind,
            "subjects": _hash_identifiers(log.pseudonyms, kind, identifiers),
            "fields": list(fields),
            "estimated": format_credits(estimated),
            "charged": format_credits(charged),
            "unverified": format_credits(unverified),
            "cache_hits": self.cache_hits,
            "outcome": outcome,
            "key": log.pseudonyms.key_id,
        }
        if extra:
            record.update(extra)
        log.write(record)

    def request(
        self,
        endpoint: str,
        kind: IdentifierKind,
        identifiers: Sequence[str],
        fields: Iterable[str],
        *,
        estimated: Decimal,
        charged: Decimal,
        unverified: Decimal,
        outcome: str,
        results: int | None = None,
    ) -> None:
        """One upstream request: what was sent (hashed), what it was estimated at and charged, how it ended."""
        extra = {"results": results} if results is not None else None
        self._write(
            endpoint, kind, identifiers, fields, estimated=estimated, charged=charged, unverified=unverified,
            outcome=outcome, extra=extra,
        )  # fmt: skip

    def served_from_cache(self, kind: IdentifierKind, identifiers: Sequence[str], fields: Iterable[str]) -> None:
        """People served from the cache: a disclosure without an upstream request, at no cost."""
        if identifiers:
            zero = Decimal(0)
            self._write(
                "cache", kind, identifiers, fields, estimated=zero, charged=zero, unverified=zero, outcome="ok"
            )  # fmt: skip

    def suppressed(self, kind: IdentifierKind, identifiers: Sequence[str], fields: Iterable[str]) -> None:
        """Identifiers refused by the opt-out list: never sent, nothing charged (the record proves it)."""
        if identifiers:
            zero = Decimal(0)
            self._write(
                "none", kind, identifiers, fields, estimated=zero, charged=zero, unverified=zero, outcome="suppressed"
            )  # fmt: skip


def open_audit(log: str | None, salt_file: str | None) -> AuditLog | DisabledAudit:
    """The audit log the settings name (created with its salt when missing), or none.

    Raises:
        ConfigurationError: for a stderr log without a salt file, or a log or salt that cannot be opened.
    """
    if not log:
        return DisabledAudit()
    salt = read_salt(salt_path_for(log, salt_file), create=True)
    return AuditLog(log, salt)


# --- searching the log (`audit find`) ----------------------------------------------------------------------------


def log_files(path: Path) -> list[Path]:
    """The log and its rotated siblings (`audit.jsonl.1`, `audit.jsonl.2.gz`, `audit.jsonl-20250101.gz`),
    oldest first by modification time."""
    siblings = [
        p
        for p in path.parent.glob(path.name + "*")
        if p.is_file() and p != path and p.name[len(path.name)] in ".-" and not p.name.endswith(SALT_SUFFIX)
    ]
    found = sorted(siblings, key=lambda p: p.stat().st_mtime)
    if path.is_file():
        found.append(path)
    return found


def _lines(path: Path) -> Iterator[str]:
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as text:
            yield from text
    else:
        with path.open(encoding="utf-8", errors="replace") as text:
            yield from text


@dataclass(slots=True)
class FindResult:
    """Records about the people looked for, and how many records a different salt made unsearchable."""

    records: list[dict[str, Any]]
    other_key: int = 0
    scanned: int = 0


def find_records(paths: Iterable[Path], pseudonyms: Pseudonyms, subjects: Iterable[Subject]) -> FindResult:
    """Every record whose subjects include one of the people looked for (lines that are not records are skipped,
    so a captured stderr with log lines mixed in can be searched as it is)."""
    wanted = {pseudonyms.of_subject(s) for s in subjects if s.kind != "domain"}
    result = FindResult([])
    for path in paths:
        for line in _lines(path):
            if not line.startswith("{"):
                continue
            try:
                parsed: Any = json.loads(line)
            except ValueError:
                continue
            if not isinstance(parsed, dict):
                continue
            record = cast(dict[str, Any], parsed)
            listed: Any = record.get("subjects")
            if not isinstance(listed, list):
                continue
            result.scanned += 1
            if record.get("key") != pseudonyms.key_id:
                result.other_key += 1
                continue
            if wanted.intersection(str(s) for s in cast(list[Any], listed)):
                result.records.append(record)
    return result
