"""What a model needs to write a Person Search right the first time: field meanings, value sets, countries.

The upstream's own tables (`api.contract`) say which paths are filterable, sortable and autocompletable; this module
adds a line of meaning to each filterable path (grouped with shell-style braces where paths repeat), the closed
value sets, a name/ISO table of the countries a model is likely to name, and the nearest valid names for a typo.
The resource `person-enrich://search-fields` is built from it, and `tools/filters.py` checks filters against it.
"""

from __future__ import annotations

import difflib
import itertools
import re
from typing import Any, Final

from person_enrich_mcp.api.contract import (
    ISO3_COLUMNS,
    OPERATORS,
    PERSON_AUTOCOMPLETE_FIELDS,
    PERSON_FILTER_FIELDS,
    PERSON_SORTABLE_FIELDS,
)

SEARCH_FIELDS_RESOURCE_URI: Final = "person-enrich://search-fields"

ROLE_PREFIX: Final = "experience.employment_details"
_ROLE_SCOPES = ("", ".current", ".past")

# One line of meaning per role leaf; which of any-role / current / past each leaf has comes from the contract.
ROLE_LEAF_MEANINGS: Final[dict[str, str]] = {
    "title": 'job title, free text: (.) for words, e.g. "VP|Vice President"',
    "company_name": "employer name (filter on this; results show the employer as .current.name)",
    "name": "employer name",
    "company_id": "employer's company id (number)",
    "professional_network_id": "employer's professional-network id",
    "company_linkedin_profile_url": "employer's profile URL",
    "company_professional_network_profile_url": "employer's profile URL",
    "company_website_domain": "employer's web domain, e.g. acme.com",
    "company_website": "employer's website URL",
    "description": "role description, free text",
    "location": "role location, free text",
    "start_date": "role start (ISO date 2024-01-31; => and =<)",
    "end_date": "role end (ISO date)",
    "years_at_company_raw": "years in the role (number)",
    "seniority_level": "closed set: closed_values.seniority_level",
    "function_category": "closed set: closed_values.function_category",
    "employment_type": "e.g. Full-time, Part-time, Contract",
    "is_default": "true for the person's main role",
    "position_id": "id of the role",
    "business_email_verified": "true when the role has a verified work email",
    "company_headcount_latest": "employer headcount (number)",
    "company_headcount_range": "closed set: closed_values.company_headcount_range",
    "company_industries": "employer industries, e.g. Software Development (exact values: suggest_filter_values)",
    "company_professional_network_industry": "employer industry as on its network page",
    "company_type": "e.g. Privately Held, Public Company, Nonprofit",
    "company_status": "closed set: active, deleted",
    "company_headquarters_country": "employer HQ country as an ISO-3 code (USA, DEU, GBR), never a name",
    "company_hq_location": "employer HQ location, free text",
}

# Everything else, by brace pattern ("a.{b,c}" is "a.b" and "a.c"; "a{,.b}" is "a" and "a.b").
OTHER_MEANINGS: Final[dict[str, str]] = {
    "crustdata_person_id": "person id (number)",
    "basic_profile.{name,first_name,last_name}": "full, first and last name",
    "basic_profile.headline": "profile headline, free text",
    "basic_profile.summary": "about text, free text",
    "basic_profile.languages": "languages spoken, e.g. German",
    "basic_profile.last_updated": "profile last updated (ISO date)",
    "basic_profile.location{,.full_location}": 'where the person is, e.g. "Berlin, Germany"',
    "basic_profile.location.{city,state,continent}": "city, state or region, continent (full names)",
    "basic_profile.location.country": "country, full English name (Germany, United States), never a code",
    "basic_profile.normalized_title.{matched_title,department,sub_department}": "title mapped to a standard one",
    "professional_network.{connections,followers}": "connections, followers (numbers)",
    "professional_network.open_to_cards": "closed set: closed_values.open_to_cards",
    "professional_network.location{,.raw,.city,.state,.country,.continent}": "location on the network profile",
    "professional_network.metadata.last_scraped_source": "where the profile was last read from",
    "skills.professional_network_skills": "listed skills, e.g. Python",
    "education.schools.{school,degree,field_of_study}": "school, degree, field of study",
    "education.schools.location{,.city,.state,.country,.continent,.full_location,.raw}": "school location",
    "certifications.{name,issuing_organization,credential_id,credential_url}": "certification",
    "certifications.{issue_date,expiration_date}": "certification dates (ISO date)",
    "honors.title": "honor or award",
    "social_handles.twitter_handle": "X/Twitter handle",
    "recently_changed_jobs": "true when the last role ended within about 90 days",
    "years_of_experience_raw": "years of experience (number)",
    "years_of_experience": "years of experience as a label (unreliable: use years_of_experience_raw)",
    "metadata.{updated_at,last_scraped_source}": "record last updated (ISO date), its source",
    "dev_platform_profiles.{name,bio,company_text,website_url,location,location.raw}": "developer-platform profile",
    "dev_platform_profiles.{followers,following,public_repo_count,total_repos,total_stars,max_stars,median_stars}": (
        "developer-platform counts (numbers)"
    ),
    "dev_platform_profiles.{is_hireable,metadata.created_at,all_languages,all_topics}": (
        "hireable flag, account creation date, languages and topics across repositories"
    ),
    "dev_platform_profiles.repos.{full_name,owner,description,primary_language,topics,license_key}": "repository",
    "dev_platform_profiles.repos.{is_fork,archived,disabled,is_template,has_issues,has_projects,has_wiki}": (
        "repository flags (true/false)"
    ),
    "dev_platform_profiles.repos.{stars,forks_count,open_issues_count,size}": "repository counts (numbers)",
    "dev_platform_profiles.repos.{github_created_at,github_updated_at,github_pushed_at}": "repository dates",
    "assessment.authenticity.{tier,verdict}": "profile authenticity assessment",
}

# Closed value sets (the docs' table, as the reference transcribes it): `=` and `in` need one of these exactly.
CLOSED_VALUES: Final[dict[str, tuple[str, ...]]] = {
    "seniority_level": (
        "Entry Level", "Entry Level Manager", "Senior", "Director", "Owner / Partner", "CXO", "Vice President",
        "In Training", "Experienced Manager", "Strategic",
    ),
    "function_category": (
        "Engineering", "Sales", "Consulting", "Marketing", "Operations", "Finance", "Research",
        "Customer Success and Support", "Arts and Design", "Human Resources", "Legal", "Product Management",
    ),
    "company_headcount_range": (
        "myself only", "2-10", "11-50", "51-200", "201-500", "501-1000", "1001-5000", "5001-10000", "10001+",
    ),
    "company_status": ("active", "deleted"),
    "open_to_cards": ("CAREER_INTEREST", "HIRING_MANAGER", "VOLUNTEERING"),
}  # fmt: skip

# The usual shorthand for closed values, so the refusal can name the value meant.
CLOSED_VALUE_ALIASES: Final[dict[str, str]] = {
    "vp": "Vice President",
    "svp": "Vice President",
    "evp": "Vice President",
    "avp": "Vice President",
    "vice-president": "Vice President",
    "c-level": "CXO",
    "c-suite": "CXO",
    "chief": "CXO",
    "ceo": "CXO",
    "cto": "CXO",
    "cfo": "CXO",
    "coo": "CXO",
    "cxo": "CXO",
    "founder": "Owner / Partner",
    "owner": "Owner / Partner",
    "partner": "Owner / Partner",
    "head": "Director",
    "manager": "Experienced Manager",
    "intern": "In Training",
    "junior": "Entry Level",
    "entry": "Entry Level",
    "principal": "Strategic",
    "staff": "Strategic",
    "engineer": "Engineering",
    "eng": "Engineering",
    "software": "Engineering",
    "hr": "Human Resources",
    "product": "Product Management",
    "design": "Arts and Design",
    "support": "Customer Success and Support",
    "customer success": "Customer Success and Support",
}

# Countries a model is likely to name: English name, ISO 3166 alpha-2, alpha-3.
_COUNTRY_TABLE = """
United States US USA; United Kingdom GB GBR; Germany DE DEU; France FR FRA; Canada CA CAN; Mexico MX MEX;
Brazil BR BRA; Argentina AR ARG; Chile CL CHL; Colombia CO COL; Peru PE PER; Spain ES ESP; Portugal PT PRT;
Italy IT ITA; Netherlands NL NLD; Belgium BE BEL; Luxembourg LU LUX; Switzerland CH CHE; Austria AT AUT;
Ireland IE IRL; Denmark DK DNK; Norway NO NOR; Sweden SE SWE; Finland FI FIN; Iceland IS ISL; Poland PL POL;
Czechia CZ CZE; Slovakia SK SVK; Hungary HU HUN; Romania RO ROU; Bulgaria BG BGR; Greece GR GRC; Croatia HR HRV;
Serbia RS SRB; Slovenia SI SVN; Estonia EE EST; Latvia LV LVA; Lithuania LT LTU; Ukraine UA UKR; Russia RU RUS;
Turkey TR TUR; Israel IL ISR; United Arab Emirates AE ARE; Saudi Arabia SA SAU; Qatar QA QAT; Egypt EG EGY;
Morocco MA MAR; Nigeria NG NGA; Kenya KE KEN; Ghana GH GHA; South Africa ZA ZAF; Ethiopia ET ETH; India IN IND;
Pakistan PK PAK; Bangladesh BD BGD; Sri Lanka LK LKA; China CN CHN; Hong Kong HK HKG; Taiwan TW TWN; Japan JP JPN;
South Korea KR KOR; Singapore SG SGP; Malaysia MY MYS; Indonesia ID IDN; Thailand TH THA; Vietnam VN VNM;
Philippines PH PHL; Australia AU AUS; New Zealand NZ NZL; Cyprus CY CYP; Malta MT MLT
"""
_COUNTRY_ALIASES = {
    "usa": "United States",
    "us": "United States",
    "u.s.": "United States",
    "u.s.a.": "United States",
    "america": "United States",
    "united states of america": "United States",
    "uk": "United Kingdom",
    "u.k.": "United Kingdom",
    "great britain": "United Kingdom",
    "britain": "United Kingdom",
    "england": "United Kingdom",
    "scotland": "United Kingdom",
    "wales": "United Kingdom",
    "deutschland": "Germany",
    "holland": "Netherlands",
    "the netherlands": "Netherlands",
    "czech republic": "Czechia",
    "korea": "South Korea",
    "republic of korea": "South Korea",
    "uae": "United Arab Emirates",
    "turkiye": "Turkey",
    "türkiye": "Turkey",
    "russian federation": "Russia",
    "viet nam": "Vietnam",
}


def _countries() -> dict[str, tuple[str, str, str]]:
    """Lower-cased name, alias, ISO-2 and ISO-3 -> (name, ISO-2, ISO-3)."""
    rows: dict[str, tuple[str, str, str]] = {}
    for entry in _COUNTRY_TABLE.replace("\n", " ").split(";"):
        words = entry.split()
        name, iso2, iso3 = " ".join(words[:-2]), words[-2], words[-1]
        for key in (name, iso2, iso3):
            rows[key.lower()] = (name, iso2, iso3)
    for alias, name in _COUNTRY_ALIASES.items():
        rows[alias] = rows[name.lower()]
    return rows


COUNTRIES: Final = _countries()
# Columns that take a country's full English name (a code there silently matches no one).
COUNTRY_NAME_COLUMNS: Final = frozenset(
    p for p in PERSON_FILTER_FIELDS if p.endswith("location.country") and p not in ISO3_COLUMNS
)


def country(value: str) -> tuple[str, str, str] | None:
    """(name, ISO-2, ISO-3) of a country named, aliased or coded as in `value`, if it is in the table."""
    return COUNTRIES.get(value.strip().lower())


# --- the meaning table -------------------------------------------------------------------------------------------

_BRACES = re.compile(r"\{([^{}]*)\}")


def expand(pattern: str) -> list[str]:
    """Shell-style brace expansion: "a.{b,c}" -> ["a.b", "a.c"]; "a{,.b}" -> ["a", "a.b"] (the tables never nest)."""
    match = _BRACES.search(pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return list(itertools.chain.from_iterable(expand(head + alt + tail) for alt in match.group(1).split(",")))


def _role_pattern(leaf: str, filterable: frozenset[str]) -> str:
    scopes = [s for s in _ROLE_SCOPES if f"{ROLE_PREFIX}{s}.{leaf}" in filterable]
    if len(scopes) == 1:
        return f"{ROLE_PREFIX}{scopes[0]}.{leaf}"
    return f"{ROLE_PREFIX}{{{','.join(scopes)}}}.{leaf}"


def filter_meanings() -> dict[str, str]:
    """Every filterable path, as brace patterns with one line of meaning each (roles first, as most searches use)."""
    filterable = frozenset(PERSON_FILTER_FIELDS)
    roles = {_role_pattern(leaf, filterable): meaning for leaf, meaning in ROLE_LEAF_MEANINGS.items()}
    return {**roles, **OTHER_MEANINGS}


def _meaning_index() -> dict[str, str]:
    return {path: meaning for pattern, meaning in filter_meanings().items() for path in expand(pattern)}


FILTER_FIELD_MEANINGS: Final[dict[str, str]] = _meaning_index()


# --- nearest names -----------------------------------------------------------------------------------------------

# Names a model reads in results (or guesses) that are not filterable, and the filterable name that means the same.
# Looked up by the whole name, then by its last segment (so `experience.employment_details.current.industry` finds
# the industry field too).
RETURNED_NAME_TO_FILTER: Final[dict[str, str]] = {
    "basic_profile.current_title": f"{ROLE_PREFIX}.current.title",
    "current_title": f"{ROLE_PREFIX}.current.title",
    "title": f"{ROLE_PREFIX}.current.title",
    "job_title": f"{ROLE_PREFIX}.current.title",
    "position": f"{ROLE_PREFIX}.current.title",
    "role": f"{ROLE_PREFIX}.current.title",
    f"{ROLE_PREFIX}.name": f"{ROLE_PREFIX}.current.company_name",
    "company": f"{ROLE_PREFIX}.current.company_name",
    "company_name": f"{ROLE_PREFIX}.current.company_name",
    "employer": f"{ROLE_PREFIX}.current.company_name",
    "current.name": f"{ROLE_PREFIX}.current.company_name",
    "current.company_name": f"{ROLE_PREFIX}.current.company_name",
    "industry": f"{ROLE_PREFIX}.current.company_industries",
    "industries": f"{ROLE_PREFIX}.current.company_industries",
    "company_industry": f"{ROLE_PREFIX}.current.company_industries",
    "sector": f"{ROLE_PREFIX}.current.company_industries",
    "company_size": f"{ROLE_PREFIX}.current.company_headcount_range",
    "size": f"{ROLE_PREFIX}.current.company_headcount_range",
    "employees": f"{ROLE_PREFIX}.current.company_headcount_range",
    "employee_count": f"{ROLE_PREFIX}.current.company_headcount_range",
    "headcount": f"{ROLE_PREFIX}.current.company_headcount_range",
    "company_domain": f"{ROLE_PREFIX}.current.company_website_domain",
    "domain": f"{ROLE_PREFIX}.current.company_website_domain",
    "seniority": f"{ROLE_PREFIX}.current.seniority_level",
    "seniority_level": f"{ROLE_PREFIX}.current.seniority_level",
    "level": f"{ROLE_PREFIX}.current.seniority_level",
    "function": f"{ROLE_PREFIX}.current.function_category",
    "department": f"{ROLE_PREFIX}.current.function_category",
    "hq_country": f"{ROLE_PREFIX}.current.company_headquarters_country",
    "company_country": f"{ROLE_PREFIX}.current.company_headquarters_country",
    "country": "basic_profile.location.country",
    "location": "basic_profile.location",
    "city": "basic_profile.location.city",
    "state": "basic_profile.location.state",
    "continent": "basic_profile.location.continent",
    "name": "basic_profile.name",
    "full_name": "basic_profile.name",
    "skill": "skills.professional_network_skills",
    "skills": "skills.professional_network_skills",
    "language": "basic_profile.languages",
    "languages": "basic_profile.languages",
    "school": "education.schools.school",
    "university": "education.schools.school",
    "degree": "education.schools.degree",
    "connections": "professional_network.connections",
    "followers": "professional_network.followers",
    "years_experience": "years_of_experience_raw",
    "experience_years": "years_of_experience_raw",
    "years_of_experience": "years_of_experience_raw",
    "changed_jobs": "recently_changed_jobs",
    "job_change": "recently_changed_jobs",
    "recently_changed_job": "recently_changed_jobs",
    "basic_profile.location.raw": "basic_profile.location",
    "social_handles.professional_network_identifier.profile_url": "(none: enrich_person_by_url looks a URL up)",
    "contact.business_emails": f"{ROLE_PREFIX}.current.business_email_verified",
    "contact.has_business_email": f"{ROLE_PREFIX}.current.business_email_verified",
    "email": f"{ROLE_PREFIX}.current.business_email_verified",
    "has_email": f"{ROLE_PREFIX}.current.business_email_verified",
}


def synonym(name: str) -> str | None:
    """The filterable name a guessed or returned name means, by the whole name, then by its last segment."""
    found = RETURNED_NAME_TO_FILTER.get(name)
    if found is None and "." in name:
        found = RETURNED_NAME_TO_FILTER.get(name.rsplit(".", 1)[-1])
        # A scoped guess keeps its scope: `...past.industry` means the past roles' industries.
        for scope in (".past.", ".current."):
            if found is not None and scope in name and found.startswith(f"{ROLE_PREFIX}.current."):
                found = found.replace(".current.", scope)
    return found


def nearest(name: str, universe: tuple[str, ...], *, n: int = 4) -> list[str]:
    """Up to `n` valid names closest to `name`, whole names only.

    In order: a known synonym (a result name, a bare word), paths ending in the same segment, paths whose last segment
    contains the word, close spellings of the whole path, then paths ending in a close spelling of the last segment.
    """
    lowered = name.strip().lower()
    last = lowered.rsplit(".", 1)[-1]
    found: list[str] = []
    alias = synonym(lowered)
    if alias is not None and (alias in universe or alias.startswith("(")):
        found.append(alias)
    same_leaf = [p for p in universe if p.rsplit(".", 1)[-1] == last]
    same_leaf.sort(key=lambda p: -difflib.SequenceMatcher(None, lowered, p).ratio())
    found.extend(same_leaf)
    if len(last) >= 4:
        found.extend(p for p in universe if last in p.rsplit(".", 1)[-1])
    found.extend(difflib.get_close_matches(lowered, universe, n=n, cutoff=0.55))
    by_leaf: dict[str, list[str]] = {}
    for path in universe:
        by_leaf.setdefault(path.rsplit(".", 1)[-1], []).append(path)
    for leaf in difflib.get_close_matches(last, list(by_leaf), n=2, cutoff=0.75):
        found.extend(by_leaf[leaf])
    return list(dict.fromkeys(found))[:n]


def brace_group(paths: tuple[str, ...] | list[str]) -> list[str]:
    """Paths with the same parent written once, in first-seen order: ["a.b", "a.c", "d"] -> ["a.{b,c}", "d"]."""
    groups: dict[str, list[str]] = {}
    for path in paths:
        parent, _, leaf = path.rpartition(".")
        groups.setdefault(parent, []).append(leaf)
    out: list[str] = []
    for parent, leaves in groups.items():
        if not parent:
            out.extend(leaves)
        elif len(leaves) == 1:
            out.append(f"{parent}.{leaves[0]}")
        else:
            out.append(f"{parent}.{{{','.join(leaves)}}}")
    return out


# --- the resource ------------------------------------------------------------------------------------------------

SEARCH_OPERATORS: Final[tuple[str, ...]] = ("=", "!=", "<", "=<", ">", "=>", "in", "not_in", "(.)", "(!)", "[.]")
COMBINATORS: Final[dict[str, str]] = {"and": "every condition holds", "or": "at least one condition holds"}


def search_fields_catalog(operator_aliases: dict[str, str]) -> dict[str, Any]:
    """The resource's content: everything needed to write filters and sorts, free to read."""
    return {
        "notation": (
            "Keys use shell braces: a.{b,c} means a.b and a.c; a{,.b} means a and a.b. "
            f"{ROLE_PREFIX}.x matches any role, .current.x the current role(s), .past.x past roles."
        ),
        "filter_shape": (
            'leaf {"field","type","value"} or group {"op":"and"|"or","conditions":[...]}; groups nest. '
            "Filter names differ from result names: filter the employer on .current.company_name, results show "
            ".current.name; results' basic_profile.current_title is filtered as .current.title."
        ),
        "filter_fields": filter_meanings(),
        "operators": {op: OPERATORS[op] for op in SEARCH_OPERATORS},
        "operator_spellings_accepted": operator_aliases,
        "combinators": COMBINATORS,
        "values": (
            "= and in need the exact indexed value (case-insensitive): a value no one has matches no one, with no "
            "error. suggest_filter_values (free) lists the values of the autocomplete fields below; (.) matches "
            "words inside free text and | separates alternatives."
        ),
        "closed_values": {name: list(values) for name, values in CLOSED_VALUES.items()},
        "iso3_columns": sorted(ISO3_COLUMNS),
        "iso3_examples": {"United States": "USA", "Germany": "DEU", "United Kingdom": "GBR", "India": "IND"},
        "country_name_columns": sorted(COUNTRY_NAME_COLUMNS),
        "sortable_fields": brace_group(PERSON_SORTABLE_FIELDS),
        "autocomplete_fields": brace_group(PERSON_AUTOCOMPLETE_FIELDS),
        "pricing": "Reading this and suggest_filter_values are free; a search costs 0.03 a result returned, none "
        "when nothing matches.",
    }
