"""The privacy building blocks on their own: subject hashes, the opt-out file (parsing, fail-closed reloads,
atomic writers), the field policy, and the audit log (salt, pseudonyms, rotation, search)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from person_enrich_mcp.budget import Owner
from person_enrich_mcp.errors import ConfigurationError, FieldDeniedError, PrivacyUnavailableError
from person_enrich_mcp.fields import DEFAULT_SELECTION, FieldSelection, parse_fields
from person_enrich_mcp.identifiers import IdentifierRejected
from person_enrich_mcp.privacy.audit import (
    AuditLog,
    Pseudonyms,
    find_records,
    log_files,
    open_audit,
    read_salt,
    salt_path_for,
)
from person_enrich_mcp.privacy.guard import OptOuts
from person_enrich_mcp.privacy.policy import FieldPolicy
from person_enrich_mcp.privacy.subjects import (
    Subject,
    email_hashes,
    identifier_hashes,
    parse_subject,
    person_hashes,
    subject_hash,
)
from person_enrich_mcp.privacy.suppression import SuppressionList, add_entries, parse_suppression, remove_entries

JANE_URL = "https://www.linkedin.com/in/jane-doe-1234"
JANE_EMAIL = "jane.doe@eu.acme-widgets.example"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- subjects ----------------------------------------------------------------------------------------------------


def test_a_subject_hash_is_the_documented_sha256_of_kind_and_normalised_value() -> None:
    assert parse_subject("HTTP://linkedin.com/in/Jane-Doe-1234/?trk=x").hash == _sha(f"url:{JANE_URL}")
    assert parse_subject("  Jane.Doe@EU.Acme-Widgets.example ").hash == _sha(f"email:{JANE_EMAIL}")
    assert parse_subject("@Acme-Widgets.example").hash == _sha("domain:@acme-widgets.example")
    assert parse_subject("me@gmail.com") == Subject("email", "me@gmail.com")  # personal mailboxes can opt out too


@pytest.mark.parametrize("raw", ["@", "@nodot", "not an identifier", "https://evil.example/in/jane", "a@b"])
def test_what_is_not_an_identifier_is_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(IdentifierRejected):
        parse_subject(raw)


def test_an_email_is_covered_by_its_domain_and_every_parent_domain_but_not_the_tld() -> None:
    hashes = email_hashes(JANE_EMAIL)
    assert hashes == {
        _sha(f"email:{JANE_EMAIL}"),
        _sha("domain:@eu.acme-widgets.example"),
        _sha("domain:@acme-widgets.example"),
    }
    assert identifier_hashes(JANE_URL) == {_sha(f"url:{JANE_URL}")}


def test_a_persons_hashes_cover_their_url_and_every_email_anywhere_in_their_data() -> None:
    data: dict[str, Any] = {
        "social_handles": {"professional_network_identifier": {"profile_url": "linkedin.com/in/JANE-doe-1234"}},
        "contact": {
            "business_emails": [{"email": JANE_EMAIL, "status": "verified"}],
            "personal_emails": [{"email": "Jane@Mail.example"}],
        },
        "dev_platform_profiles": [{"email": "jd@code.example", "bio": "write to me at not-an-email@"}],
    }
    found = person_hashes(data)
    assert subject_hash("url", JANE_URL) in found
    assert {_sha(f"email:{JANE_EMAIL}"), _sha("email:jane@mail.example"), _sha("email:jd@code.example")} <= found
    assert _sha("domain:@mail.example") in found


def test_opt_outs_name_identifiers_and_people_by_any_of_their_hashes(tmp_path: Path) -> None:
    path = tmp_path / "optout"
    add_entries(path, [(parse_subject("@acme-widgets.example").hash, ""), (parse_subject(JANE_URL).hash, "")])
    opt_outs = OptOuts(SuppressionList(path))

    assert opt_outs.names(JANE_EMAIL)  # by the parent domain
    assert opt_outs.names(JANE_URL)
    assert not opt_outs.names("bob@other.example")
    assert opt_outs.screen(["bob@other.example", JANE_EMAIL]) == (["bob@other.example"], [JANE_EMAIL])
    assert not opt_outs.allows({"contact": {"personal_emails": [{"email": "x@sub.acme-widgets.example"}]}})
    assert not opt_outs.allows({}, JANE_URL)
    assert opt_outs.allows({"contact": {"business_emails": [{"email": "bob@other.example"}]}})
    assert OptOuts().allows({"contact": {"business_emails": [{"email": JANE_EMAIL}]}})
    # A known URL that is not on the list lets the person through; one that is, does not.
    assert opt_outs.allows({}, None, "https://www.linkedin.com/in/someone-else-42")
    assert not opt_outs.allows({}, "https://www.linkedin.com/in/someone-else-42", JANE_URL)
    assert opt_outs.names_url(JANE_URL)
    assert not opt_outs.names_url("https://www.linkedin.com/in/someone-else-42")


# --- the opt-out file --------------------------------------------------------------------------------------------


def test_the_file_holds_hashes_comments_and_blank_lines() -> None:
    digest = _sha("url:x")
    text = f"# opt-outs\n\n{digest}  # url added 2025-01-01\n{digest.upper()}\n"
    assert parse_suppression(text, source="f") == frozenset({digest})


def test_a_bad_line_is_named_by_number_without_echoing_it() -> None:
    with pytest.raises(ConfigurationError, match=r"f, line 2: expected one sha256") as caught:
        parse_suppression(f"{_sha('a')}\njane@acme.example\n", source="f")
    assert "jane" not in str(caught.value)


def test_a_missing_file_stops_the_server_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="PERSON_ENRICH_SUPPRESSION_FILE: cannot read"):
        SuppressionList(tmp_path / "absent")


def test_the_list_fails_closed_while_the_file_is_deleted_or_malformed_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "optout"
    add_entries(path, [(_sha("url:a"), "")])
    suppression = SuppressionList(path)
    assert suppression.require() == {_sha("url:a")}

    path.unlink()
    with pytest.raises(PrivacyUnavailableError, match="opt-out list cannot be read"):
        suppression.require()
    path.write_text("not a hash\n", encoding="utf-8")
    with pytest.raises(PrivacyUnavailableError):
        suppression.require()
    assert suppression.hashes == {_sha("url:a")}  # in-flight look-ups keep the last good list meanwhile

    path.write_text(_sha("url:b") + "\n", encoding="utf-8")
    assert suppression.require() == {_sha("url:b")}


def test_a_change_that_keeps_size_and_modification_time_is_still_seen(tmp_path: Path) -> None:
    path = tmp_path / "optout"
    path.write_text(_sha("url:a") + "\n", encoding="utf-8")
    before = path.stat()
    suppression = SuppressionList(path)

    path.write_text(_sha("url:b") + "\n", encoding="utf-8")  # same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the old modification time

    assert suppression.require() == {_sha("url:b")}


def test_writers_add_without_duplicates_and_remove_by_hash_atomically(tmp_path: Path) -> None:
    path = tmp_path / "lists" / "optout"
    assert add_entries(path, [(_sha("a"), "url added"), (_sha("b"), "")]) == (2, 0)
    assert add_entries(path, [(_sha("b"), ""), (_sha("c"), "")]) == (1, 1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert parse_suppression(path.read_text(encoding="utf-8"), source="f") == {_sha("a"), _sha("b"), _sha("c")}
    assert f"{_sha('a')}  # url added" in path.read_text(encoding="utf-8")

    assert remove_entries(path, {_sha("b"), _sha("z")}) == 1
    assert parse_suppression(path.read_text(encoding="utf-8"), source="f") == {_sha("a"), _sha("c")}
    assert [p.name for p in path.parent.iterdir()] == ["optout"]  # no temporary file left behind


def test_concurrent_writers_lose_no_entry(tmp_path: Path) -> None:
    path = tmp_path / "optout"
    threads = [
        threading.Thread(target=add_entries, args=(path, [(_sha(f"{n}:{i}"), "") for i in range(20)])) for n in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(parse_suppression(path.read_text(encoding="utf-8"), source="f")) == 160


def test_a_malformed_file_is_never_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "optout"
    path.write_text("oops\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="line 1"):
        add_entries(path, [(_sha("a"), "")])
    assert path.read_text(encoding="utf-8") == "oops\n"


# --- the field policy ----------------------------------------------------------------------------------------------


def test_an_unknown_denied_field_is_a_startup_error() -> None:
    with pytest.raises(ConfigurationError, match=r"PERSON_ENRICH_DENY_FIELDS: unknown field 'contact\.fax'"):
        FieldPolicy.of(("contact.fax",))


def test_asking_for_a_denied_tier_or_its_group_is_refused_with_what_may_be_asked_instead() -> None:
    policy = FieldPolicy.of(("contact.personal_emails", "contact.phone_numbers"))
    with pytest.raises(FieldDeniedError, match=r"forbids contact\.personal_emails \(PERSON_ENRICH_DENY_FIELDS\)"):
        policy.apply(parse_fields(["contact.personal_emails.email"]), explicit=True)
    with pytest.raises(FieldDeniedError) as caught:
        policy.apply(parse_fields(["basic_profile.name", "contact"]), explicit=True)
    message = str(caught.value)
    assert "contact.personal_emails, contact.phone_numbers" in message and "Nothing was sent or spent" in message
    assert "You may ask for contact.business_emails, contact.websites." in message
    allowed = parse_fields(["contact.business_emails"])
    assert policy.apply(allowed, explicit=True) == allowed


def test_the_default_selection_leaves_denied_paths_out_instead_of_failing() -> None:
    policy = FieldPolicy.of(("basic_profile.location",))
    applied = policy.apply(DEFAULT_SELECTION, explicit=False)
    assert "basic_profile.location.full_location" not in applied.paths
    assert "basic_profile.name" in applied.paths
    with pytest.raises(FieldDeniedError):
        FieldPolicy.of(("basic_profile", "experience", "social_handles")).apply(DEFAULT_SELECTION, explicit=False)


def test_a_work_email_look_up_needs_the_work_email_tier() -> None:
    policy = FieldPolicy.of(("contact",))
    with pytest.raises(FieldDeniedError, match="look-up by work email"):
        policy.apply(FieldSelection.of(["basic_profile.name"]), explicit=True, kind="email")
    assert policy.apply(FieldSelection.of(["basic_profile.name"]), explicit=True, kind="url").paths == (
        "basic_profile.name",
    )


# --- the audit log -------------------------------------------------------------------------------------------------


def test_the_salt_is_created_once_private_and_reused(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    salt_path = salt_path_for(str(log), None)
    assert salt_path == tmp_path / "audit.jsonl.salt"
    first = read_salt(salt_path, create=True)
    assert stat.S_IMODE(salt_path.stat().st_mode) == 0o600 and len(first) >= 32
    assert read_salt(salt_path, create=True) == first
    with pytest.raises(ConfigurationError, match="does not exist"):
        read_salt(tmp_path / "other.salt", create=False)


def test_a_stderr_audit_log_needs_a_salt_file() -> None:
    with pytest.raises(ConfigurationError, match="PERSON_ENRICH_AUDIT_LOG=stderr needs PERSON_ENRICH_AUDIT_SALT_FILE"):
        open_audit("stderr", None)


def test_pseudonyms_depend_on_the_salt_and_the_kind() -> None:
    one, two = Pseudonyms(b"a" * 64), Pseudonyms(b"b" * 64)
    assert one.of("url", JANE_URL) != two.of("url", JANE_URL)
    assert one.of("url", JANE_URL) != one.of("email", JANE_URL)
    assert len(one.of("url", JANE_URL)) == 32 and JANE_URL not in repr(one)


def _record(log: AuditLog, identifier: str, tool: str = "enrich_person_by_url") -> None:
    call = log.call(tool, Owner.legacy("alice", "secret-session-id").session, "alice")
    call.request(
        "enrich", "url", [identifier], ["basic_profile"], estimated=Decimal(1), charged=Decimal(1),
        unverified=Decimal(0), outcome="ok",
    )  # fmt: skip


def test_records_are_one_json_line_each_with_hashed_people_and_sessions(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = open_audit(str(path), None)
    assert isinstance(log, AuditLog)
    _record(log, JANE_URL)
    log.close()

    text = path.read_text(encoding="utf-8")
    (record,) = [json.loads(line) for line in text.splitlines()]
    assert JANE_URL not in text and "jane" not in text and "secret-session-id" not in text
    assert record["principal"] == "alice" and record["tool"] == "enrich_person_by_url"
    assert record["endpoint"] == "enrich" and record["identifiers"] == 1 and record["fields"] == ["basic_profile"]
    assert (record["estimated"], record["charged"], record["outcome"]) == ("1.00", "1.00", "ok")
    assert record["session"].startswith("http:alice:") and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_rotation_is_followed_and_find_reads_rotated_and_compressed_files(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = open_audit(str(path), None)
    assert isinstance(log, AuditLog)
    _record(log, JANE_URL, tool="first")
    path.rename(tmp_path / "audit.jsonl.1")  # logrotate's `create` rotation: rename, and the writer follows
    _record(log, "https://www.linkedin.com/in/someone-else", tool="second")
    _record(log, JANE_URL, tool="third")
    with (tmp_path / "audit.jsonl.1").open("rb") as plain, gzip.open(tmp_path / "audit.jsonl.2.gz", "wb") as packed:
        packed.write(plain.read())
    (tmp_path / "audit.jsonl.1").unlink()
    log.close()

    files = log_files(path)
    assert [f.name for f in files] == ["audit.jsonl.2.gz", "audit.jsonl"]
    salt = read_salt(salt_path_for(str(path), None), create=False)
    found = find_records(files, Pseudonyms(salt), [parse_subject(JANE_URL)])
    assert [r["tool"] for r in found.records] == ["first", "third"]
    assert found.scanned == 3 and found.other_key == 0
    other = find_records(files, Pseudonyms(b"x" * 64), [parse_subject(JANE_URL)])
    assert other.records == [] and other.other_key == 3


def test_an_unwritable_log_refuses_further_look_ups_until_it_is_writable(tmp_path: Path) -> None:
    directory = tmp_path / "logs"
    path = directory / "audit.jsonl"
    log = open_audit(str(path), str(tmp_path / "salt"))
    assert isinstance(log, AuditLog)
    log.require()
    path.unlink()
    directory.rmdir()
    directory.write_text("a file where the log's directory was", encoding="utf-8")  # the path cannot be created

    _record(log, JANE_URL)
    with pytest.raises(PrivacyUnavailableError, match="audit log cannot be written"):
        log.require()

    directory.unlink()
    _record(log, JANE_URL)
    log.require()
    log.close()
    assert len(path.read_text(encoding="utf-8").splitlines()) == 1


# --- where person data lives, and the operator's commands ------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected", "persistent"),
    [
        ({}, "cached in this process's memory only, for up to 86400 s", False),
        ({"cache_ttl_seconds": 0}, "person data is not cached (PERSON_ENRICH_CACHE_TTL=0)", False),
        ({"cache_url": "shared"}, "cached in this process's memory only", False),  # the state store is memory too
        ({"cache_url": "shared", "state_url": "sqlite:////var/lib/pe/state.db"}, "the state store sqlite:", True),
        ({"cache_url": "redis://user:s3cret@cache.internal:6380/2"}, "cached in redis://cache.internal:6380/2,", True),
    ],
)
def test_the_start_up_line_says_where_person_data_lives_without_credentials(
    overrides: dict[str, Any], expected: str, persistent: bool
) -> None:
    from person_enrich_mcp.privacy.setup import where_person_data_lives
    from person_enrich_mcp.settings import Settings

    sentence, stored = where_person_data_lives(Settings(**overrides))
    assert expected in sentence and stored is persistent and "s3cret" not in sentence


def test_suppress_writes_hashes_only_and_check_and_remove_use_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from person_enrich_mcp.cli import main

    path = tmp_path / "optout"
    requests = tmp_path / "requests.txt"
    requests.write_text(f"# from the DPO's inbox\n{JANE_EMAIL}\n\n@other-company.example\n", encoding="utf-8")
    flag = ["--suppression-file", str(path)]
    assert main([*flag, "suppress", "add", JANE_URL, "--from", str(requests)]) == 0
    assert "3 added, 0 already there" in capsys.readouterr().out
    text = path.read_text(encoding="utf-8")
    assert "jane" not in text and "other-company" not in text and len(text.splitlines()) == 3

    assert main([*flag, "suppress", "check", "x@sub.other-company.example", JANE_URL, "bob@else.example"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "x@sub.other-company.example: suppressed (by its email domain)",
        f"{JANE_URL}: suppressed",
        "bob@else.example: not suppressed",
    ]
    assert main([*flag, "suppress", "remove", JANE_URL.upper()]) == 0
    assert "1 removed" in capsys.readouterr().out
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["suppress", "add", JANE_URL], "PERSON_ENRICH_SUPPRESSION_FILE is not set"),
        (["--suppression-file", "f", "suppress", "add", JANE_URL, "not-an-identifier"], "identifier 2: "),
        (["--suppression-file", "f", "suppress", "add"], "give at least one identifier"),
        (["--audit-log", "a.jsonl", "audit", "find", "@acme.example"], "not @domains"),
        (["--audit-log", "stderr", "audit", "find", JANE_URL], "name the audit log with --log PATH"),
        (["--audit-log", "/nonexistent/a.jsonl", "audit", "find", JANE_URL], "AUDIT_SALT_FILE: /nonexistent"),
    ],
)
def test_the_commands_refuse_bad_input_with_one_sentence_and_no_api_key(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from person_enrich_mcp.cli import main

    monkeypatch.delenv("CRUSTDATA_API_KEY", raising=False)
    assert main(args) == 2
    error = capsys.readouterr().err
    assert error.startswith("person-enrich-mcp: ") and expected in error and error.count("\n") == 1
