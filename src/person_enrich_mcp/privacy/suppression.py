"""The opt-out (suppression) file: hashes of profile URLs, emails and email domains nobody may look up.

One entry a line: the 64 hex digits of a subject hash (`subjects.subject_hash`), optionally followed by a
`# comment`; blank lines and comment lines are ignored. The file never needs the addresses themselves:
`person-enrich-mcp suppress add IDENTIFIER...` hashes what it is given and appends the hashes.

The server reads the file at start-up (a missing or malformed file stops it) and again whenever it changes,
judged by inode, size, modification and change times, and by re-reading the content while the file is young
enough for two writes to share a timestamp, and every `RECHECK_SECONDS` regardless. It fails closed: while the
file is missing, unreadable or malformed, every look-up is refused (nothing is sent) until it is fixed.

Writers (`add_entries`, `remove_entries`) hold a lock on the directory and replace the file atomically, so the
server never reads half a line.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from person_enrich_mcp.errors import ConfigurationError, PrivacyUnavailableError

logger = logging.getLogger(__name__)

SETTING = "PERSON_ENRICH_SUPPRESSION_FILE"
_HASH_RE = re.compile(r"[0-9a-f]{64}")
# Two writes within this long of each other can leave the same timestamps: content is compared while that holds.
RACY_SECONDS = 2.0
# The content is re-read at least this often, whatever the file's metadata says.
RECHECK_SECONDS = 60.0


def parse_suppression(text: str, *, source: str) -> frozenset[str]:
    """The hashes of a suppression file's text.

    Raises:
        ConfigurationError: naming the first line that is not a hash (never echoing its content).
    """
    found: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip().lower()
        if not line:
            continue
        if not _HASH_RE.fullmatch(line):
            raise ConfigurationError(
                f"{source}, line {number}: expected one sha256 hash (64 hex digits) per line; add entries with "
                "`person-enrich-mcp suppress add IDENTIFIER`"
            )
        found.add(line)
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class _Signature:
    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, stat: os.stat_result) -> _Signature:
        return cls(stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


class SuppressionList:
    """The opt-out hashes of one file, kept current; `require()` refuses while the file cannot be used."""

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        """Read the file now.

        Raises:
            ConfigurationError: when the file is missing, unreadable or malformed (the server does not start).
        """
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._hashes: frozenset[str] = frozenset()
        self._signature: _Signature | None = None
        self._digest: bytes | None = None
        self._read_at = 0.0
        self.problem: str | None = None
        self.version = 0  # bumped whenever the set of hashes changes
        self._serving = False  # at start-up a problem is the caller's one-sentence error, not a log line
        self._load(force=True)
        if self.problem is not None:
            raise ConfigurationError(self.problem)
        self._serving = True

    def __repr__(self) -> str:
        return f"SuppressionList({str(self.path)!r}, entries={len(self._hashes)})"

    def __len__(self) -> int:
        return len(self._hashes)

    @property
    def hashes(self) -> frozenset[str]:
        """The last set read successfully (what in-flight look-ups keep checking against)."""
        return self._hashes

    def refresh(self) -> bool:
        """Re-read the file if it may have changed; True when the set of hashes changed. Never raises."""
        with self._lock:
            before = self.version
            self._load(force=False)
            return self.version != before

    def require(self) -> frozenset[str]:
        """The current hashes, after a refresh.

        Raises:
            PrivacyUnavailableError: while the file is missing, unreadable or malformed.
        """
        self.refresh()
        if self.problem is not None:
            raise PrivacyUnavailableError(
                "This server's opt-out list cannot be read, so it makes no look-ups until the operator fixes it "
                f"({SETTING}). Nothing was sent or spent; tell the operator, and do not retry until then."
            )
        return self._hashes

    def _fail(self, problem: str) -> None:
        if self.problem != problem and self._serving:
            logger.error("opt-out list unusable, refusing every look-up until it is fixed: %s", problem)
        self.problem = problem
        self._signature = None  # read it again on the next check, whatever its metadata says

    def _load(self, *, force: bool) -> None:
        now = self._clock()
        try:
            signature = _Signature.of(self.path.stat())
        except OSError as exc:
            self._fail(f"{SETTING}: cannot read {self.path}: {exc.strerror}")
            return
        racy = now - max(signature.mtime_ns, signature.ctime_ns) / 1e9 < RACY_SECONDS
        stale = now - self._read_at >= RECHECK_SECONDS
        if not force and signature == self._signature and not racy and not stale and self.problem is None:
            return
        try:
            content = self.path.read_bytes()
        except OSError as exc:
            self._fail(f"{SETTING}: cannot read {self.path}: {exc.strerror}")
            return
        self._read_at = now
        digest = hashlib.sha256(content).digest()
        if digest == self._digest and self.problem is None:
            self._signature = signature
            return
        try:
            hashes = parse_suppression(content.decode("utf-8"), source=str(self.path))
        except UnicodeDecodeError:
            self._fail(f"{SETTING}: {self.path} is not UTF-8 text")
            return
        except ConfigurationError as exc:
            self._fail(str(exc))
            return
        if self.problem is not None and self._serving:
            logger.warning("opt-out list readable again: look-ups resume")
        self.problem = None
        self._signature, self._digest = signature, digest
        if hashes != self._hashes:
            self._hashes = hashes
            self.version += 1
            logger.info("opt-out list: %d entries from %s", len(hashes), self.path)


# --- writing the file (the CLI) ----------------------------------------------------------------------------------


class _DirectoryLock:
    """An exclusive lock on the file's directory, so concurrent writers queue instead of losing entries."""

    def __init__(self, path: Path) -> None:
        self._directory = path.parent

    def __enter__(self) -> None:
        self._directory.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self._directory, os.O_RDONLY)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *_: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


def _read_lines(path: Path) -> list[str]:
    """The file's lines, after checking that it parses (a malformed file is never rewritten).

    Raises:
        ConfigurationError: for an unreadable or malformed file.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{SETTING}: cannot read {path}: {exc}") from None
    parse_suppression(text, source=str(path))
    return text.splitlines()


def _replace(path: Path, lines: list[str]) -> None:
    """Write the file whole, next to it, then rename it into place (readers see the old or the new file)."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write("".join(line + "\n" for line in lines))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _hash_of(line: str) -> str | None:
    entry = line.split("#", 1)[0].strip().lower()
    return entry or None


def add_entries(path: str | Path, entries: Iterable[tuple[str, str]]) -> tuple[int, int]:
    """Append `(hash, comment)` entries the file does not hold yet; returns (added, already present).

    Raises:
        ConfigurationError: when the existing file is unreadable or malformed.
    """
    target = Path(path)
    with _DirectoryLock(target):
        lines = _read_lines(target)
        held = {h for h in map(_hash_of, lines) if h}
        added = present = 0
        for digest, comment in entries:
            if digest in held:
                present += 1
                continue
            held.add(digest)
            lines.append(f"{digest}  # {comment}" if comment else digest)
            added += 1
        if added or not target.exists():
            _replace(target, lines)
    return added, present


def remove_entries(path: str | Path, hashes: Iterable[str]) -> int:
    """Remove entries by hash; returns how many lines were removed.

    Raises:
        ConfigurationError: when the file is unreadable or malformed.
    """
    target = Path(path)
    unwanted = set(hashes)
    with _DirectoryLock(target):
        lines = _read_lines(target)
        kept = [line for line in lines if _hash_of(line) not in unwanted]
        removed = len(lines) - len(kept)
        if removed:
            _replace(target, kept)
    return removed
