"""Third-party text made safe to show a model: no line breaks, no control, bidi or zero-width characters.

Profile text is written by the people it describes. Left as it is, a newline in a headline forges a line that
reads as the server's own, a right-to-left override makes text display as something it is not, and zero-width
characters defeat matching. Every string that comes from the upstream (and every identifier echoed back) goes
through `clean_text` before it is cached or returned, and is only ever shown inside the result's JSON.
"""

from __future__ import annotations

import re
from typing import Any, cast

# C0 and C1 controls (newlines and tabs included), DEL, and the Unicode line and paragraph separators: each run
# becomes one space, so words on either side stay apart.
_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# Bidi embeddings, overrides, isolates and marks, and zero-width characters: removed outright.
_INVISIBLE = re.compile(r"[\u061c\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]")
_ANY = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060\u2066-\u2069\ufeff]")


def clean_text(text: str) -> str:
    """`text` with control characters turned into spaces and bidi and zero-width characters removed."""
    if _ANY.search(text) is None:  # the common case: one C-level scan, no copy
        return text
    return _INVISIBLE.sub("", _BREAKS.sub(" ", text))


# The same characters as they can appear in raw JSON: a JSON escape of a control (or of any character below
# U+0100 spelled with `\\u`, which also catches harmless ones), an escape of a bidi or zero-width character, or the
# raw UTF-8 of one (control bytes between tokens, as in pretty-printed JSON, match too). A false match only costs
# a walk over the value; a miss is impossible, because every such character in a string takes one of these forms.
_RAW = re.compile(
    rb"\\[bfnrt]|\\u(?:00[0-9a-f]{2}|061c|20[0-6][0-9a-f]|feff)|[\x00-\x1f\x7f]|\xc2[\x80-\x9f]"
    rb"|\xd8\x9c|\xe2\x80[\x8b-\x8f\xa8-\xae]|\xe2\x81[\xa0\xa6-\xa9]|\xef\xbb\xbf",
    re.IGNORECASE,
)


def needs_cleaning(raw: bytes) -> bool:
    """False when the JSON text `raw` cannot hold a string that `clean_text` would change (checked without parsing)."""
    return _RAW.search(raw) is not None


def is_clean(text: str) -> bool:
    """True when `clean_text` would leave `text` unchanged."""
    return _ANY.search(text) is None


def clean_data(value: Any) -> Any:
    """A parsed JSON value with every string (object keys included) passed through `clean_text`."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        source = cast(dict[Any, Any], value)
        return {(clean_text(k) if isinstance(k, str) else k): clean_data(v) for k, v in source.items()}
    if isinstance(value, list):
        return [clean_data(item) for item in cast(list[Any], value)]
    return value
