"""The upstream's own tables for the Person API (`x-api-version: 2025-11-01`), in one place.

Endpoint paths, the request keys each endpoint accepts, each endpoint's `fields` vocabulary, the filterable,
sortable, autocomplete and returnable paths of Person Search, the filter operators and the documented prices and
rate limits. The client, the field catalog and the error messages all read these, so they cannot disagree.

The path tables are transcribed from the upstream's own n8n integration, generated from its OpenAPI 2025-11-01
spec (`crustdata/n8n-nodes-crustdata`, `nodes/Crustdata/filter-fields.generated.ts`); the committed copy is
`docs/upstream/person-api-2025-11-01.tables.json` and `tests/test_contract_tables.py` checks this module against
it. The sandbox keeps its own copy on purpose: it must be able to disagree with the client.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Final


class Dialect(StrEnum):
    """Which revision of the Person API an upstream speaks."""

    # Today's split endpoints: profile sections on /person/enrich, contact data on /person/contact/enrich,
    # fresh data on Live Enrich, and the account endpoints.
    CURRENT = "current"
    # The overview page's single /person/enrich: business emails, contact fields and the refresh flags.
    OVERVIEW = "overview"


# Upstream endpoints by the short names the limiter, metrics and messages use.
ENRICH: Final = "enrich"
CONTACT: Final = "contact"
LIVE: Final = "live"
SEARCH: Final = "search"
AUTOCOMPLETE: Final = "autocomplete"
ACCOUNT: Final = "account"

PATHS: Final[dict[str, str]] = {
    ENRICH: "/person/enrich",
    CONTACT: "/person/contact/enrich",
    LIVE: "/person/professional_network/enrich/live",
    SEARCH: "/person/search",
    AUTOCOMPLETE: "/person/search/autocomplete",
}
ACCOUNT_ENDPOINTS_PATH: Final = "/account/endpoints"
USER_CREDITS_PATH: Final = "/user/credits"
# The account listing names its product categories; the person endpoints are in this one.
PERSON_CATEGORY: Final = "Person"

# Synchronous identifier endpoints take at most 25 identifiers a call (n8n `hints.ts`; spec `maxItems: 25`).
MAX_IDENTIFIERS: Final = 25

# --- request keys per endpoint (spec's closed schemas: any other key is a 400) -----------------------------------

REQUEST_PARAMS: Final[dict[str, frozenset[str]]] = {
    "/person/contact/enrich": frozenset({"business_emails", "fields", "professional_network_profile_urls", "verified"}),
    "/person/enrich": frozenset({"fields", "preview", "professional_network_profile_urls"}),
    "/person/professional_network/enrich/live": frozenset({"fields", "professional_network_profile_urls"}),
    "/person/search": frozenset(
        {
            "count",
            "cursor",
            "explain",
            "fields",
            "filters",
            "limit",
            "post_processing",
            "preview",
            "return_query",
            "sorts",
        }
    ),
    "/person/search/autocomplete": frozenset({"field", "limit", "query"}),
}
# The overview's /person/enrich (its reference page's request table; the seed overview).
OVERVIEW_ENRICH_PARAMS: Final = frozenset(
    {
        "professional_network_profile_urls",
        "business_emails",
        "fields",
        "min_similarity_score",
        "force_fetch",
        "enrich_realtime",
        "preview",
    }
)

# --- `fields` vocabularies ---------------------------------------------------------------------------------------

# What /person/enrich (and Live Enrich, which shares its schema) accept in `fields` today: section groups only.
ENRICH_GROUPS: Final[tuple[str, ...]] = (
    "basic_profile",
    "professional_network",
    "skills",
    "social_handles",
    "experience",
    "education",
    "certifications",
    "honors",
    "dev_platform_profiles",
    "assessment",
    "social_posts",
)
# What /person/contact/enrich accepts in `fields`; omitting `fields` asks for every tier (the dearest request).
CONTACT_TIERS: Final[tuple[str, ...]] = (
    "contact.business_emails",
    "contact.personal_emails",
    "contact.phone_numbers",
    "contact.websites",
)
# Sent to resolve a work email to its person when no contact tier was asked for: the cheapest tier, and the one
# the look-up matched on.
RESOLVING_TIER: Final = "contact.business_emails"

# --- Person Search -----------------------------------------------------------------------------------------------

PERSON_FILTER_FIELDS: Final[tuple[str, ...]] = (
    "crustdata_person_id",
    "basic_profile.name",
    "basic_profile.headline",
    "basic_profile.summary",
    "basic_profile.languages",
    "basic_profile.last_updated",
    "basic_profile.location",
    "basic_profile.location.full_location",
    "basic_profile.location.city",
    "basic_profile.location.state",
    "basic_profile.location.country",
    "basic_profile.location.continent",
    "basic_profile.normalized_title.matched_title",
    "basic_profile.normalized_title.department",
    "basic_profile.normalized_title.sub_department",
    "professional_network.connections",
    "professional_network.followers",
    "professional_network.open_to_cards",
    "professional_network.location",
    "professional_network.location.raw",
    "skills.professional_network_skills",
    "experience.employment_details.company_name",
    "experience.employment_details.company_id",
    "experience.employment_details.professional_network_id",
    "experience.employment_details.title",
    "experience.employment_details.description",
    "experience.employment_details.location",
    "experience.employment_details.start_date",
    "experience.employment_details.end_date",
    "experience.employment_details.seniority_level",
    "experience.employment_details.function_category",
    "experience.employment_details.company_website_domain",
    "experience.employment_details.company_headcount_latest",
    "experience.employment_details.company_headcount_range",
    "experience.employment_details.company_industries",
    "experience.employment_details.company_professional_network_industry",
    "experience.employment_details.company_type",
    "experience.employment_details.company_status",
    "experience.employment_details.company_headquarters_country",
    "experience.employment_details.company_hq_location",
    "experience.employment_details.years_at_company_raw",
    *(
        f"experience.employment_details.{scope}.{leaf}"
        for scope in ("current", "past")
        for leaf in (
            "name",
            "company_name",
            "title",
            "description",
            "company_id",
            "professional_network_id",
            "is_default",
            "position_id",
            "seniority_level",
            "start_date",
            "company_website_domain",
            "company_professional_network_industry",
            "company_linkedin_profile_url",
            "company_headcount_range",
            "company_headcount_latest",
            "company_industries",
            "company_type",
            "company_status",
            "company_headquarters_country",
            "company_hq_location",
            "function_category",
            "years_at_company_raw",
        )
    ),
    "education.schools.school",
    "education.schools.degree",
    "education.schools.field_of_study",
    "education.schools.location",
    "education.schools.location.city",
    "education.schools.location.state",
    "education.schools.location.country",
    "education.schools.location.continent",
    "education.schools.location.full_location",
    "education.schools.location.raw",
    "certifications.name",
    "certifications.issue_date",
    "certifications.expiration_date",
    "certifications.credential_url",
    "certifications.issuing_organization",
    "certifications.credential_id",
    "honors.title",
    "social_handles.twitter_handle",
    "basic_profile.first_name",
    "basic_profile.last_name",
    "recently_changed_jobs",
    "years_of_experience_raw",
    "experience.employment_details.current.business_email_verified",
    "experience.employment_details.past.business_email_verified",
    "experience.employment_details.business_email_verified",
    "metadata.last_scraped_source",
    "metadata.updated_at",
    "professional_network.location.city",
    "professional_network.location.state",
    "professional_network.location.country",
    "professional_network.location.continent",
    "professional_network.metadata.last_scraped_source",
    "experience.employment_details.employment_type",
    "experience.employment_details.is_default",
    "experience.employment_details.company_website",
    "experience.employment_details.current.company_professional_network_profile_url",
    "experience.employment_details.current.employment_type",
    "experience.employment_details.past.company_professional_network_profile_url",
    "experience.employment_details.past.employment_type",
    "years_of_experience",
    *(
        f"dev_platform_profiles.{leaf}"
        for leaf in (
            "name",
            "bio",
            "location",
            "location.raw",
            "website_url",
            "company_text",
            "is_hireable",
            "followers",
            "following",
            "public_repo_count",
            "metadata.created_at",
            "total_repos",
            "total_stars",
            "max_stars",
            "median_stars",
            "all_languages",
            "all_topics",
        )
    ),
    *(
        f"dev_platform_profiles.repos.{leaf}"
        for leaf in (
            "full_name",
            "owner",
            "is_fork",
            "description",
            "primary_language",
            "topics",
            "license_key",
            "archived",
            "disabled",
            "is_template",
            "has_issues",
            "has_projects",
            "has_wiki",
            "stars",
            "forks_count",
            "open_issues_count",
            "size",
            "github_created_at",
            "github_updated_at",
            "github_pushed_at",
        )
    ),
    "assessment.authenticity.tier",
    "assessment.authenticity.verdict",
)

PERSON_SORTABLE_FIELDS: Final[tuple[str, ...]] = (
    "crustdata_person_id",
    "basic_profile.name",
    "basic_profile.location",
    "basic_profile.location.full_location",
    "basic_profile.location.city",
    "basic_profile.location.state",
    "basic_profile.location.country",
    "professional_network.connections",
    "professional_network.followers",
    "experience.employment_details.start_date",
    "experience.employment_details.company_id",
    "metadata.updated_at",
    "dev_platform_profiles.followers",
    "dev_platform_profiles.following",
    "dev_platform_profiles.metadata.created_at",
    "dev_platform_profiles.public_repo_count",
    "dev_platform_profiles.total_repos",
    "dev_platform_profiles.total_stars",
    "dev_platform_profiles.max_stars",
    "dev_platform_profiles.median_stars",
    "assessment.authenticity.tier",
)

PERSON_AUTOCOMPLETE_FIELDS: Final[tuple[str, ...]] = (
    "basic_profile.name",
    "basic_profile.first_name",
    "basic_profile.last_name",
    "basic_profile.headline",
    "basic_profile.languages",
    "basic_profile.location",
    "basic_profile.location.raw",
    "basic_profile.location.full_location",
    "basic_profile.location.city",
    "basic_profile.location.state",
    "basic_profile.location.country",
    "basic_profile.location.continent",
    "professional_network.location",
    "professional_network.location.raw",
    "professional_network.location.city",
    "professional_network.location.state",
    "professional_network.location.country",
    "professional_network.location.continent",
    "professional_network.open_to_cards",
    "skills.professional_network_skills",
    "experience.employment_details.current.name",
    "experience.employment_details.current.title",
    "experience.employment_details.current.seniority_level",
    "experience.employment_details.current.function_category",
    "experience.employment_details.current.company_industries",
    "experience.employment_details.current.company_type",
    "experience.employment_details.current.company_hq_location",
    "experience.employment_details.current.company_website_domain",
    "experience.employment_details.current.employment_type",
    "experience.employment_details.past.name",
    "experience.employment_details.past.title",
    "experience.employment_details.past.seniority_level",
    "experience.employment_details.past.function_category",
    "experience.employment_details.past.company_type",
    "experience.employment_details.past.company_hq_location",
    "experience.employment_details.past.company_website_domain",
    "experience.employment_details.past.employment_type",
    "experience.employment_details.employment_type",
    "education.schools.school",
    "education.schools.degree",
    "education.schools.field_of_study",
    "certifications.name",
    "certifications.issuing_organization",
    "honors.title",
    "open_to_cards",
    "employment_type",
)

# What Person Search can return in `fields` (the generated `FIELD_VOCABULARY["person.search"]`).
PERSON_RETURN_PATHS: Final[tuple[str, ...]] = (
    "basic_profile",
    "basic_profile.current_title",
    "basic_profile.headline",
    "basic_profile.location",
    "basic_profile.location.city",
    "basic_profile.location.continent",
    "basic_profile.location.country",
    "basic_profile.location.raw",
    "basic_profile.location.state",
    "basic_profile.name",
    "basic_profile.normalized_title",
    "basic_profile.normalized_title.confident",
    "basic_profile.normalized_title.department",
    "basic_profile.normalized_title.matched_title",
    "basic_profile.normalized_title.similarity",
    "basic_profile.normalized_title.sub_department",
    "basic_profile.professional_network_name",
    "basic_profile.profile_picture_permalink",
    "contact",
    "contact.has_business_email",
    "crustdata_person_id",
    "education",
    "education.schools",
    *(
        f"education.schools.{leaf}"
        for leaf in (
            "activities_and_societies",
            "degree",
            "description",
            "end_year",
            "field_of_study",
            "institute_logo_permalink",
            "institute_logo_url",
            "location",
            "location.city",
            "location.continent",
            "location.country",
            "location.raw",
            "location.state",
            "professional_network_id",
            "school",
            "start_year",
        )
    ),
    "experience",
    "experience.employment_details",
    *(
        path
        for scope in ("current", "past")
        for path in (
            f"experience.employment_details.{scope}",
            *(
                f"experience.employment_details.{scope}.{leaf}"
                for leaf in (
                    "business_email_verified",
                    "company_headcount_latest",
                    "company_headcount_range",
                    "company_headquarters_country",
                    "company_hq_location",
                    "company_hq_location_address_components",
                    "company_industries",
                    "company_professional_network_industry",
                    "company_professional_network_profile_url",
                    "company_profile_picture_permalink",
                    "company_status",
                    "company_type",
                    "company_website",
                    "company_website_domain",
                    "crustdata_company_id",
                    "description",
                    "employment_type",
                    "end_date",
                    "function_category",
                    "is_default",
                    "location",
                    "location.raw",
                    "name",
                    "position_id",
                    "professional_network_id",
                    "seniority_level",
                    "start_date",
                    "title",
                    "years_at_company",
                    "years_at_company_raw",
                )
            ),
        )
    ),
    "metadata",
    "metadata.updated_at",
    "social_handles",
    "social_handles.dev_platform_identifier",
    "social_handles.dev_platform_identifier.profile_url",
    "social_handles.professional_network_identifier",
    "social_handles.professional_network_identifier.profile_url",
    "social_handles.twitter_identifier",
    "social_handles.twitter_identifier.slug",
)

# Filter operators as the API spells them (n8n `OPERATOR_TO_API`), with the meaning a model needs. The range
# operators are `=>` and `=<`, reversed from the usual `>=` and `<=`.
OPERATORS: Final[dict[str, str]] = {
    "=": "equals (exact indexed value, case-insensitive for text)",
    "!=": "not equal",
    "<": "less than (numbers, dates)",
    "=<": "less than or equal (not <=)",
    ">": "greater than (numbers, dates)",
    "=>": "greater than or equal (not >=)",
    "in": "value is one of a JSON array",
    "not_in": "value is none of a JSON array",
    "(.)": "contains all the words, case-insensitive; | separates alternatives",
    "(!)": "does not contain the phrase",
    "[.]": "contains the exact phrase",
    "has_all": "a nested array holds every value of a JSON array",
    "geo_distance": "within a distance of a place",
    "geo_exclude": "outside a distance of a place",
}
FILTER_COMBINATORS: Final[tuple[str, ...]] = ("and", "or", "all_of")

# Columns that want ISO-3 country codes (n8n `geo-formats.ts`): a country name there returns zero rows, no error.
ISO3_COLUMNS: Final[frozenset[str]] = frozenset(
    {
        "experience.employment_details.company_headquarters_country",
        "experience.employment_details.current.company_headquarters_country",
        "experience.employment_details.past.company_headquarters_country",
    }
)

# --- documented prices and rate limits (used when the account listing does not say) ------------------------------

SEARCH_PER_RESULT: Final = Decimal("0.03")  # docs pricing page: 0.03 per result returned; zero results are free
# Today's /person/enrich (docs /person-docs/enrich): base 1, developer-platform data +1, at most 2 a profile.
ENRICH_BASE: Final = Decimal(1)
ENRICH_ADDONS: Final[dict[str, Decimal]] = {"dev_platform_profiles": Decimal(1)}
ENRICH_CAP: Final = Decimal(2)
# /person/contact/enrich (n8n README and `contact-enrich.ts`): no base fee, per tier returned, at most 5 a person;
# `verified` adds 0.5 per person who gets at least one address. The docs page's other reading (a base credit plus
# one per field) is tolerated: settlement follows `x-credits-used`, and an account's own prices replace these.
CONTACT_BASE: Final = Decimal(0)
CONTACT_TIER_PRICES: Final[dict[str, Decimal]] = {
    "contact.business_emails": Decimal(1),
    "contact.personal_emails": Decimal(2),
    "contact.phone_numbers": Decimal(2),
    "contact.websites": Decimal(0),
}
CONTACT_CAP: Final = Decimal(5)
VERIFIED_SURCHARGE: Final = Decimal("0.5")
# Live Enrich: 7 credits a profile (docs pricing table; the upstream's skills).
LIVE_PER_PROFILE: Final = Decimal(7)
# The overview's /person/enrich: base 1, +1 business email, +2 personal email, +2 phone, +1 developer platform,
# at most 7; the refresh flags' price is undocumented, so they are priced at the cap.
OVERVIEW_BASE: Final = Decimal(1)
OVERVIEW_ADDONS: Final[dict[str, Decimal]] = {
    "contact.business_emails": Decimal(1),
    "contact.personal_emails": Decimal(2),
    "contact.phone_numbers": Decimal(2),
    "dev_platform_profiles": Decimal(1),
}
OVERVIEW_CAP: Final = Decimal(7)

# Requests per minute when neither the account listing nor the operator says (docs /general/rate-limits; where
# revisions disagree, the lowest reading, so the default never causes a 429).
DOCUMENTED_RPM: Final[dict[str, int]] = {
    ENRICH: 15,
    CONTACT: 15,
    LIVE: 10,
    SEARCH: 30,
    AUTOCOMPLETE: 15,
    ACCOUNT: 300,
}
