"""Deterministic synthetic people and companies, in the upstream enrich and search shapes, with lookup indices.

Every name is invented, every e-mail address is on an RFC 2606 `.example` domain, every phone number is in
the fictional 555-01xx range and every media URL is on `media.example.test`, so no real person is described.
Generation uses one `random.Random(seed)` and no global state: the same seed and sizes give byte-identical data.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import hashlib
import random
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from person_enrich_mcp.sandbox.vocabulary import (
    CERTIFICATIONS,
    COMPANY_PREFIXES,
    COMPANY_SUFFIXES,
    COMPANY_TYPES,
    DEGREES,
    EMPLOYMENT_TYPES,
    FIELDS_OF_STUDY,
    FIRST_NAMES,
    FUNCTIONS,
    GENERAL_SKILLS,
    HONORS,
    LANGUAGES,
    LAST_NAMES,
    PLACES,
    PRONOUNS,
    ROLE_DESCRIPTIONS,
    SCHOOLS,
    SENIORITY_WEIGHTS_CURRENT,
    SENIORITY_WEIGHTS_PAST,
    SUMMARIES,
    TITLE_TEMPLATES,
)

SENIORITY_LEVELS: tuple[str, ...] = (
    "Entry Level",
    "Entry Level Manager",
    "Senior",
    "Director",
    "Owner / Partner",
    "CXO",
    "Vice President",
    "In Training",
    "Experienced Manager",
    "Strategic",
)
FUNCTION_CATEGORIES: tuple[str, ...] = (
    "Engineering",
    "Sales",
    "Consulting",
    "Marketing",
    "Operations",
    "Finance",
    "Research",
    "Customer Success and Support",
    "Arts and Design",
    "Human Resources",
    "Legal",
    "Product Management",
)
HEADCOUNT_RANGES: tuple[str, ...] = (
    "myself only",
    "2-10",
    "11-50",
    "51-200",
    "201-500",
    "501-1000",
    "1001-5000",
    "5001-10000",
    "10001+",
)
OPEN_TO_CARDS: tuple[str, ...] = ("CAREER_INTEREST", "HIRING_MANAGER", "VOLUNTEERING")
COMPANY_STATUSES: tuple[str, ...] = ("active", "deleted")
PERSONAL_MAIL_DOMAINS: tuple[str, ...] = ("mail.example", "inbox.example", "post.example")
MEDIA_HOST = "media.example.test"

# The index is "rebuilt" at this instant: every date in the dataset is at or before it, so data never ages.
REFERENCE_MONTH = 2026 * 12 + 2  # March 2026 as a month index (year * 12 + month - 1)
REFERENCE_EPOCH = 1772323200  # 2026-03-01T00:00:00Z


@dataclass(frozen=True, slots=True)
class Company:
    """A synthetic company; role objects copy its fields."""

    company_id: int
    name: str
    domain: str
    role_template: dict[str, Any]
    place_index: int


@dataclass(slots=True)
class Person:
    """One synthetic person: the full enrich `person_data`, the search-profile row and lookup keys."""

    index: int
    person_id: int
    slug: str
    profile_url: str
    opted_out: bool
    data: dict[str, Any]
    business_emails: tuple[str, ...]
    email_companies: tuple[int, ...]
    _search: dict[str, Any] | None = None

    @property
    def search(self) -> dict[str, Any]:
        """The search-profile row (§5.2), derived on first use and cached."""
        if self._search is None:
            self._search = build_search_profile(self.data)
        return self._search


@dataclass(slots=True)
class EmailCandidate:
    """One candidate owner of a business e-mail, with its confidence score."""

    person: Person
    score: float


@dataclass(slots=True)
class Dataset:
    """The generated people and companies plus lookup indices (by slug, e-mail and id)."""

    seed: int
    people: list[Person]
    companies: list[Company]
    by_slug: dict[str, Person]
    by_email: dict[str, Person]
    by_id: dict[int, Person]
    by_company: dict[int, list[Person]]
    searchable: list[Person]
    generation_seconds: float = 0.0
    # People whose free text was made hostile after generation (see hostile.py); empty unless asked for.
    hostile: list[Person] = field(default_factory=list[Person])
    _candidates: dict[str, list[EmailCandidate]] = field(default_factory=dict[str, list[EmailCandidate]])
    _multi_emails: list[str] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def lookup_slug(self, slug: str) -> Person | None:
        """The person whose profile slug is `slug` (case-insensitive), opted-out people included."""
        return self.by_slug.get(slug.lower())

    def email_candidates(self, email: str) -> list[EmailCandidate]:
        """Candidates for a business e-mail, best first; empty when unknown or when the owner opted out."""
        key = email.strip().lower()
        cached = self._candidates.get(key)
        if cached is not None:
            return cached
        owner = self.by_email.get(key)
        result: list[EmailCandidate] = []
        if owner is not None and not owner.opted_out:
            result = self._derive_candidates(key, owner)
        with self._lock:
            self._candidates[key] = result
        return result

    def _derive_candidates(self, email: str, owner: Person) -> list[EmailCandidate]:
        # Deterministic per (seed, e-mail): about one look-up in five is ambiguous, as reverse look-ups are.
        digest = hashlib.sha256(f"{self.seed}:{email}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big")
        rng = random.Random(draw)
        result = [EmailCandidate(owner, round(0.90 + rng.random() * 0.09, 2))]
        if draw % 1000 < 200:
            company_id = owner.email_companies[owner.business_emails.index(email)]
            colleagues = [p for p in self.by_company.get(company_id, ()) if p is not owner and not p.opted_out]
            if colleagues:
                picks = rng.sample(colleagues, min(len(colleagues), 1 + int(rng.random() * 2)))
                result.extend(EmailCandidate(p, round(0.45 + rng.random() * 0.40, 2)) for p in picks)
        result.sort(key=lambda c: (-c.score, c.person.person_id))
        return result

    def multi_candidate_emails(self) -> list[str]:
        """Every business e-mail (of a person who did not opt out) whose look-up yields several candidates."""
        if self._multi_emails is None:
            found = [
                email
                for person in self.searchable
                for email in person.business_emails
                if len(self.email_candidates(email)) > 1
            ]
            self._multi_emails = found
        return self._multi_emails


@contextlib.contextmanager
def gc_paused() -> Generator[None]:
    """Pause the cyclic garbage collector while building large acyclic structures.

    Hundreds of thousands of new containers would otherwise trigger full collections that rescan the whole,
    growing heap for nothing: the data built here has no reference cycles.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _headcount_range(headcount: int) -> str:
    if headcount <= 1:
        return "myself only"
    for upper, label in (
        (10, "2-10"),
        (50, "11-50"),
        (200, "51-200"),
        (500, "201-500"),
        (1000, "501-1000"),
        (5000, "1001-5000"),
        (10000, "5001-10000"),
    ):
        if headcount <= upper:
            return label
    return "10001+"


def _years_label(years: float) -> str:
    if years < 1:
        return "Less than 1 year"
    if years < 3:
        return "1 to 2 years"
    if years < 6:
        return "3 to 5 years"
    if years < 11:
        return "6 to 10 years"
    return "More than 10 years"


def _generate_companies(rng: random.Random, count: int) -> list[Company]:
    combos = [(p, s) for s in COMPANY_SUFFIXES for p in COMPANY_PREFIXES]
    rng.shuffle(combos)
    companies: list[Company] = []
    rnd = rng.random
    next_id = 600_000
    for i in range(count):
        prefix, (suffix, industry, industry2) = combos[i % len(combos)]
        round_no = i // len(combos)
        name = f"{prefix} {suffix}" if round_no == 0 else f"{prefix} {suffix} {round_no + 1}"
        domain = name.lower().replace(" ", "-") + ".example"
        next_id += 1 + int(rnd() * 900)
        headcount = 1 if rnd() < 0.02 else int(2 * (25000 ** rnd()))
        place_index = int(rnd() * len(PLACES))
        place = PLACES[place_index]
        network_id = str(10_000_000 + int(rnd() * 89_999_999))
        industries = [industry, industry2] if industry2 and rnd() < 0.5 else [industry]
        role_template: dict[str, Any] = {
            "name": name,
            "title": "",
            "description": "",
            "location": {"raw": f"{place[0]}, {place[2]}"},
            "employment_type": "",
            "start_date": None,
            "end_date": None,
            "is_default": False,
            "position_id": 0,
            "professional_network_id": network_id,
            "crustdata_company_id": next_id,
            "company_website": f"https://{domain}",
            "company_website_domain": domain,
            "company_profile_picture_permalink": f"https://{MEDIA_HOST}/company/{next_id}.jpg",
            "company_professional_network_profile_url": f"https://www.linkedin.com/company/{network_id}",
            "seniority_level": "",
            "function_category": "",
            "years_at_company": "",
            "years_at_company_raw": 0.0,
            "company_headcount_latest": headcount,
            "company_headcount_range": _headcount_range(headcount),
            "company_industries": industries,
            "company_professional_network_industry": industries[0],
            "company_type": COMPANY_TYPES[int(rnd() * len(COMPANY_TYPES))],
            "company_status": "deleted" if rnd() < 0.03 else "active",
            "company_headquarters_country": place[4],
            "company_hq_location": f"{place[0]}, {place[1]}, {place[2]}",
            "company_hq_location_address_components": [place[0], place[1], place[2]],
            "business_email_verified": False,
        }
        companies.append(Company(next_id, name, domain, role_template, place_index))
    return companies


def _weighted_table(weights: tuple[int, ...]) -> tuple[str, ...]:
    return tuple(level for level, w in zip(SENIORITY_LEVELS, weights, strict=True) for _ in range(w))


def generate_dataset(seed: int = 7, people: int = 5000, companies: int = 300) -> Dataset:
    """Generate `people` synthetic people across `companies` companies; deterministic for a given seed."""
    started = time.perf_counter()
    rng = random.Random(seed)
    company_list = _generate_companies(rng, companies)
    generator = _PersonGenerator(rng, company_list)
    with gc_paused():
        persons = [generator.person(i) for i in range(people)]
    by_slug = {p.slug: p for p in persons}
    by_email: dict[str, Person] = {}
    by_company: dict[int, list[Person]] = {}
    for p in persons:
        for email in p.business_emails:
            by_email[email] = p
        for role in p.data["experience"]["employment_details"]["current"]:
            by_company.setdefault(role["crustdata_company_id"], []).append(p)
    dataset = Dataset(
        seed=seed,
        people=persons,
        companies=company_list,
        by_slug=by_slug,
        by_email=by_email,
        by_id={p.person_id: p for p in persons},
        by_company=by_company,
        searchable=[p for p in persons if not p.opted_out],
    )
    dataset.generation_seconds = time.perf_counter() - started
    return dataset


class _PersonGenerator:
    """Holds the shared tables and the RNG while people are generated one by one."""

    def __init__(self, rng: random.Random, companies: list[Company]) -> None:
        self.rnd = rng.random
        self.companies = companies
        self.next_id = 1_000_000
        self.used_slugs: set[str] = set()
        self.used_emails: set[str] = set()
        self.used_handles: set[str] = set()
        self.current_levels = _weighted_table(SENIORITY_WEIGHTS_CURRENT)
        self.past_levels = _weighted_table(SENIORITY_WEIGHTS_PAST)
        self.month_strings = [f"{m // 12}-{m % 12 + 1:02d}-01T00:00:00+00:00" for m in range(REFERENCE_MONTH + 1)]
        self.functions = tuple(FUNCTIONS)
        self.titles = {
            (level, function): tuple(t.format(noun=noun, area=area, chief=chief) for t in TITLE_TEMPLATES[level])
            for level in SENIORITY_LEVELS
            for function, (noun, area, chief, _skills) in FUNCTIONS.items()
        }
        reference = datetime.date(2026, 3, 1)
        # Day strings counting back from the reference date; string pools avoid strftime in the hot loop.
        self.days = [(reference - datetime.timedelta(days=k)).isoformat() for k in range(120)]
        self.two_digits = [f"{n:02d}" for n in range(60)]
        # Tenure in months -> (years, label), looked up rather than computed for every role.
        self.tenures = [
            (round(max(m, 1) / 12, 1), _years_label(round(max(m, 1) / 12, 1))) for m in range(REFERENCE_MONTH + 1)
        ]
        self.locations = [
            (
                {
                    "raw": p[5],
                    "city": p[0],
                    "state": p[1],
                    "country": p[2],
                    "continent": p[3],
                    "full_location": f"{p[0]}, {p[1]}, {p[2]}",
                },
                {"raw": p[5], "city": p[0], "state": p[1], "country": p[2], "continent": p[3]},
            )
            for p in PLACES
        ]

    def role(
        self, company: Company, seniority: str, function: str, start: int, end: int | None, is_default: bool
    ) -> dict[str, Any]:
        """One employment object in the enrich shape."""
        r = self.rnd
        years, years_label = self.tenures[(REFERENCE_MONTH if end is None else end) - start]
        titles = self.titles[seniority, function]
        # Copying a per-company template (key order included) is much cheaper than building 30 keys.
        role = company.role_template.copy()
        role["title"] = titles[int(r() * len(titles))]
        role["description"] = ROLE_DESCRIPTIONS[int(r() * 6)]
        role["employment_type"] = EMPLOYMENT_TYPES[int(r() * 11)]
        role["start_date"] = self.month_strings[start]
        if end is not None:
            role["end_date"] = self.month_strings[end]
        role["is_default"] = is_default
        role["position_id"] = 1_000_000_000 + int(r() * 1_000_000_000)
        role["seniority_level"] = seniority
        role["function_category"] = function
        role["years_at_company"] = years_label
        role["years_at_company_raw"] = years
        role["business_email_verified"] = r() < (0.7 if end is None else 0.25)
        if end is not None and r() < 0.4:
            # Past roles often lack the website in real data (§5.1 shows one without it).
            del role["company_website"]
        return role

    def unique(self, used: set[str], stem: str, digits: int) -> str:
        """`stem` plus a random hex suffix that has not been used before."""
        r = self.rnd
        span = 16**digits
        while True:
            candidate = f"{stem}{int(r() * span):0{digits}x}"
            if candidate not in used:
                used.add(candidate)
                return candidate

    def person(self, index: int) -> Person:
        """Generate the person at position `index` (one straight-line recipe reads best here)."""
        r = self.rnd
        companies = self.companies
        n_companies = len(companies)
        self.next_id += 1 + int(r() * 40)
        pid = self.next_id
        first = FIRST_NAMES[int(r() * len(FIRST_NAMES))]
        last = LAST_NAMES[int(r() * len(LAST_NAMES))]
        first_l, last_l = first.lower(), last.lower()
        name = f"{first} {last}"
        slug = self.unique(self.used_slugs, f"{first_l}-{last_l}-", 6)
        profile_url = f"https://www.linkedin.com/in/{slug}"
        opted_out = r() < 0.01

        function = self.functions[int(r() * 12)]
        career_months = 6 + int(r() * 360)
        first_month = REFERENCE_MONTH - career_months

        # Current roles: most people have one, some none, a few hold several at once.
        draw = r()
        n_current = 0 if draw < 0.05 else 1 if draw < 0.88 else 2 if draw < 0.97 else 3
        n_past = min(int(r() * 5), career_months // 18)
        recent_change = n_current > 0 and r() < 0.1
        if n_current:
            tenure = 1 + int(r() * 2) if recent_change else 3 + int(r() * min(96, career_months))
            current_start = max(first_month, REFERENCE_MONTH - tenure)
        else:
            current_start = REFERENCE_MONTH - int(r() * 8)
        current_company = companies[int(r() * n_companies)]
        current: list[dict[str, Any]] = []
        seniority = self.current_levels[int(r() * len(self.current_levels))]
        for k in range(n_current):
            if k == 0:
                current.append(self.role(current_company, seniority, function, current_start, None, True))
            else:
                level = ("Owner / Partner", "Strategic", "Senior")[int(r() * 3)]
                func = function if r() < 0.5 else self.functions[int(r() * 12)]
                start = max(first_month, current_start - int(r() * 24))
                current.append(self.role(companies[int(r() * n_companies)], level, func, start, None, False))

        past: list[dict[str, Any]] = []
        cursor = current_start
        span = max(1, (current_start - first_month) // max(n_past, 1))
        past_levels = self.past_levels
        for _ in range(n_past):
            end = cursor - int(r() * 3)
            start = max(first_month, end - max(3, int(span * (0.5 + r() * 0.5))))
            if start >= end:
                break
            level = past_levels[int(r() * len(past_levels))]
            func = function if r() < 0.8 else self.functions[int(r() * 12)]
            past.append(self.role(companies[int(r() * n_companies)], level, func, start, end, False))
            cursor = start
        if not n_current and past:
            past[0]["is_default"] = True

        headline_role = current[0] if current else (past[0] if past else None)
        current_title: str = headline_role["title"] if headline_role else ""
        if headline_role is None:
            headline = ""
        elif current:
            headline = f"{current_title} at {headline_role['name']}"
        else:
            headline = f"Former {current_title} at {headline_role['name']}" if r() < 0.6 else ""

        place_index = current_company.place_index if current and r() < 0.8 else int(r() * len(PLACES))
        place = PLACES[place_index]
        # Location objects are shared between people in the same place: they are never mutated.
        location, network_location = self.locations[place_index]
        two = self.two_digits
        updated_day = 1 + int(r() * 45)  # day 0 would put times after the reference instant
        updated_at = f"{self.days[updated_day]}T{two[int(r() * 24)]}:{two[int(r() * 60)]}:{two[int(r() * 60)]}Z"
        summary = "" if r() < 0.3 else SUMMARIES[int(r() * len(SUMMARIES))]
        languages = ["English", LANGUAGES[int(r() * len(LANGUAGES))]] if r() < 0.45 else ["English"]
        picture = None if r() < 0.1 else f"https://{MEDIA_HOST}/person/{pid}.jpg"
        basic_profile: dict[str, Any] = {
            "name": name,
            "first_name": None if r() < 0.04 else first,
            "last_name": last,
            "headline": headline,
            "current_title": current_title,
            "summary": summary,
            "languages": languages,
            "last_updated": updated_at,
            "professional_network_name": name,
            "profile_picture_permalink": picture,
            "location": location,
        }

        connections = 500 if r() < 0.35 else int(r() * 499) if r() < 0.6 else 500 + int(r() * 29500)
        cards_draw = r()
        open_to: list[str] = (
            []
            if cards_draw < 0.6
            else [OPEN_TO_CARDS[int(r() * 3)]]
            if cards_draw < 0.9
            else ["HIRING_MANAGER", "VOLUNTEERING"]
        )
        joined_year = min(2025, max(2003, first_month // 12 + int(r() * 3)))
        network: dict[str, Any] = {
            "profile_picture_url": None if picture is None else f"https://{MEDIA_HOST}/raw/{pid}.jpg",
            "profile_picture_permalink": picture,
            "name": name,
            "pronoun": PRONOUNS[int(r() * 3)],
            "headline": headline,
            "current_title": current_title,
            "summary": summary,
            "location": network_location,
            "connections": connections,
            "followers": connections + int(r() * 3000),
            "joined_date": f"{joined_year}-{two[1 + int(r() * 12)]}-{two[1 + int(r() * 28)]}",
            "verifications": ["IDENTITY"] if r() < 0.4 else [],
            "open_to_cards": open_to,
            "metadata": {"last_scraped_source": "professional_network"},
        }
        if r() < 0.25:
            del network["pronoun"]

        handle = self.unique(self.used_handles, f"{first_l[0]}{last_l}", 3)
        has_dev = (function in _DEV_FUNCTIONS and r() < 0.75) or r() < 0.1
        dev_url = f"https://github.com/{handle}" if has_dev else None
        social: dict[str, Any] = {
            "professional_network_identifier": {"profile_url": profile_url},
            "dev_platform_identifier": {"profile_url": dev_url},
            "twitter_identifier": {"slug": handle if r() < 0.3 else None},
        }

        schools: list[dict[str, Any]] = []
        school_draw = r()
        n_schools = 0 if school_draw < 0.12 else 1 if school_draw < 0.65 else 2 if school_draw < 0.92 else 3
        grad_year = first_month // 12
        fields_of_study = FIELDS_OF_STUDY[function]
        for s in range(n_schools):
            end_year = grad_year - s * (2 + int(r() * 3))
            school_id = 1000 + int(r() * 9000)
            schools.append(
                {
                    "school": SCHOOLS[int(r() * len(SCHOOLS))],
                    "degree": DEGREES[int(r() * len(DEGREES))],
                    "field_of_study": fields_of_study[int(r() * len(fields_of_study))],
                    "start_year": None if r() < 0.1 else end_year - (2 if s else 4),
                    "end_year": end_year,
                    "activities_and_societies": "" if r() < 0.7 else "Debate society",
                    "institute_logo_url": f"https://{MEDIA_HOST}/school/{school_id}.jpg",
                    "professional_network_id": str(school_id),
                }
            )

        function_skills = FUNCTIONS[function][3]
        skills: list[str] = []
        for _ in range(int(r() * 10)):
            skill = (
                function_skills[int(r() * len(function_skills))]
                if r() < 0.75
                else GENERAL_SKILLS[int(r() * len(GENERAL_SKILLS))]
            )
            if skill not in skills:
                skills.append(skill)

        # Contact data: one in six people has none at all.
        business_emails: list[dict[str, Any]] = []
        email_keys: list[str] = []
        email_companies: list[int] = []
        personal_emails: list[dict[str, Any]] = []
        phones: list[str] = []
        websites: list[str] = []
        if r() >= 1 / 6:
            local = f"{first_l}.{last_l}"
            email_roles = current[:2] + ([past[0]] if past and r() < 0.3 else [])
            for role in email_roles:
                domain = role["company_website_domain"]
                address = f"{local}@{domain}"
                n = 2
                while address in self.used_emails:
                    address = f"{local}{n}@{domain}"
                    n += 1
                self.used_emails.add(address)
                business_emails.append(
                    {
                        "email": address,
                        "status": "verified" if role["business_email_verified"] else "unverified",
                        "last_updated": f"{self.days[updated_day + 9]}T00:00:00Z",
                        "crustdata_company_id": role["crustdata_company_id"],
                    }
                )
                email_keys.append(address)
                email_companies.append(role["crustdata_company_id"])
            if r() < 0.45:
                mailbox = PERSONAL_MAIL_DOMAINS[int(r() * 3)]
                personal_emails.append(
                    {
                        "email": f"{local}.{int(r() * 256):02x}@{mailbox}",
                        "status": "verified" if r() < 0.5 else "unverified",
                        "last_updated": f"{self.days[updated_day + 40]}T00:00:00Z",
                    }
                )
            if r() < 0.35:
                phones.append(f"+1{_AREA_CODES[int(r() * 6)]}55501{two[int(r() * 60)]}")
            if r() < 0.15:
                websites.append(f"https://{first_l}{last_l}.example")
        contact: dict[str, Any] = {
            "business_emails": business_emails,
            "personal_emails": personal_emails,
            "phone_numbers": phones,
            "websites": websites,
        }

        dev_profiles: list[dict[str, Any]] = []
        if dev_url is not None:
            org = current_company.domain.split(".")[0]
            dev_profiles.append(
                {
                    "account_type": "User",
                    "profile_url": dev_url,
                    "name": name,
                    "email": f"{handle}@users.example" if r() < 0.3 else None,
                    "location": {"raw": place[0]},
                    "company_text": f"@{org}" if current else "",
                    "bio": "" if r() < 0.4 else SUMMARIES[int(r() * len(SUMMARIES))],
                    "website_url": websites[0] if websites else None,
                    "profile_picture_url": f"https://{MEDIA_HOST}/avatar/{handle}.png",
                    "is_hireable": r() < 0.2,
                    "is_site_admin": False,
                    "confidence_score": round(0.6 + r() * 0.39, 2),
                    "public_repo_count": int(r() * 120),
                    "followers": int(r() * 800),
                    "following": int(r() * 150),
                    "declared_handles": [profile_url] if r() < 0.5 else [],
                    "org_memberships": [f"{org}-oss"] if current and r() < 0.3 else [],
                    "metadata": {
                        "created_at": f"{2008 + int(r() * 16)}-{two[1 + int(r() * 12)]}-01T00:00:00Z",
                        "last_scraped_source": "dev_platform",
                        "last_updated": updated_at,
                    },
                }
            )

        certifications: list[dict[str, Any]] = []
        for _ in range(0 if r() < 0.7 else 1 + int(r() * 2)):
            cert_name, org_name, initials = CERTIFICATIONS[int(r() * len(CERTIFICATIONS))]
            issue_year = 2015 + int(r() * 10)
            credential = f"{initials}-{10000 + int(r() * 90000)}"
            certifications.append(
                {
                    "name": cert_name,
                    "issuing_organization": org_name,
                    "issue_date": f"{issue_year}-{two[1 + int(r() * 12)]}-01",
                    "expiration_date": f"{issue_year + 3}-01-01" if r() < 0.5 else None,
                    "credential_id": credential,
                    "credential_url": f"https://cert.example/{credential}",
                    "source": "professional_network",
                }
            )
        honors: list[dict[str, str]] = [{"title": HONORS[int(r() * len(HONORS))]}] if r() < 0.15 else []

        data: dict[str, Any] = {
            "crustdata_person_id": pid,
            "basic_profile": basic_profile,
            "professional_network": network,
            "social_handles": social,
            "experience": {"employment_details": {"current": current, "past": past}},
            "education": {"schools": schools},
            "skills": {"professional_network_skills": skills},
            "contact": contact,
            "dev_platform_profiles": dev_profiles,
            "certifications": certifications,
            "honors": honors,
            "updated_at": updated_at,
        }
        return Person(
            index=index,
            person_id=pid,
            slug=slug,
            profile_url=profile_url,
            opted_out=opted_out,
            data=data,
            business_emails=tuple(email_keys),
            email_companies=tuple(email_companies),
        )


_DEV_FUNCTIONS = frozenset({"Engineering", "Research", "Product Management"})
_AREA_CODES = ("415", "212", "312", "206", "512", "617")
_RECENT_CHANGE_CUTOFF = f"{(REFERENCE_MONTH - 3) // 12}-{(REFERENCE_MONTH - 3) % 12 + 1:02d}-01"
_EMPLOYER_KEYS = (
    "title",
    "location",
    "start_date",
    "end_date",
    "employment_type",
    "is_default",
    "professional_network_id",
    "crustdata_company_id",
    "company_profile_picture_permalink",
    "company_professional_network_profile_url",
)


def _employer(role: dict[str, Any]) -> dict[str, Any]:
    employer = {"company_name": role["name"]}
    for key in _EMPLOYER_KEYS:
        employer[key] = role[key]
    return employer


def years_of_experience(data: dict[str, Any]) -> float:
    """Years since the earliest role started, as of the reference date (0.0 with no roles)."""
    details = data["experience"]["employment_details"]
    starts = [r["start_date"] for r in details["current"]] + [r["start_date"] for r in details["past"]]
    if not starts:
        return 0.0
    first = min(starts)
    return round((REFERENCE_MONTH - (int(first[:4]) * 12 + int(first[5:7]) - 1)) / 12, 1)


def recently_changed_jobs(data: dict[str, Any]) -> bool:
    """True when a past role ended within about 90 days (three months) of the index rebuild."""
    return any(
        r["end_date"] and r["end_date"] >= _RECENT_CHANGE_CUTOFF
        for r in data["experience"]["employment_details"]["past"]
    )


def build_search_profile(data: dict[str, Any]) -> dict[str, Any]:
    """Derive the §5.2 search-profile row from a full enrich `person_data`."""
    details = data["experience"]["employment_details"]
    contact = data["contact"]
    years_raw = years_of_experience(data)
    return {
        "crustdata_person_id": data["crustdata_person_id"],
        "basic_profile": data["basic_profile"],
        "professional_network": {
            "connections": data["professional_network"]["connections"],
            "profile_picture_permalink": data["professional_network"]["profile_picture_permalink"],
        },
        "social_handles": data["social_handles"],
        "experience": {
            "employment_details": {
                "current": [_employer(r) for r in details["current"]],
                "past": [_employer(r) for r in details["past"]],
            }
        },
        "education": {
            "schools": [
                {
                    "school": s["school"],
                    "degree": s["degree"],
                    "start_year": s["start_year"],
                    "end_year": s["end_year"],
                    "professional_network_id": s["professional_network_id"],
                }
                for s in data["education"]["schools"]
            ]
        },
        "contact": {
            "has_business_email": bool(contact["business_emails"]),
            "has_personal_email": bool(contact["personal_emails"]),
            "has_phone_number": bool(contact["phone_numbers"]),
        },
        "certifications": data["certifications"],
        "honors": data["honors"],
        "metadata": {"updated_at": data["updated_at"]},
        "recently_changed_jobs": recently_changed_jobs(data),
        "years_of_experience": _years_label(years_raw),
        "years_of_experience_raw": years_raw,
    }
