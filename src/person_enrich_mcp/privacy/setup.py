"""The privacy parts a server runs with, built from the settings before it starts serving (so a missing opt-out
file, an unreadable audit log or an unknown denied field stops it with one sentence)."""

from __future__ import annotations

from dataclasses import dataclass, field

from person_enrich_mcp.privacy.audit import AuditLog, DisabledAudit, open_audit
from person_enrich_mcp.privacy.guard import OptOuts
from person_enrich_mcp.privacy.policy import FieldPolicy
from person_enrich_mcp.privacy.suppression import SuppressionList
from person_enrich_mcp.settings import Settings
from person_enrich_mcp.state import SHARED_CACHE, check_cache_url, describe_store


@dataclass(slots=True)
class Privacy:
    """Opt-outs, the audit log and the field policy of one server."""

    opt_outs: OptOuts = field(default_factory=OptOuts)
    audit: AuditLog | DisabledAudit = field(default_factory=DisabledAudit)
    policy: FieldPolicy = field(default_factory=FieldPolicy)

    def close(self) -> None:
        """Close the audit log."""
        self.audit.close()


def open_privacy(settings: Settings) -> Privacy:
    """Read the opt-out file, open the audit log (creating its salt) and check the denied fields.

    Raises:
        ConfigurationError: naming the setting whose file or value cannot be used.
    """
    check_cache_url(settings.cache_url)
    policy = FieldPolicy.of(settings.deny_fields or ())
    suppression = SuppressionList(settings.suppression_file) if settings.suppression_file else None
    audit = open_audit(settings.audit_log, settings.audit_salt_file)
    return Privacy(OptOuts(suppression), audit, policy)


def where_person_data_lives(settings: Settings) -> tuple[str, bool]:
    """One sentence for the start-up log, and whether person data leaves this process's memory."""
    ttl = f"for up to {settings.cache_ttl_seconds:.0f} s"
    if settings.cache_ttl_seconds <= 0:
        return "person data is not cached (PERSON_ENRICH_CACHE_TTL=0)", False
    kind = check_cache_url(settings.cache_url)
    if kind == "memory":
        return f"person data (profiles, search pages) is cached in this process's memory only, {ttl}", False
    if kind == SHARED_CACHE:
        where = f"the state store {describe_store(settings.state_url)}"
        if settings.state_url.startswith("memory"):
            return f"person data (profiles, search pages) is cached in this process's memory only, {ttl}", False
    else:
        where = describe_store(settings.cache_url)
    return (
        f"person data (profiles, search pages) is cached in {where}, {ttl} (PERSON_ENRICH_CACHE_URL; "
        "see docs/privacy.md)",
        True,
    )
