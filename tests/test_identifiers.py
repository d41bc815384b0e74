"""Identifier hygiene: profile URLs and business emails are normalised or rejected one by one, locally."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from person_enrich_mcp.identifiers import (
    ECHO_LENGTH,
    MAX_IDENTIFIER_LENGTH,
    PERSONAL_MAIL_DOMAINS,
    PROFILE_URL_PREFIX,
    IdentifierProblem,
    IdentifierRejected,
    check_business_emails,
    check_profile_urls,
    normalise_business_email,
    normalise_profile_url,
)

CANONICAL = "https://www.linkedin.com/in/jane-doe"

# --- profile URLs: accepted spellings -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "https://www.linkedin.com/in/jane-doe",
        "http://www.linkedin.com/in/jane-doe",
        "www.linkedin.com/in/jane-doe",
        "linkedin.com/in/jane-doe",
        "https://linkedin.com/in/jane-doe",
        "https://uk.linkedin.com/in/jane-doe",
        "de.linkedin.com/in/jane-doe",
        "https://WWW.LINKEDIN.COM/in/jane-doe",
        "HTTPS://www.LinkedIn.com/in/jane-doe",
        "HTTP://WWW.LINKEDIN.COM/IN/JANE-DOE",
        "https://www.linkedin.com/in/Jane-Doe",
        "https://www.linkedin.com/in/jane-doe/",
        "https://www.linkedin.com/in/jane-doe//",
        "https://www.linkedin.com/in/jane-doe?originalSubdomain=uk",
        "https://www.linkedin.com/in/jane-doe/?utm_source=share&utm_medium=member_desktop",
        "https://www.linkedin.com/in/jane-doe#experience",
        "https://www.linkedin.com/in/jane-doe?a=b/c#d/e",
        "https://www.linkedin.com./in/jane-doe",
        "  https://www.linkedin.com/in/jane-doe  ",
        "https://www.linkedin.com/in/%6A%61%6E%65-doe",
    ],
)
def test_profile_url_variants_normalise_to_the_canonical_form(raw: str) -> None:
    assert normalise_profile_url(raw) == CANONICAL


def test_canonical_profile_url_has_https_www_host_and_no_trailing_slash() -> None:
    result = normalise_profile_url("http://fr.LinkedIn.com/in/Jean_Dupont-42/?trk=x#top")

    assert result == "https://www.linkedin.com/in/jean_dupont-42"
    assert not result.endswith("/")


def test_percent_encoded_and_unicode_slugs_normalise_to_the_same_identifier() -> None:
    encoded = normalise_profile_url("https://www.linkedin.com/in/J%C3%A9R%C3%B4me-Martin")
    unicode_form = normalise_profile_url("https://www.linkedin.com/in/jérôme-martin")
    lower_encoded = normalise_profile_url("linkedin.com/in/j%c3%a9r%c3%b4me-martin/")

    # Canonical: lower case, non-ASCII percent-encoded, as profile URLs are shared.
    assert encoded == unicode_form == lower_encoded == "https://www.linkedin.com/in/j%C3%A9r%C3%B4me-martin"


def test_non_latin_slugs_are_accepted() -> None:
    canonical = normalise_profile_url("https://www.linkedin.com/in/张伟-123")
    assert canonical == "https://www.linkedin.com/in/%E5%BC%A0%E4%BC%9F-123"
    assert normalise_profile_url(canonical) == canonical


# --- profile URLs: rejections --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason_fragment"),
    [
        ("https://www.example.com/in/jane-doe", "not a professional network profile URL"),
        ("https://linkedin.com.evil.com/in/jane-doe", "not a professional network profile URL"),
        ("https://evillinkedin.com/in/jane-doe", "not a professional network profile URL"),
        ("https://www.linkedin.co/in/jane-doe", "not a professional network profile URL"),
        ("https://sub.www.linkedin.com/in/jane-doe", "not a professional network profile URL"),
        ("//linkedin.com/in/jane-doe", "not a professional network profile URL"),
        ("https://[::1]/in/jane-doe", "not a professional network profile URL"),
        ("https://user:secret@www.linkedin.com/in/jane-doe", "credentials"),
        ("https://user@www.linkedin.com/in/jane-doe", "credentials"),
        ("https://www.linkedin.com@evil.com/in/jane-doe", "credentials"),
        ("https://www.linkedin.com%2F@evil.com/in/jane-doe", "credentials"),
        ("https://www.linkedin.com:443/in/jane-doe", "port"),
        ("https://www.linkedin.com:8080/in/jane-doe", "port"),
        ("https://www.linkedin.com:abc/in/jane-doe", "port"),
        ("javascript:alert(1)", "not an http(s) URL"),
        ("javascript://www.linkedin.com/in/jane-doe", "not an http(s) URL"),
        ("file:///etc/passwd", "not an http(s) URL"),
        ("ftp://www.linkedin.com/in/jane-doe", "not an http(s) URL"),
        ("data:text/html,hello", "not an http(s) URL"),
        ("mailto:jane@acme.com", "not an http(s) URL"),
        ("https://www.linkedin.com/pub/jane-doe/12/345/678", "legacy /pub/"),
        ("https://www.linkedin.com/PUB/jane-doe/1/2/3", "legacy /pub/"),
        ("https://www.linkedin.com/company/acme", "single /in/<slug> path"),
        ("https://www.linkedin.com/in/", "single /in/<slug> path"),
        ("https://www.linkedin.com/", "single /in/<slug> path"),
        ("https://www.linkedin.com/in/jane-doe/details/experience/", "single /in/<slug> path"),
        ("https://www.linkedin.com/jane-doe", "single /in/<slug> path"),
        ("https://www.linkedin.com/in/jane%2Fdoe", "slug"),
        ("https://www.linkedin.com/in/jane%20doe", "slug"),
        ("https://www.linkedin.com/in/%E2%80%8Bjane", "slug"),
        ("https://www.linkedin.com/in/jane%00doe", "slug"),
        ("https://www.linkedin.com/in/jane;doe", "slug"),
        ("https://www.linkedin.com/in/....", "slug"),
        ("https://www.linkedin.com/in/---", "slug"),
        ("https://www.linkedin.com/in/ab", "slug is too short (2 characters"),
        ("https://www.linkedin.com/in/" + "a" * 101, "slug is too long (101 characters"),
        ("", "empty"),
        ("   ", "empty"),
        ("https://www.linkedin.com/in/jane doe", "whitespace"),
        ("https://www.linkedin.com/in/jane\tdoe", "whitespace"),
        ("https://www.linkedin.com/in/jane\x00doe", "control"),
        ("https://www.linkedin.com/in/" + "a" * MAX_IDENTIFIER_LENGTH, f"longer than {MAX_IDENTIFIER_LENGTH}"),
    ],
)
def test_profile_url_rejections_say_why(raw: str, reason_fragment: str) -> None:
    with pytest.raises(IdentifierRejected) as caught:
        normalise_profile_url(raw)

    assert reason_fragment in str(caught.value)


def test_port_without_a_scheme_is_rejected() -> None:
    with pytest.raises(IdentifierRejected):
        normalise_profile_url("www.linkedin.com:443/in/jane-doe")


def test_profile_url_rejection_reasons_point_to_the_expected_form() -> None:
    with pytest.raises(IdentifierRejected) as caught:
        normalise_profile_url("https://twitter.com/janedoe")

    assert "https://www.linkedin.com/in/<slug>" in str(caught.value)


def test_identifier_rejected_is_a_value_error() -> None:
    assert issubclass(IdentifierRejected, ValueError)


@pytest.mark.parametrize("raw", ["https://www.linkedin.com/in/jane-doe%0A", "linkedin.com/in/jane-doe%0a/"])
def test_a_percent_encoded_newline_in_the_slug_is_rejected(raw: str) -> None:
    with pytest.raises(IdentifierRejected):
        normalise_profile_url(raw)


def test_a_double_encoded_slug_is_rejected_rather_than_given_an_unstable_canonical_form() -> None:
    with pytest.raises(IdentifierRejected):
        normalise_profile_url("https://www.linkedin.com/in/%2525abc")


def test_a_malformed_percent_escape_in_the_slug_is_rejected() -> None:
    with pytest.raises(IdentifierRejected):
        normalise_profile_url("https://www.linkedin.com/in/jane%zz")


@pytest.mark.parametrize(
    "raw", ["[", "https://[www.linkedin.com/in/jane-doe", "https://www.linkedin.com]/in/jane-doe", "http://[::1"]
)
def test_unbalanced_brackets_in_the_host_are_rejected_not_crashing(raw: str) -> None:
    with pytest.raises(IdentifierRejected):
        normalise_profile_url(raw)


def test_one_url_with_an_unbalanced_bracket_does_not_fail_the_whole_batch() -> None:
    batch = check_profile_urls(["https://www.linkedin.com/in/jane-doe", "https://[www.linkedin.com/in/x"])

    assert batch.normalised == [CANONICAL]
    assert len(batch.problems) == 1


# --- profile URLs: properties --------------------------------------------------------------------------------

_SLUGS = st.from_regex(r"[a-z0-9][a-z0-9\-]{1,60}[a-z0-9]", fullmatch=True)


@st.composite
def _url_spellings(draw: st.DrawFn) -> tuple[str, str]:
    slug = draw(_SLUGS)
    scheme = draw(st.sampled_from(["https://", "http://", "HTTPS://", ""]))
    host = draw(st.sampled_from(["www.linkedin.com", "linkedin.com", "uk.linkedin.com", "WWW.LinkedIn.COM"]))
    in_segment = draw(st.sampled_from(["in", "IN", "In"]))
    spelled_slug = "".join(c.upper() if draw(st.booleans()) else c for c in slug)
    trailing = draw(st.sampled_from(["", "/", "//"]))
    query = draw(st.sampled_from(["", "?utm_source=x", "?a=1&b=2"]))
    fragment = draw(st.sampled_from(["", "#top", "#a/b"]))
    return f"{scheme}{host}/{in_segment}/{spelled_slug}{trailing}{query}{fragment}", slug


@given(_url_spellings())
def test_any_accepted_spelling_normalises_to_prefix_plus_lower_case_slug(case: tuple[str, str]) -> None:
    raw, slug = case

    assert normalise_profile_url(raw) == PROFILE_URL_PREFIX + slug


@given(_url_spellings())
def test_profile_url_normalisation_is_idempotent(case: tuple[str, str]) -> None:
    once = normalise_profile_url(case[0])

    assert normalise_profile_url(once) == once


@given(st.text(max_size=400).filter(lambda s: "[" not in s and "]" not in s))
def test_arbitrary_text_is_either_rejected_or_a_single_in_slug_url(raw: str) -> None:
    try:
        result = normalise_profile_url(raw)
    except IdentifierRejected as exc:
        assert str(exc)
        return
    assert result.startswith(PROFILE_URL_PREFIX)
    slug = result.removeprefix(PROFILE_URL_PREFIX)
    assert slug
    assert not any(c in slug for c in "/?#@: ")
    assert slug == slug.lower()


@given(st.text(alphabet="linkedin.com/w:%@?#-_aé", max_size=60))
def test_url_like_text_is_either_rejected_or_a_single_in_slug_url(raw: str) -> None:
    try:
        result = normalise_profile_url(raw)
    except IdentifierRejected:
        return
    assert result.startswith(PROFILE_URL_PREFIX)
    assert "/" not in result.removeprefix(PROFILE_URL_PREFIX)


# --- profile URL batches ---------------------------------------------------------------------------------------


def test_duplicates_after_normalisation_are_sent_once_and_counted() -> None:
    batch = check_profile_urls(
        [
            "https://www.linkedin.com/in/jane-doe/",
            "linkedin.com/in/JANE-DOE",
            "https://www.linkedin.com/in/john-roe",
            "http://uk.linkedin.com/in/jane-doe?trk=1",
        ]
    )

    assert batch.normalised == ["https://www.linkedin.com/in/jane-doe", "https://www.linkedin.com/in/john-roe"]
    assert batch.duplicates == 2
    assert batch.problems == []


def test_accepted_maps_each_identifier_to_its_first_input_spelling() -> None:
    batch = check_profile_urls(["linkedin.com/in/Jane-Doe", "https://www.linkedin.com/in/jane-doe"])

    assert batch.accepted == {CANONICAL: "linkedin.com/in/Jane-Doe"}


def test_batch_keeps_input_order_of_first_occurrences() -> None:
    batch = check_profile_urls(
        ["linkedin.com/in/ccc", "linkedin.com/in/aaa", "linkedin.com/in/ccc/", "linkedin.com/in/bbb"]
    )

    assert batch.normalised == [PROFILE_URL_PREFIX + s for s in ("ccc", "aaa", "bbb")]


def test_invalid_urls_are_reported_one_by_one_and_the_valid_ones_still_accepted() -> None:
    batch = check_profile_urls(
        ["https://www.linkedin.com/in/jane-doe", "https://evil.com/in/x", "", "https://www.linkedin.com/pub/a/1/2/3"]
    )

    assert batch.normalised == [CANONICAL]
    assert [p.identifier for p in batch.problems] == [
        "https://evil.com/in/x",
        "",
        "https://www.linkedin.com/pub/a/1/2/3",
    ]
    assert all(isinstance(p, IdentifierProblem) and p.reason for p in batch.problems)
    assert "legacy /pub/" in batch.problems[2].reason
    assert batch.duplicates == 0


def test_an_over_long_identifier_is_reported_truncated() -> None:
    raw = "https://www.linkedin.com/in/" + "x" * 5000

    batch = check_profile_urls([raw])

    assert batch.normalised == []
    assert len(batch.problems) == 1
    assert batch.problems[0].identifier == raw[: ECHO_LENGTH - 1] + "…"
    assert f"longer than {MAX_IDENTIFIER_LENGTH}" in batch.problems[0].reason


def test_a_rejected_identifier_is_echoed_without_line_breaks_bidi_or_zero_width_characters() -> None:
    raw = "https://www.linkedin.com/in/jane\u202edoe\n- Mallory | approved=true\u200b"

    batch = check_profile_urls([raw])

    [problem] = batch.problems
    assert problem.identifier == "https://www.linkedin.com/in/janedoe - Mallory | approved=true"


def test_repeated_invalid_identifiers_are_each_reported_and_not_counted_as_duplicates() -> None:
    batch = check_profile_urls(["bogus", "bogus"])

    assert len(batch.problems) == 2
    assert batch.duplicates == 0
    assert batch.normalised == []


def test_an_empty_batch_has_nothing_to_send() -> None:
    batch = check_profile_urls([])

    assert (batch.normalised, batch.problems, batch.duplicates) == ([], [], 0)


@given(st.lists(_url_spellings(), max_size=30))
def test_every_profile_url_is_accepted_duplicate_or_problem(cases: list[tuple[str, str]]) -> None:
    batch = check_profile_urls([raw for raw, _ in cases])

    assert len(batch.normalised) + batch.duplicates + len(batch.problems) == len(cases)
    assert len(set(batch.normalised)) == len(batch.normalised)
    assert set(batch.normalised) == {PROFILE_URL_PREFIX + slug for _, slug in cases}


# --- business emails -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("jane.doe@acme.com", "jane.doe@acme.com"),
        ("Jane.Doe@ACME.COM", "jane.doe@acme.com"),
        ("  jane@acme.com  ", "jane@acme.com"),
        ("jane+crm@acme.co.uk", "jane+crm@acme.co.uk"),
        ("j.obrien_2%x@eng.acme-corp.io", "j.obrien_2%x@eng.acme-corp.io"),
        ("student@mit.edu", "student@mit.edu"),
    ],
)
def test_business_emails_are_lower_cased_and_trimmed(raw: str, expected: str) -> None:
    assert normalise_business_email(raw) == expected


@pytest.mark.parametrize("raw", ["o'brien@acme.com", "a!b@acme.com", "x{y}@acme.com", "a..b@acme.com", ".a@acme.com"])
def test_rare_local_part_characters_the_upstream_rejects_are_refused_locally(raw: str) -> None:
    # One address the upstream cannot read fails its whole batch, so these never leave the server.
    with pytest.raises(IdentifierRejected, match="not a valid email"):
        normalise_business_email(raw)


@pytest.mark.parametrize(
    "raw",
    ["Jane Doe <jane@acme.com>", "<jane@acme.com>", '"Jane" <jane@acme.com>', "jane@acme.com>"],
)
def test_display_name_forms_are_rejected_with_the_bare_address_hint(raw: str) -> None:
    with pytest.raises(IdentifierRejected, match="bare address"):
        normalise_business_email(raw)


@pytest.mark.parametrize("raw", ["mailto:jane@acme.com", "MAILTO:jane@acme.com", "MailTo:Jane@Acme.com"])
def test_mailto_prefix_is_rejected(raw: str) -> None:
    with pytest.raises(IdentifierRejected, match="mailto"):
        normalise_business_email(raw)


@pytest.mark.parametrize("domain", sorted(PERSONAL_MAIL_DOMAINS))
def test_every_personal_mailbox_domain_is_rejected_before_spending(domain: str) -> None:
    with pytest.raises(IdentifierRejected) as caught:
        normalise_business_email(f"jane@{domain}")

    message = str(caught.value)
    assert domain in message
    assert "personal mailbox" in message
    assert "no credits spent" in message


@pytest.mark.parametrize("raw", ["Jane@GMAIL.COM", "jane@Hotmail.Co.Uk", "JANE@PROTON.ME"])
def test_personal_mailbox_domains_are_recognised_in_any_case(raw: str) -> None:
    with pytest.raises(IdentifierRejected, match="personal mailbox"):
        normalise_business_email(raw)


def test_a_company_domain_that_merely_contains_a_personal_one_is_accepted() -> None:
    assert normalise_business_email("jane@gmail.com.acme.io") == "jane@gmail.com.acme.io"
    assert normalise_business_email("jane@notgmail.com") == "jane@notgmail.com"


@pytest.mark.parametrize(
    "raw",
    [
        "jane",
        "jane@",
        "@acme.com",
        "jane@acme",
        "jane@@acme.com",
        "jane@acme..com",
        "jane..doe@acme.com",
        ".jane@acme.com",
        "jane@acme.com.",
        "jane@-acme.com",
        "jane@acme.c",
        "jane@acme.123",
        "jane@[127.0.0.1]",
        '"jane"@acme.com',
        "jane@acme.com,john@acme.com",
    ],
)
def test_malformed_addresses_are_rejected(raw: str) -> None:
    with pytest.raises(IdentifierRejected, match="not a valid email address"):
        normalise_business_email(raw)


@pytest.mark.parametrize("raw", ["jane doe@acme.com", "jane@acme.com\njohn@acme.com", ""])
def test_emails_with_inner_whitespace_or_empty_are_rejected(raw: str) -> None:
    with pytest.raises(IdentifierRejected, match=r"whitespace|empty"):
        normalise_business_email(raw)


def test_an_address_over_254_characters_is_rejected() -> None:
    raw = "a" * 60 + "@" + ".".join(["b" * 60] * 3) + ".example.com"
    assert 254 < len(raw) <= MAX_IDENTIFIER_LENGTH

    with pytest.raises(IdentifierRejected, match="not a valid email address"):
        normalise_business_email(raw)


def test_an_address_over_the_identifier_limit_is_rejected_as_too_long() -> None:
    with pytest.raises(IdentifierRejected, match=f"longer than {MAX_IDENTIFIER_LENGTH}"):
        normalise_business_email("a" * 400 + "@acme.com")


def test_email_duplicates_after_lower_casing_are_sent_once() -> None:
    batch = check_business_emails(["Jane@Acme.com", "jane@acme.com", " JANE@ACME.COM ", "john@acme.com"])

    assert batch.normalised == ["jane@acme.com", "john@acme.com"]
    assert batch.accepted["jane@acme.com"] == "Jane@Acme.com"
    assert batch.duplicates == 2


def test_email_batch_reports_personal_and_malformed_addresses_per_identifier() -> None:
    batch = check_business_emails(["jane@acme.com", "jane@gmail.com", "Jane <jane@acme.com>", "nope"])

    assert batch.normalised == ["jane@acme.com"]
    reasons = {p.identifier: p.reason for p in batch.problems}
    assert set(reasons) == {"jane@gmail.com", "Jane <jane@acme.com>", "nope"}
    assert "personal mailbox" in reasons["jane@gmail.com"]
    assert "bare address" in reasons["Jane <jane@acme.com>"]
    assert "not a valid email address" in reasons["nope"]


_LOCAL = st.from_regex(r"[a-z0-9]{1,20}(\.[a-z0-9+_-]{1,10}){0,2}", fullmatch=True)
_DOMAIN = st.from_regex(r"([a-z0-9]{1,20}\.){1,3}(com|io|org|de|dev)", fullmatch=True).filter(
    lambda d: d not in PERSONAL_MAIL_DOMAINS
)


@given(_LOCAL, _DOMAIN, st.booleans())
def test_valid_business_emails_normalise_to_lower_case_and_are_idempotent(local: str, domain: str, upper: bool) -> None:
    raw = f"{local}@{domain}"
    spelled = raw.upper() if upper else raw

    result = normalise_business_email(spelled)

    assert result == raw
    assert normalise_business_email(result) == result


@given(st.text(max_size=300))
def test_arbitrary_text_is_either_rejected_or_a_lower_case_address(raw: str) -> None:
    try:
        result = normalise_business_email(raw)
    except IdentifierRejected:
        return
    assert result == result.lower()
    assert result.count("@") == 1
    assert result.rsplit("@", 1)[1] not in PERSONAL_MAIL_DOMAINS


# --- exact reasons and boundaries (each rejection path says its own reason; each limit is inclusive) ----------------

HOW_TO = "expected https://www.linkedin.com/in/<slug>"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty identifier"),
        ("https://www.linkedin.com/in/jane doe", "contains whitespace or control characters"),
        ("https://www.linkedin.com/in/" + "a" * 293, f"longer than {MAX_IDENTIFIER_LENGTH} characters"),
        ("www.linkedin.com:443/in/jane-doe", f"not an http(s) URL; {HOW_TO}"),
        ("ftp://www.linkedin.com/in/jane-doe", f"not an http(s) URL; {HOW_TO}"),
        ("https://[www.linkedin.com/in/jane-doe", f"not a valid URL; {HOW_TO}"),
        ("https://:secret@www.linkedin.com/in/jane-doe", "URL must not contain credentials"),
        ("https://www.linkedin.com:abc/in/jane-doe", "URL must not name a port"),
        ("https://www.example.com/in/jane-doe", f"not a professional network profile URL; {HOW_TO}"),
        ("https://www.linkedin.com/pub/jane/1/2/3", "legacy /pub/ URL; open the profile and use its /in/<slug> URL"),
        # A colon after the host is part of the path, not a scheme: the path, then the slug, are what is wrong.
        ("linkedin.com/in:x/jane-doe", "expected a single /in/<slug> path, e.g. https://www.linkedin.com/in/jane-doe"),
        ("linkedin.com/in/jane:doe", "the profile slug has characters a profile URL cannot have"),
        ("https://www.linkedin.com/in/%2525abc", "the profile slug has characters a profile URL cannot have"),
        # Invalid UTF-8 in an escape is a bad slug like any other, never an exception that fails the batch.
        ("https://www.linkedin.com/in/jane%E9doe", "the profile slug has characters a profile URL cannot have"),
        (
            "https://www.linkedin.com/in/ab",
            "the profile slug is too short (2 characters; profile slugs have 3 to 100): check that the URL was "
            "copied whole",
        ),
    ],
)
def test_each_profile_url_rejection_gives_its_own_exact_reason(raw: str, reason: str) -> None:
    with pytest.raises(IdentifierRejected) as caught:
        normalise_profile_url(raw)

    assert str(caught.value) == reason


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("<jane@acme.com", "pass the bare address (jane@company.com), without a display name or angle brackets"),
        ("jane@acme.com>", "pass the bare address (jane@company.com), without a display name or angle brackets"),
        ("mailto:jane@acme.com", "pass the bare address, without mailto:"),
        ("jane@@acme.com", "not a valid email address"),
        (
            "Jane@GMail.com",
            "gmail.com is a personal mailbox; business_emails only resolves work addresses, so this look-up would "
            "always miss and was not sent (no credits spent)",
        ),
    ],
)
def test_each_business_email_rejection_gives_its_own_exact_reason(raw: str, reason: str) -> None:
    with pytest.raises(IdentifierRejected) as caught:
        normalise_business_email(raw)

    assert str(caught.value) == reason


def test_an_identifier_of_exactly_the_length_limit_is_judged_on_its_content_not_refused_as_too_long() -> None:
    raw = "https://www.linkedin.com/in/" + "a" * (MAX_IDENTIFIER_LENGTH - 28)
    assert len(raw) == MAX_IDENTIFIER_LENGTH

    with pytest.raises(IdentifierRejected) as caught:
        normalise_profile_url(raw)

    assert str(caught.value).startswith("the profile slug is too long (292 characters")


@pytest.mark.parametrize("length", [3, 100])
def test_slugs_of_exactly_the_shortest_and_longest_length_are_accepted(length: int) -> None:
    assert normalise_profile_url("https://www.linkedin.com/in/" + "a" * length) == PROFILE_URL_PREFIX + "a" * length


def test_a_slug_of_one_more_than_the_longest_length_is_refused() -> None:
    with pytest.raises(IdentifierRejected, match=r"too long \(101 characters"):
        normalise_profile_url("https://www.linkedin.com/in/" + "a" * 101)


def test_a_slug_of_capital_letters_that_dots_and_dashes_do_not_surround_is_accepted_in_lower_case() -> None:
    assert normalise_profile_url("https://www.linkedin.com/in/XXX") == PROFILE_URL_PREFIX + "xxx"
    assert normalise_profile_url("https://www.linkedin.com/in/.X-") == PROFILE_URL_PREFIX + ".x-"


def _address(length: int) -> str:
    domain = "b" * 63 + "." + "c" * 63 + ".com"
    return "a" * (length - len(domain) - 1) + "@" + domain


def test_an_address_of_exactly_254_characters_is_accepted_and_one_of_255_is_not() -> None:
    assert normalise_business_email(_address(254)) == _address(254)
    with pytest.raises(IdentifierRejected, match="not a valid email address"):
        normalise_business_email(_address(255))


def test_a_url_with_an_invalid_escape_is_reported_and_the_rest_of_the_batch_still_accepted() -> None:
    batch = check_profile_urls(["https://www.linkedin.com/in/jane%E9doe", CANONICAL])

    assert batch.normalised == [CANONICAL]
    assert [p.reason for p in batch.problems] == ["the profile slug has characters a profile URL cannot have"]


def test_a_rejected_identifier_of_exactly_the_echo_length_is_echoed_whole() -> None:
    raw = "https://www.example.com/in/" + "a" * (ECHO_LENGTH - 27)
    assert len(raw) == ECHO_LENGTH

    assert check_profile_urls([raw]).problems[0].identifier == raw
