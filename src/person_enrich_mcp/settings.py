"""Every setting in one typed model, read from flags first, then the environment.

The API key lives only here (as a `SecretStr`) and in the `authorization` header the client builds.
There is deliberately no `--api-key` flag: a key on a command line shows up in process listings.
Use `CRUSTDATA_API_KEY` or `--api-key-file`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from person_enrich_mcp.errors import ConfigurationError

DEFAULT_BASE_URL = "https://api.crustdata.com"
# A model's own `max_credits` may approve up to this many times the confirmation threshold: enough for a real task
# (three headline-sized searches at once), not enough for a forged "call again with max_credits=500" to drain a
# budget without the user seeing a prompt.
MODEL_APPROVAL_FACTOR = Decimal(3)
API_VERSION = "2025-11-01"


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: its field name, environment variable, flag, and help text."""

    field: str
    env: str
    flag: str
    help: str
    switch: bool = False


# The single table of configurable settings; the CLI, the README and the manifests are checked against it.
OPTIONS: tuple[Option, ...] = (
    Option("api_key", "CRUSTDATA_API_KEY", "--api-key-file", "Crustdata API key (the flag reads it from a file)"),
    Option("api_base_url", "PERSON_ENRICH_API_BASE_URL", "--api-base-url", "Person API base URL"),
    Option("session_budget", "PERSON_ENRICH_SESSION_BUDGET", "--session-budget", "credits one session may spend"),
    Option(
        "confirm_above", "PERSON_ENRICH_CONFIRM_ABOVE", "--confirm-above", "ask the user before a call estimated above"
    ),
    Option(
        "model_approval_limit",
        "PERSON_ENRICH_MODEL_APPROVAL_LIMIT",
        "--model-approval-limit",
        "most a call's own max_credits can approve when the client cannot ask the user; above it only the user "
        "can approve (default: 3 × the confirmation threshold)",
    ),
    Option("max_result_bytes", "PERSON_ENRICH_MAX_RESULT_BYTES", "--max-result-bytes", "size cap of one result"),
    Option("cache_ttl_seconds", "PERSON_ENRICH_CACHE_TTL", "--cache-ttl", "seconds a looked-up profile is reused"),
    Option(
        "api_dialect",
        "PERSON_ENRICH_API_DIALECT",
        "--api-dialect",
        "which Person API revision the upstream speaks: auto (found out for free), current (split enrich, contact "
        "and live endpoints) or overview (one enrich with business emails and contact fields)",
    ),
    Option(
        "enrich_rpm",
        "PERSON_ENRICH_ENRICH_RPM",
        "--enrich-rpm",
        "upstream enrich requests per minute (default: the account's limit, else 15; can only lower the account's)",
    ),
    Option(
        "contact_rpm",
        "PERSON_ENRICH_CONTACT_RPM",
        "--contact-rpm",
        "upstream contact-enrich requests per minute (default: the account's limit, else 15)",
    ),
    Option(
        "live_rpm",
        "PERSON_ENRICH_LIVE_RPM",
        "--live-rpm",
        "upstream live-enrich requests per minute (default: the account's limit, else 10)",
    ),
    Option(
        "search_rpm",
        "PERSON_ENRICH_SEARCH_RPM",
        "--search-rpm",
        "upstream search requests per minute (default: the account's limit, else 30)",
    ),
    Option(
        "autocomplete_rpm",
        "PERSON_ENRICH_AUTOCOMPLETE_RPM",
        "--autocomplete-rpm",
        "upstream autocomplete requests per minute (default: the account's limit, else 15)",
    ),
    Option(
        "account_refresh_seconds",
        "PERSON_ENRICH_ACCOUNT_REFRESH",
        "--account-refresh",
        "seconds between free re-reads of the account's endpoints, limits and prices (also re-read after a 403)",
    ),
    Option(
        "rate_window_seconds",
        "PERSON_ENRICH_RATE_WINDOW",
        "--rate-window",
        "the upstream rate limits' sliding window, in seconds (the rpm figures count requests per window)",
    ),
    Option("request_timeout", "PERSON_ENRICH_TIMEOUT", "--timeout", "seconds to wait for one upstream answer"),
    Option("max_wait_seconds", "PERSON_ENRICH_MAX_WAIT", "--max-wait", "longest wait for a rate-limit slot"),
    Option(
        "state_url",
        "PERSON_ENRICH_STATE_URL",
        "--state-url",
        "where budgets, receipts and rate limits live: memory://, sqlite:///path or redis://host:port/db",
    ),
    Option(
        "cache_url",
        "PERSON_ENRICH_CACHE_URL",
        "--cache-url",
        "where person data (the profile cache and search pages) lives: memory:// (this process only), shared (the "
        "state store), or its own sqlite:///path or redis://host:port/db",
    ),
    Option(
        "suppression_file",
        "PERSON_ENRICH_SUPPRESSION_FILE",
        "--suppression-file",
        "opt-out list: sha256 hashes of profile URLs, emails and @domains never looked up (`suppress add` writes it)",
    ),
    Option(
        "deny_fields",
        "PERSON_ENRICH_DENY_FIELDS",
        "--deny-fields",
        "comma-separated fields or tiers this server never fetches, e.g. contact.personal_emails,contact.phone_numbers",
    ),
    Option(
        "audit_log",
        "PERSON_ENRICH_AUDIT_LOG",
        "--audit-log",
        "append-only JSON-lines audit trail of every upstream request (a file path, or stderr), people named by "
        "salted hashes",
    ),
    Option(
        "audit_salt_file",
        "PERSON_ENRICH_AUDIT_SALT_FILE",
        "--audit-salt-file",
        "the audit log's secret salt file (default: the log's path + .salt, created on first start; required for "
        "stderr)",
    ),
    Option(
        "principal_budget",
        "PERSON_ENRICH_PRINCIPAL_BUDGET",
        "--principal-budget",
        "credits one authenticated principal may spend per rolling window (HTTP)",
    ),
    Option(
        "principal_window_seconds",
        "PERSON_ENRICH_PRINCIPAL_WINDOW",
        "--principal-window",
        "length of the principal budget's rolling window, in seconds",
    ),
    Option(
        "reservation_ttl_seconds",
        "PERSON_ENRICH_RESERVATION_TTL",
        "--reservation-ttl",
        "seconds after which a reservation whose holder died is counted as spent",
    ),
    Option(
        "tokens_file", "PERSON_ENRICH_TOKENS_FILE", "--tokens-file", "HTTP bearer tokens: 'principal sha256' per line"
    ),
    Option(
        "allow_unauthenticated",
        "PERSON_ENRICH_ALLOW_UNAUTHENTICATED",
        "--allow-unauthenticated",
        "serve HTTP without tokens (loopback only)",
        switch=True,
    ),
    Option(
        "allowed_hosts",
        "PERSON_ENRICH_ALLOWED_HOSTS",
        "--allowed-hosts",
        "comma-separated Host values HTTP accepts besides loopback (host or host:port, host:* for any port)",
    ),
    Option(
        "allowed_origins",
        "PERSON_ENRICH_ALLOWED_ORIGINS",
        "--allowed-origins",
        "comma-separated browser Origins HTTP accepts besides loopback",
    ),
    Option("max_body_bytes", "PERSON_ENRICH_MAX_BODY_BYTES", "--max-body-bytes", "largest HTTP request body accepted"),
    Option(
        "public_url",
        "PERSON_ENRICH_PUBLIC_URL",
        "--public-url",
        "the URL clients use to reach /mcp (advertised in the OAuth resource metadata when there is an issuer)",
    ),
    Option(
        "auth_issuer",
        "PERSON_ENRICH_AUTH_ISSUER",
        "--auth-issuer",
        "the OAuth authorization server that issues this server's tokens, if any: only then is protected-resource "
        "metadata published (static tokens from the tokens file need none)",
    ),
    Option(
        "session_window_seconds",
        "PERSON_ENRICH_SESSION_WINDOW",
        "--session-window",
        "HTTP clients without a session (the 2026-07-28 protocol) may spend the session budget per rolling window "
        "of this many seconds",
    ),
    Option(
        "max_sessions_per_principal",
        "PERSON_ENRICH_MAX_SESSIONS_PER_PRINCIPAL",
        "--max-sessions-per-principal",
        "open legacy HTTP sessions one principal may hold; more are refused with 429",
    ),
    Option(
        "session_idle_seconds",
        "PERSON_ENRICH_SESSION_IDLE_TIMEOUT",
        "--session-idle-timeout",
        "seconds after which an idle legacy HTTP session is closed",
    ),
    Option(
        "principal_rate_share",
        "PERSON_ENRICH_PRINCIPAL_RATE_SHARE",
        "--principal-rate-share",
        "the share (0-1] of each upstream endpoint's rate limit one principal may use, paid or free requests alike",
    ),
    Option(
        "metrics_token_file",
        "PERSON_ENRICH_METRICS_TOKEN_FILE",
        "--metrics-token-file",
        "a file holding the bearer token /metrics requires (unset: /metrics is open)",
    ),
    Option(
        "metrics_principal_names",
        "PERSON_ENRICH_METRICS_PRINCIPAL_NAMES",
        "--metrics-principal-names",
        "label per-principal metrics with principal names (default: a pseudonym per principal)",
        switch=True,
    ),
    Option(
        "log_format",
        "PERSON_ENRICH_LOG_FORMAT",
        "--log-format",
        "stderr log lines: text, or json (one object a line: time, level, logger, message, and the trace and span "
        "ids when tracing is on)",
    ),
    Option(
        "header_timeout_seconds",
        "PERSON_ENRICH_HEADER_TIMEOUT",
        "--header-timeout",
        "seconds an HTTP connection may take to send a request's headers before it is closed",
    ),
    Option(
        "keepalive_timeout_seconds",
        "PERSON_ENRICH_KEEPALIVE_TIMEOUT",
        "--keepalive-timeout",
        "seconds an idle keep-alive HTTP connection is kept open",
    ),
    Option(
        "max_connections",
        "PERSON_ENRICH_MAX_CONNECTIONS",
        "--max-connections",
        "open HTTP connections and requests in progress above which new requests get 503",
    ),
)


class Settings(BaseModel):
    """The server's configuration. Build it with `load_settings`, or directly in tests."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: SecretStr | None = None
    api_base_url: str = DEFAULT_BASE_URL
    session_budget: Decimal = Field(default=Decimal(50), ge=0, le=Decimal(1_000_000))
    confirm_above: Decimal = Field(default=Decimal(15), ge=0)
    # None: `MODEL_APPROVAL_FACTOR` × `confirm_above` (see `approval_limit`).
    model_approval_limit: Decimal | None = Field(default=None, ge=0)
    max_result_bytes: int = Field(default=40_000, ge=2_000, le=5_000_000)
    cache_ttl_seconds: float = Field(default=86_400.0, ge=0)
    negative_cache_ttl_seconds: float = Field(default=600.0, ge=0)
    api_dialect: Literal["auto", "current", "overview"] = "auto"
    # None: the account's own limit, else the documented default (`api.contract.DOCUMENTED_RPM`).
    enrich_rpm: int | None = Field(default=None, ge=1, le=100_000)
    contact_rpm: int | None = Field(default=None, ge=1, le=100_000)
    live_rpm: int | None = Field(default=None, ge=1, le=100_000)
    search_rpm: int | None = Field(default=None, ge=1, le=100_000)
    autocomplete_rpm: int | None = Field(default=None, ge=1, le=100_000)
    account_refresh_seconds: float = Field(default=600.0, ge=1, le=86_400)
    account_balance_seconds: float = Field(default=60.0, ge=0, le=86_400)
    rate_window_seconds: float = Field(default=60.0, gt=0)
    request_timeout: float = Field(default=30.0, gt=0, le=600)
    connect_timeout: float = Field(default=5.0, gt=0, le=120)
    max_wait_seconds: float = Field(default=60.0, ge=0, le=3600)
    max_retries: int = Field(default=2, ge=0, le=10)
    retry_base_delay: float = Field(default=0.5, ge=0)
    retry_max_delay: float = Field(default=8.0, ge=0)
    sandbox: bool = False
    state_url: str = "memory://"
    cache_url: str = "memory://"
    suppression_file: str | None = None
    deny_fields: tuple[str, ...] | None = None
    audit_log: str | None = None
    audit_salt_file: str | None = None
    # How often a running server purges expired cache entries, re-reads the opt-out list and applies erasures.
    housekeeping_seconds: float = Field(default=10.0, gt=0, le=3600)
    principal_budget: Decimal = Field(default=Decimal(500), ge=0)
    principal_window_seconds: float = Field(default=86_400.0, gt=0)
    reservation_ttl_seconds: float = Field(default=900.0, gt=0)
    tokens_file: str | None = None
    allow_unauthenticated: bool = False
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    max_body_bytes: int = Field(default=1_000_000, ge=1_024, le=4 * 1024 * 1024)
    public_url: str | None = None
    auth_issuer: str | None = None
    session_window_seconds: float = Field(default=3600.0, gt=0, le=30 * 86_400)
    max_sessions_per_principal: int = Field(default=20, ge=1, le=10_000)
    session_idle_seconds: float = Field(default=1800.0, gt=0, le=7 * 86_400)
    principal_rate_share: float = Field(default=0.5, gt=0, le=1)
    metrics_token_file: str | None = None
    metrics_principal_names: bool = False
    log_format: Literal["text", "json"] = "text"
    # Tracing, from the standard OTEL_* variables (`otel_settings`): the exporters to use (none: tracing is off),
    # and the OTLP protocol.
    otel_traces_exporters: tuple[str, ...] = ()
    otel_protocol: str = "http/protobuf"
    # prometheus-client's PROMETHEUS_MULTIPROC_DIR: several worker processes share their metrics through it.
    metrics_multiprocess_dir: str | None = None
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    keepalive_timeout_seconds: int = Field(default=5, ge=1, le=600)
    max_connections: int = Field(default=1000, ge=8, le=100_000)

    @property
    def tracing(self) -> bool:
        """Whether spans are exported (the standard OTEL_* variables ask for an exporter)."""
        return bool(self.otel_traces_exporters)

    @property
    def approval_limit(self) -> Decimal:
        """The most a model may approve on its own with `max_credits`; above it, only the user (by elicitation)."""
        if self.model_approval_limit is not None:
            return self.model_approval_limit
        return self.confirm_above * MODEL_APPROVAL_FACTOR

    def require_api_key(self) -> SecretStr:
        """The key, or a one-sentence startup error naming the variable and `--sandbox`."""
        if self.api_key is None or not self.api_key.get_secret_value().strip():
            raise ConfigurationError(
                "CRUSTDATA_API_KEY is not set: export your Crustdata API key (or pass --api-key-file), "
                "or run with --sandbox to use the offline sandbox with synthetic data."
            )
        return self.api_key


_TRUE = ("1", "true", "yes", "on")


def standard_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """What the standard variables of OpenTelemetry and prometheus-client ask of this server.

    Tracing is on when `OTEL_TRACES_EXPORTER` names an exporter other than `none`, or an OTLP endpoint is set (the
    exporter then defaults to `otlp`, as the specification says); `OTEL_SDK_DISABLED=true` turns it off whatever
    else is set. The SDK reads the rest of its variables itself.
    """
    values: dict[str, Any] = {}
    named = [part.strip().lower() for part in env.get("OTEL_TRACES_EXPORTER", "").split(",") if part.strip()]
    endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    endpoint = any(env.get(name, "").strip() for name in endpoints)
    exporters = [n for n in named if n != "none"] if named else (["otlp"] if endpoint else [])
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        exporters = []
    values["otel_traces_exporters"] = tuple(dict.fromkeys(exporters))
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "").strip() or env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    if protocol.strip():
        values["otel_protocol"] = protocol.strip().lower()
    multiprocess = env.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    if multiprocess:
        values["metrics_multiprocess_dir"] = multiprocess
    return values


def early_log_format(flag: str | None, environ: Mapping[str, str] | None = None) -> Literal["text", "json"]:
    """The log format, read before the rest of the settings (so that their own errors are logged in it)."""
    env = os.environ if environ is None else environ
    value = (flag or env.get("PERSON_ENRICH_LOG_FORMAT", "")).strip().lower()
    return "json" if value == "json" else "text"


def _read_key_file(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigurationError(f"--api-key-file: cannot read {path}: {exc.strerror}") from None


def load_settings(flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Merge flags (highest precedence) over environment variables over defaults.

    `flags` maps field names to values, with `None` meaning "not given"; `api_key_file` names a key file.

    Raises:
        ConfigurationError: naming the variable or flag whose value is invalid.
    """
    env = os.environ if environ is None else environ
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        if option.field == "api_key" and "api_key_file" in given:
            values["api_key"] = _read_key_file(str(given.pop("api_key_file")))
            sources["api_key"] = option.flag
        elif option.field in given:
            values[option.field] = given.pop(option.field)
            sources[option.field] = option.flag
        elif env.get(option.env, "").strip():
            values[option.field] = env[option.env].strip()
            sources[option.field] = option.env
    values = {**standard_settings(env), **values}
    values.update(given)
    try:
        for name in ("session_budget", "confirm_above", "model_approval_limit", "principal_budget"):
            if name in values:
                values[name] = Decimal(str(values[name]))
        for name in ("allowed_hosts", "allowed_origins", "deny_fields"):
            if isinstance(values.get(name), str):
                values[name] = tuple(part.strip() for part in values[name].split(",") if part.strip())
        return Settings(**values)
    except InvalidOperation:
        money = ("session_budget", "confirm_above", "model_approval_limit", "principal_budget")
        bad = next(n for n in money if n in values and not _is_decimal(values[n]))
        raise ConfigurationError(f"{sources.get(bad, bad)} must be a number of credits") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "settings"
        raise ConfigurationError(f"{sources.get(name, name)}: {first['msg']}") from None


def _is_decimal(value: Any) -> bool:
    try:
        Decimal(str(value))
    except InvalidOperation:
        return False
    return True
