"""Parsing of setting values shared by the sandbox config and the per-key plans."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


class ConfigError(ValueError):
    """A sandbox setting, plan or fault rule is invalid; the message says which and why."""


def parse_credits(value: object, name: str = "credits") -> Decimal | None:
    """Parse a credit amount given as a decimal string or an integer (never a float); None means unlimited."""
    if value is None:
        return None
    if isinstance(value, (bool, float)):
        raise ConfigError(f'{name} must be a decimal string such as "10" or "2.5" (not a float)')
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise ConfigError(f"{name} must be a decimal number; got {value!r}") from None
    else:
        raise ConfigError(f"{name} must be a decimal string or null; got {value!r}")
    if not amount.is_finite() or amount < 0:
        raise ConfigError(f"{name} must be a finite, non-negative amount; got {value!r}")
    return amount


def require_credits(value: object, name: str) -> Decimal:
    """Like `parse_credits`, but null is refused (the amount is mandatory)."""
    amount = parse_credits(value, name)
    if amount is None:
        raise ConfigError(f"{name} must be a decimal string, not null")
    return amount


def positive_int(value: object, name: str, *, optional: bool = False) -> int | None:
    """A positive integer (not a bool); None is accepted only when `optional`."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer{' or null' if optional else ''}; got {value!r}")
    return value


def boolean(value: object, name: str) -> bool:
    """A JSON boolean, nothing else."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false; got {value!r}")
    return value
