"""Personal-data handling: opt-outs (suppression), erasure, the audit trail and the operator's field policy.

`subjects` names people by hashes of their identifiers; `suppression` is the operator's opt-out file and `guard`
applies it to every look-up; `policy` forbids fields the operator never wants fetched; `audit` keeps one
pseudonymous record per upstream request; `erasure` carries `forget` to running servers and `housekeeping` keeps
their caches honest (expiry, opt-outs, erasures); `setup` builds them from the settings and `cli` holds the
operator's commands. None of them knows MCP.
"""
