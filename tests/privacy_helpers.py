"""Looking for person data where it must not be: in SQLite files (every byte, write-ahead log included) and in a
Redis keyspace (every key and every value, whatever its type)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import redis

from person_enrich_mcp.sandbox import SandboxServer
from person_enrich_mcp.sandbox.dataset import Person


def sqlite_bytes(path: Path) -> bytes:
    """The database file and its write-ahead log and shared-memory index, concatenated."""
    found = b""
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        if candidate.exists():
            found += candidate.read_bytes()
    return found


def sqlite_traces(path: Path, canaries: Iterable[str]) -> list[str]:
    """The canaries that appear anywhere in the SQLite files (as UTF-8 bytes, case-insensitively)."""
    raw = sqlite_bytes(path).lower()
    return [c for c in canaries if c.lower().encode() in raw]


def redis_dump(url: str) -> str:
    """Every key and value in a Redis database as text (type by type, so no value hides in a compressed dump)."""
    client = redis.Redis.from_url(url, decode_responses=True)  # pyright: ignore[reportUnknownMemberType]
    parts: list[str] = []
    try:
        keys = cast(Iterable[str], client.scan_iter(match="*", count=1000))  # pyright: ignore[reportUnknownMemberType]
        for key in keys:
            kind = cast(str, client.type(key))
            value: Any
            if kind == "string":
                value = client.get(key)
            elif kind == "hash":
                value = client.hgetall(key)
            elif kind == "list":
                value = client.lrange(key, 0, -1)
            elif kind == "set":
                value = client.smembers(key)
            elif kind == "zset":
                value = client.zrange(key, 0, -1, withscores=True)  # pyright: ignore[reportUnknownMemberType]
            else:
                value = f"<{kind}>"
            parts.append(f"{key}\t{value}")
    finally:
        client.close()
    return "\n".join(parts)


def redis_traces(url: str, canaries: Iterable[str]) -> list[str]:
    """The canaries that appear in any key or value (case-insensitively)."""
    dump = redis_dump(url).lower()
    return [c for c in canaries if c.lower() in dump]


CONTACT_FIELDS = ["basic_profile.name", "contact.business_emails", "contact.personal_emails"]


def people_with_contact_data(sandbox: SandboxServer, offset: int, n: int) -> list[Person]:
    """People with work and personal emails, a unique name, and a work email that resolves to them alone."""
    dataset = sandbox.state.dataset
    names: dict[str, int] = {}
    for person in dataset.people:
        name = str(person.data["basic_profile"]["name"])
        names[name] = names.get(name, 0) + 1
    chosen = [
        p
        for p in dataset.searchable
        if p.business_emails
        and p.data["contact"]["personal_emails"]
        and names[str(p.data["basic_profile"]["name"])] == 1
        and len(dataset.email_candidates(p.business_emails[0])) == 1
    ]
    return chosen[offset : offset + n]


def canaries(person: Person) -> list[str]:
    """Values that identify one person: profile slug, name, every email (work and personal); everything but the
    slug is in what a look-up with `CONTACT_FIELDS` keeps."""
    contact = person.data["contact"]
    emails = [e["email"] for e in contact["business_emails"]] + [e["email"] for e in contact["personal_emails"]]
    return [person.slug, str(person.data["basic_profile"]["name"]), *emails]
