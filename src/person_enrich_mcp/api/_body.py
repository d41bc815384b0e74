"""Request bodies that cannot carry a key their endpoint does not accept."""

from __future__ import annotations

from collections.abc import Set
from typing import Any


def checked(path: str, body: dict[str, Any], accepted: Set[str]) -> dict[str, Any]:
    """`body` unchanged, after checking every key is one the endpoint accepts (the spec's schemas are closed).

    Raises:
        ValueError: naming the stray keys; a bug here, never the caller's input.
    """
    stray = sorted(set(body) - set(accepted))
    if stray:
        raise ValueError(f"{path} does not accept {', '.join(stray)}")
    return body
