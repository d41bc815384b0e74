"""Personal-data handling: opt-outs (suppression), erasure, the audit trail and the operator's field policy.

`subjects` names people by hashed identifiers; `suppression` is the operator's opt-out file; `guard` applies it
to every look-up; `erasure` removes people from the profile cache; `audit` keeps one pseudonymous record per
upstream request; `policy` forbids fields the operator never wants fetched. None of them knows MCP.
"""
