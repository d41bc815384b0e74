"""One exception tree for the whole server, and the one place that turns it into what a model reads.

    PersonEnrichError
    ├── ConfigurationError                  bad or missing settings (startup only)
    ├── InputError                          arguments rejected locally, before anything is spent
    │   ├── PlanRestrictionError            the account's plan lacks an endpoint or field the call needs
    │   ├── FieldDeniedError                the operator forbids a field (PERSON_ENRICH_DENY_FIELDS)
    │   └── SuppressedFilterError           a search filter names someone on the operator's opt-out list
    ├── PrivacyUnavailableError             the opt-out list or the audit log cannot be used: no look-ups until fixed
    ├── SpendRefusedError                   the call was not made; nothing was spent
    │   ├── BudgetExceededError             estimate does not fit the session budget
    │   ├── AccountBalanceError             estimate is above the upstream account's balance
    │   ├── CallCeilingError                estimate is above the call's own max_credits
    │   ├── ConfirmationRequiredError       above the confirmation threshold, and the client cannot be asked
    │   └── ConfirmationDeclinedError       the user said no
    └── APIError                            the upstream call failed
        ├── APIConnectionError              the request never reached the upstream (safe to retry)
        ├── APIOutcomeUnknownError          sent, but no usable answer (timeout, dropped connection)
        ├── APIResponseError                an answer that is not valid JSON of the documented shape
        ├── LocalRateLimitError             our own limiter would have to wait too long
        │   └── ShareRateLimitError         ... because this principal used up its share of the rate limit
        └── APIStatusError                  the upstream answered with an error status
            ├── BadRequestError             400
            ├── AuthenticationError         401
            ├── InsufficientCreditsError    402, or 403 "insufficient credits"
            ├── PermissionDeniedError       403 (plan-gated fields or endpoint)
            ├── NotFoundError               404
            │   └── EndpointMissingError    404 for a route this upstream does not have (another API revision)
            ├── RateLimitError              429
            └── ServerError                 5xx

`model_message(exc)` is the only function that writes the sentence a model sees: it names the cause and
the next step, never includes the API key or a raw upstream body, and is one line of clean text.
"""

from __future__ import annotations

import re
from decimal import Decimal, localcontext

from person_enrich_mcp.untrusted import clean_text


def format_credits(amount: Decimal) -> str:
    """Credits as the model reads them: two decimals, no exponent (any magnitude, never an exception)."""
    with localcontext() as context:
        context.prec = max(60, amount.adjusted() + 10) if amount.is_finite() else 60
        return f"{amount.quantize(Decimal('0.01')):f}" if amount.is_finite() else str(amount)


class PersonEnrichError(Exception):
    """Base of every error this package raises on purpose."""

    code = "error"


class ConfigurationError(PersonEnrichError):
    """A setting is missing or invalid; raised at startup."""

    code = "configuration"


class InputError(PersonEnrichError):
    """The arguments were rejected locally; nothing was sent upstream and nothing was spent."""

    code = "invalid_input"


class PlanRestrictionError(InputError):
    """The account's plan does not include an endpoint or field the call needs; found out for free, nothing sent."""

    code = "not_in_plan"


class FieldDeniedError(InputError):
    """The operator of this server forbids a requested field; nothing was sent or spent."""

    code = "field_denied"


class SuppressedFilterError(InputError):
    """A search filter value names a person (or domain) on the operator's opt-out list; nothing was sent."""

    code = "suppressed"


class PrivacyUnavailableError(PersonEnrichError):
    """The opt-out list or the audit log cannot be used, so no look-up is made (fail closed)."""

    code = "privacy_unavailable"


class SpendRefusedError(PersonEnrichError):
    """The call was refused before anything was spent."""

    code = "refused"

    def __init__(self, message: str, *, estimate: Decimal, remaining: Decimal) -> None:
        super().__init__(message)
        self.estimate = estimate
        self.remaining = remaining


class BudgetExceededError(SpendRefusedError):
    """The worst-case cost does not fit in what is left of the session budget."""

    code = "budget_exceeded"


class AccountBalanceError(SpendRefusedError):
    """The worst-case cost is above what the upstream account has left."""

    code = "account_balance_low"


class CallCeilingError(SpendRefusedError):
    """The worst-case cost is above the `max_credits` the call allowed."""

    code = "max_credits_exceeded"


class ConfirmationRequiredError(SpendRefusedError):
    """The cost is above the confirmation threshold and nobody confirmed it."""

    code = "confirmation_required"


class ConfirmationDeclinedError(SpendRefusedError):
    """The user declined (or cancelled) the confirmation request."""

    code = "confirmation_declined"


class APIError(PersonEnrichError):
    """The upstream call failed; `credits_used` is what the answer said it billed (`x-credits-used`), if it said."""

    code = "upstream_error"

    def __init__(self, message: str, *, request_id: str | None = None, credits_used: Decimal | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id
        self.credits_used = credits_used


class APIConnectionError(APIError):
    """The request never reached the upstream (DNS, refused connection, connect timeout)."""

    code = "upstream_unreachable"


class APIOutcomeUnknownError(APIError):
    """The request was sent but no usable answer came back, so whether it was billed is unknown."""

    code = "upstream_outcome_unknown"


class APIResponseError(APIError):
    """The upstream answered 2xx with a body that is not the documented JSON."""

    code = "upstream_bad_response"


class LocalRateLimitError(APIError):
    """Our own limiter would have to wait longer than allowed before the next upstream request."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ShareRateLimitError(LocalRateLimitError):
    """This principal has used its share of an endpoint's rate limit; other principals are not held up."""


class APIStatusError(APIError):
    """The upstream answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error_type: str | None = None,
        request_id: str | None = None,
        credits_used: Decimal | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id, credits_used=credits_used)
        self.status_code = status_code
        self.error_type = error_type


class BadRequestError(APIStatusError):
    """400: the upstream rejected the request."""

    code = "upstream_rejected_request"


class AuthenticationError(APIStatusError):
    """401: the API key was missing or rejected."""

    code = "upstream_auth_failed"


class InsufficientCreditsError(APIStatusError):
    """402 (or 403 naming credits): the upstream account has no credits left."""

    code = "upstream_out_of_credits"


class PermissionDeniedError(APIStatusError):
    """403: the plan does not include a requested field or endpoint."""

    code = "upstream_permission_denied"

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error_type: str | None = None,
        request_id: str | None = None,
        credits_used: Decimal | None = None,
        denied_fields: tuple[str, ...] = (),
    ) -> None:
        super().__init__(
            message, status_code=status_code, error_type=error_type, request_id=request_id, credits_used=credits_used
        )
        self.denied_fields = denied_fields


class NotFoundError(APIStatusError):
    """404: no data for any identifier (the spec's variant of an empty match)."""

    code = "upstream_not_found"


class EndpointMissingError(NotFoundError):
    """404 because the upstream has no such endpoint: it speaks another revision of the Person API."""

    code = "upstream_endpoint_missing"


class RateLimitError(APIStatusError):
    """429: the upstream rate limit was hit and our bounded wait did not clear it."""

    code = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 429,
        error_type: str | None = None,
        request_id: str | None = None,
        credits_used: Decimal | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message, status_code=status_code, error_type=error_type, request_id=request_id, credits_used=credits_used
        )
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """5xx: the upstream failed; retries were exhausted."""

    code = "upstream_unavailable"


# Where an upstream 400 starts listing every valid field name (hundreds of them).
_FIELD_LIST = re.compile(r"\b(Supported fields|Available fields are|Supported sort fields)\b\s*:?", re.IGNORECASE)


def _ref(exc: APIError) -> str:
    return f" (upstream request id {exc.request_id})" if exc.request_id else ""


def model_message(exc: PersonEnrichError, *, already_charged: Decimal = Decimal(0)) -> str:
    """The sentence a model reads for any error of this package: the cause, then the next step.

    `already_charged` is what the same tool call spent before the failing request (a paid search before a
    failed enrichment): the message then says so instead of claiming nothing was charged.
    """
    text = _describe(exc)
    if isinstance(exc, APIStatusError) and exc.credits_used:
        # An error answer can still carry a bill (a gateway error after the backend did the work): say so.
        text = text.replace(
            "Nothing was charged.",
            f"The upstream reported {format_credits(exc.credits_used)} credits used for it, which are recorded.",
        )
    if already_charged > 0:
        text = text.replace(
            "Nothing was charged.",
            f"That request was not charged, but this call had already spent {format_credits(already_charged)} "
            "credits (see the receipt).",
        )
    # Messages can quote an upstream answer or an argument: one line, no control or bidi characters, whatever they held.
    return clean_text(text)


def _describe(exc: PersonEnrichError) -> str:
    if isinstance(exc, InputError | SpendRefusedError | ConfigurationError | PrivacyUnavailableError):
        return str(exc)
    if isinstance(exc, AuthenticationError):
        return (
            "The Person API rejected the API key (401). Nothing was charged. The operator must set a valid "
            "CRUSTDATA_API_KEY and restart the server; retrying will not help."
        )
    if isinstance(exc, InsufficientCreditsError):
        return (
            f"The Person API account has run out of credits ({exc.status_code}){_ref(exc)}. Nothing was charged. "
            "Tell the user to top up the account; retrying will not help."
        )
    if isinstance(exc, PermissionDeniedError):
        if exc.denied_fields:
            denied = ", ".join(exc.denied_fields)
            return (
                f"The Person API plan does not include these fields: {denied}{_ref(exc)}. Nothing was charged. "
                "Call again without them."
            )
        return f"The Person API denied access (403): {exc}{_ref(exc)}. Nothing was charged; do not retry."
    if isinstance(exc, ShareRateLimitError):
        return (
            "You have used your share of the Person API rate limit for now (the server divides it between its "
            f"users). Nothing was charged. Retry in about {max(exc.retry_after, 1):.0f} s, or make fewer look-ups "
            "at once; the operator can raise PERSON_ENRICH_PRINCIPAL_RATE_SHARE."
        )
    if isinstance(exc, RateLimitError | LocalRateLimitError):
        wait = f" Retry in about {exc.retry_after:.0f} s." if exc.retry_after else " Retry in a minute."
        return f"The Person API rate limit is exhausted and the bounded wait ran out. Nothing was charged.{wait}"
    if isinstance(exc, ServerError):
        return (
            f"The Person API failed with {exc.status_code}{_ref(exc)}. Nothing was charged. "
            "Retry later, or with fewer identifiers."
        )
    if isinstance(exc, BadRequestError):
        if "unknown parameter" in str(exc).lower():
            # The server, not the caller, chose the request's keys: the upstream speaks another API revision.
            return (
                f"The Person API does not accept a parameter this server sent ({exc.status_code}: {exc}){_ref(exc)}. "
                "Nothing was "
                "charged. It speaks another revision of the API than this server was told: the operator should set "
                "PERSON_ENRICH_API_DIALECT=auto (found out for free) and restart; retrying will not help."
            )
        said = str(exc)
        listed = _FIELD_LIST.search(said)
        if listed is not None:  # a long list of valid names helps less than the free ways to look them up
            said = said[: listed.start()].rstrip() + " (valid names: person-enrich://search-fields, free)"
        return (
            f"The Person API rejected the request ({exc.status_code}): {said}{_ref(exc)}. Nothing was charged. "
            "Fix the argument it names and call again."
        )
    if isinstance(exc, EndpointMissingError):
        return (
            f"The Person API has no such endpoint ({exc}){_ref(exc)}. Nothing was charged. It speaks another "
            "revision of the API than this server was told: the operator should set PERSON_ENRICH_API_DIALECT=auto "
            "(found out for free) and restart; retrying will not help."
        )
    if isinstance(exc, NotFoundError):
        return f"The Person API found no data (404){_ref(exc)}. Nothing was charged."
    if isinstance(exc, APIResponseError):
        if exc.credits_used is None:
            charged = (
                " It did not say what it billed, so the most it could have cost stays counted against the session "
                "budget (see get_budget)."
            )
        elif exc.credits_used:
            charged = (
                f" The upstream reported {format_credits(exc.credits_used)} credits used for it, which are recorded."
            )
        else:
            charged = ""
        return (
            f"The Person API sent an unreadable answer{_ref(exc)}.{charged} It was not retried automatically, "
            "because a retry would be charged again; call again only if the data is still needed."
        )
    if isinstance(exc, APIOutcomeUnknownError):
        return (
            f"The Person API did not answer in time or dropped the connection{_ref(exc)}. Whether it billed is "
            "unknown, so the reserved credits stay counted against the session budget (see get_budget). "
            "It was not retried automatically; call again with fewer identifiers if the data is still needed."
        )
    if isinstance(exc, APIConnectionError):
        return (
            "The Person API could not be reached. Nothing was charged. Check the network or "
            "PERSON_ENRICH_API_BASE_URL, then retry."
        )
    return f"Person API call failed: {exc}. Nothing was charged."
