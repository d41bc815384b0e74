"""The operator's commands for people's requests: `suppress` (opt-outs), `forget` (erasure) and `audit find`
(who looked someone up). They read the same settings as the server and never need the API key.

Output names counts, never the people: identifiers are echoed only by `suppress check`, which exists to answer
"is this one on the list?" on the operator's own terminal.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import anyio

from person_enrich_mcp.cache import PAGE_TTL_SECONDS, Erased, ProfileCache
from person_enrich_mcp.errors import ConfigurationError
from person_enrich_mcp.identifiers import IdentifierRejected
from person_enrich_mcp.privacy.audit import (
    STDERR,
    FindResult,
    Pseudonyms,
    find_records,
    log_files,
    read_salt,
    salt_path_for,
)
from person_enrich_mcp.privacy.erasure import post_erasure
from person_enrich_mcp.privacy.subjects import Subject, email_hashes, parse_subject
from person_enrich_mcp.privacy.suppression import SETTING as SUPPRESSION_SETTING
from person_enrich_mcp.privacy.suppression import add_entries, parse_suppression, remove_entries
from person_enrich_mcp.settings import Settings
from person_enrich_mcp.state import (
    SHARED_CACHE,
    StateStore,
    check_cache_url,
    check_store_url,
    describe_store,
    open_store,
)

COMMANDS = ("suppress", "forget", "access", "audit")


def _identifier_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("identifiers", nargs="*", metavar="IDENTIFIER", help=what)
    parser.add_argument(
        "--from",
        dest="from_file",
        metavar="FILE",
        help="read more identifiers from FILE, one a line ('-' for standard input; blank and # lines skipped)",
    )


def add_commands(commands: Any) -> None:
    """Add `suppress`, `forget` and `audit` to the CLI's sub-command parsers."""
    identifiers = "a profile URL, an email address, or @domain for everyone at an email domain"
    suppress = commands.add_parser(
        "suppress",
        help="manage the opt-out list (PERSON_ENRICH_SUPPRESSION_FILE): hashes only, never the addresses",
        description="People on the opt-out list are never looked up: their identifiers are never sent, and anyone "
        "the upstream returns with a listed URL, email or domain is dropped before the model sees them.",
    )
    actions = suppress.add_subparsers(dest="suppress_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add identifiers (hashed) to the opt-out list")
    _identifier_arguments(add, identifiers)
    remove = actions.add_parser("remove", help="take identifiers off the opt-out list (a withdrawn objection)")
    _identifier_arguments(remove, identifiers)
    check = actions.add_parser("check", help="say whether each identifier is on the opt-out list")
    _identifier_arguments(check, identifiers)

    forget = commands.add_parser(
        "forget",
        help="erase everything cached about people (the configured cache, and running servers' memory)",
        description="Remove every cached entry about these people from the profile cache PERSON_ENRICH_CACHE_URL "
        "names: look-ups by their URL or email, email look-ups that returned them, and search pages listing them. "
        "Servers that keep the cache in memory are reached through the state store (SQLite or Redis) or, with "
        "--suppress, through the opt-out list.",
    )
    _identifier_arguments(forget, identifiers)
    forget.add_argument("--suppress", action="store_true", help="also add them to the opt-out list")
    forget.add_argument("--dry-run", action="store_true", help="count what would be removed; change nothing")

    access = commands.add_parser(
        "access",
        help="print what the configured cache holds about people (for an access request)",
        description="Print, one JSON object a line, every entry the profile cache PERSON_ENRICH_CACHE_URL names "
        "holds about these people (what a look-up paid for, as kept). A cache in running servers' memory cannot be "
        "read from here. Who looked them up is `audit find`.",
    )
    _identifier_arguments(access, identifiers)

    audit = commands.add_parser("audit", help="search the audit log (PERSON_ENRICH_AUDIT_LOG)")
    audit_actions = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    find = audit_actions.add_parser(
        "find",
        help="who looked these people up, when, with which tool, endpoint and fields, at what cost",
        description="Search the audit log and its rotated files (.1, .2.gz, -DATE.gz) for records about these "
        "people, by their salted hashes. Exits 0 when something was found, 1 when nothing was.",
    )
    _identifier_arguments(find, "a profile URL or an email address")
    find.add_argument("--log", metavar="PATH", help="the audit log to search (default: PERSON_ENRICH_AUDIT_LOG)")
    find.add_argument("--json", action="store_true", help="print the matching records as JSON lines")


def _subjects(args: argparse.Namespace) -> list[Subject]:
    """The identifiers given, parsed.

    Raises:
        ConfigurationError: naming the position of the first one that is not an identifier.
    """
    raw: list[str] = list(args.identifiers)
    if args.from_file:
        source = sys.stdin if args.from_file == "-" else Path(args.from_file).open(encoding="utf-8")  # noqa: SIM115
        with source:
            raw.extend(line.strip() for line in source if line.strip() and not line.lstrip().startswith("#"))
    if not raw:
        raise ConfigurationError("give at least one identifier (or --from FILE)")
    subjects: list[Subject] = []
    for position, value in enumerate(raw, start=1):
        try:
            subjects.append(parse_subject(value))
        except IdentifierRejected as exc:
            raise ConfigurationError(f"identifier {position}: {exc}") from None
    return subjects


def _suppression_file(settings: Settings) -> Path:
    if not settings.suppression_file:
        raise ConfigurationError(
            f"{SUPPRESSION_SETTING} is not set: name the opt-out file (or pass --suppression-file PATH)"
        )
    return Path(settings.suppression_file)


def _comment(subject: Subject, why: str) -> str:
    return f"{subject.kind} {why} {datetime.now(UTC).date().isoformat()}"


def _suppress(args: argparse.Namespace, settings: Settings) -> int:
    path = _suppression_file(settings)
    subjects = _subjects(args)
    out = sys.stdout
    if args.suppress_command == "add":
        added, present = add_entries(path, [(s.hash, _comment(s, "added")) for s in subjects])
        out.write(
            f"opt-out list {path}: {added} added, {present} already there. Running servers re-read it within "
            f"{settings.housekeeping_seconds:.0f} s and erase these people from their caches.\n"
        )
        return 0
    if args.suppress_command == "remove":
        removed = remove_entries(path, {s.hash for s in subjects})
        out.write(f"opt-out list {path}: {removed} removed.\n")
        return 0
    try:
        held = parse_suppression(path.read_text(encoding="utf-8"), source=str(path))
    except OSError as exc:
        raise ConfigurationError(f"{SUPPRESSION_SETTING}: cannot read {path}: {exc.strerror}") from None
    for subject in subjects:
        if subject.hash in held:
            verdict = "suppressed"
        elif subject.kind == "email" and not held.isdisjoint(email_hashes(subject.value)):
            verdict = "suppressed (by its email domain)"
        else:
            verdict = "not suppressed"
        out.write(f"{subject.value}: {verdict}\n")
    return 0


async def _erase(store: StateStore, hashes: set[str], settings: Settings, dry_run: bool) -> Erased:
    ttl, negative = settings.cache_ttl_seconds, settings.negative_cache_ttl_seconds
    cache = ProfileCache(store, scope="", ttl_seconds=ttl, negative_ttl_seconds=negative)
    try:
        return await cache.erase(hashes, dry_run=dry_run)
    finally:
        await store.aclose()


async def _post(settings: Settings, hashes: set[str]) -> None:
    store = open_store(settings.state_url)
    try:
        keep = max(settings.cache_ttl_seconds, settings.negative_cache_ttl_seconds, PAGE_TTL_SECONDS)
        await post_erasure(store, hashes, keep_seconds=keep + settings.housekeeping_seconds)
    finally:
        await store.aclose()


async def _about(store: StateStore, hashes: set[str], settings: Settings) -> list[tuple[str, dict[str, Any]]]:
    ttl, negative = settings.cache_ttl_seconds, settings.negative_cache_ttl_seconds
    cache = ProfileCache(store, scope="", ttl_seconds=ttl, negative_ttl_seconds=negative)
    try:
        return await cache.about(hashes)
    finally:
        await store.aclose()


def _persistent_cache_url(settings: Settings) -> str | None:
    """The URL of the store the profile cache lives in, when a command can open it (not process memory)."""
    url = settings.state_url if check_cache_url(settings.cache_url) == SHARED_CACHE else settings.cache_url
    return url if check_store_url(url) != "memory" else None


def _access(args: argparse.Namespace, settings: Settings) -> int:
    subjects = _subjects(args)
    url = _persistent_cache_url(settings)
    if url is None:
        sys.stderr.write(
            "person-enrich-mcp: the profile cache is in the memory of each running server (PERSON_ENRICH_CACHE_URL); "
            f"it holds what a look-up returned for at most {settings.cache_ttl_seconds:.0f} s and cannot be read from "
            "here. Who looked these people up, when and for which fields: `person-enrich-mcp audit find`.\n"
        )
        return 1
    entries = anyio.run(_about, open_store(url), {s.hash for s in subjects}, settings)
    for kind, value in entries:
        value.pop("subj", None)  # hashes of identifiers, not data
        sys.stdout.write(json.dumps({"entry": kind, **value}, ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stderr.write(f"{len(entries)} cached entries about these people in {describe_store(url)}.\n")
    return 0


def _forget(args: argparse.Namespace, settings: Settings) -> int:
    subjects = _subjects(args)
    hashes = {s.hash for s in subjects}
    out = sys.stdout
    state_kind = check_store_url(settings.state_url)
    reached = False
    direct_url = _persistent_cache_url(settings)
    if direct_url is not None:
        erased = anyio.run(_erase, open_store(direct_url), hashes, settings, bool(args.dry_run))
        verb = "would remove" if args.dry_run else "removed"
        out.write(
            f"{verb} {erased.total} cached entries ({erased.profiles} look-ups, {erased.pages} search pages) "
            f"from {describe_store(direct_url)}.\n"
        )
        reached = True
    if args.dry_run:
        return 0
    if state_kind != "memory" and settings.cache_ttl_seconds > 0:
        anyio.run(_post, settings, hashes)
        out.write(
            f"posted an erasure request to {describe_store(settings.state_url)}: running servers that share it "
            f"remove these people from their own caches within {settings.housekeeping_seconds:.0f} s.\n"
        )
        reached = True
    if args.suppress:
        path = _suppression_file(settings)
        added, present = add_entries(path, [(s.hash, _comment(s, "forgotten")) for s in subjects])
        out.write(
            f"opt-out list {path}: {added} added, {present} already there; running servers re-read it within "
            f"{settings.housekeeping_seconds:.0f} s, erase these people from their caches and never look them up "
            "again.\n"
        )
        reached = True
    if not reached:
        sys.stderr.write(
            "person-enrich-mcp: nothing was erased: the profile cache is in the memory of each running server "
            "(PERSON_ENRICH_CACHE_URL=memory://) and this command shares no state store with them "
            "(PERSON_ENRICH_STATE_URL=memory://). Run it again with --suppress (servers erase suppressed people "
            "when they re-read the opt-out list), or restart the servers.\n"
        )
        return 1
    return 0


def _describe_record(record: dict[str, Any]) -> str:
    listed: Any = record.get("fields") or []
    fields = ",".join(str(f) for f in cast(list[Any], listed))
    return (
        f"{record.get('at')}  {record.get('principal') or '-'}  {record.get('session')}  {record.get('tool')}  "
        f"{record.get('endpoint')}  identifiers={record.get('identifiers')}  fields={fields or '-'}  "
        f"estimated={record.get('estimated')}  charged={record.get('charged')}  cache_hits={record.get('cache_hits')}"
        f"  {record.get('outcome')}  call={record.get('call')}"
    )


def _summary(found: FindResult) -> str:
    records = found.records
    if not records:
        return f"no records about these people in {found.scanned} records searched."
    calls = {str(r.get("call")) for r in records}
    principals = sorted({str(r.get("principal") or "-") for r in records})
    charged = sum((Decimal(str(r.get("charged") or "0")) for r in records), Decimal(0))
    return (
        f"{len(records)} records in {len(calls)} calls by {', '.join(principals)}, from {records[0].get('at')} to "
        f"{records[-1].get('at')}; {charged:.2f} credits charged by these requests."
    )


def _audit_find(args: argparse.Namespace, settings: Settings) -> int:
    log = args.log or settings.audit_log
    if not log or log == STDERR:
        raise ConfigurationError(
            "name the audit log with --log PATH (or PERSON_ENRICH_AUDIT_LOG); a stderr audit log must be captured "
            "to a file first"
        )
    subjects = _subjects(args)
    if any(s.kind == "domain" for s in subjects):
        raise ConfigurationError("audit find takes profile URLs and email addresses, not @domains")
    salt = read_salt(salt_path_for(str(log), settings.audit_salt_file), create=False)
    files = log_files(Path(log))
    if not files:
        raise ConfigurationError(f"no audit log at {log}")
    found = find_records(files, Pseudonyms(salt), subjects)
    out = sys.stdout
    for record in found.records:
        out.write((json.dumps(record, separators=(",", ":")) if args.json else _describe_record(record)) + "\n")
    if not args.json:
        out.write(_summary(found) + "\n")
    if found.other_key:
        sys.stderr.write(
            f"note: {found.other_key} records were written with another salt and cannot be searched with this one.\n"
        )
    return 0 if found.records else 1


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one of `COMMANDS`.

    Raises:
        ConfigurationError: for bad identifiers, missing files or settings (printed as one sentence).
    """
    if args.command == "suppress":
        return _suppress(args, settings)
    if args.command == "forget":
        return _forget(args, settings)
    if args.command == "access":
        return _access(args, settings)
    return _audit_find(args, settings)
