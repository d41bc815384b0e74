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
    # `isprintable` is one C-level scan and is False for every character removed here (controls are Cc, bidi and
    # zero-width ones Cf, the separators Zl and Zp), so the common case costs no regex and no copy.
    if text.isprintable() or _ANY.search(text) is None:
        return text
    return _INVISIBLE.sub("", _BREAKS.sub(" ", text))


# Bytes that begin every form such a character can take in raw JSON text: a control byte (raw, as between the tokens
# of pretty-printed JSON), a backslash (any escape), or the first byte of the UTF-8 of a C1 control (C2), U+061C (D8),
# U+2000-U+2FFF (E2) or U+FEFF (EF). `bytes.translate` deletes every other byte in one C-level pass.
_OTHER_BYTES = bytes(b for b in range(256) if b >= 0x20 and b not in (0x5C, 0x7F, 0xC2, 0xD8, 0xE2, 0xEF))
# The escapes that can spell such a character (a control, or a character below U+0100, U+061C, U+20xx, U+FEFF);
# it starts with a literal backslash, so the search skips ahead quickly. `\"`, `\\` and `\/` are not matched.
_ESCAPES = re.compile(r"\\(?:[bfnrt]|u(?:00|061[cC]|20|[fF][eE][fF][fF]))")


def needs_cleaning(raw: bytes) -> bool:
    """False when the JSON text `raw` cannot hold a string that `clean_text` would change (checked without parsing).

    A true answer can be a false alarm (an escaped backslash before an `n`): it only costs a walk over the value.
    """
    if not raw.translate(None, _OTHER_BYTES):
        return False  # the common case: plain text without escapes, one pass
    text = raw.decode("utf-8", errors="replace")
    return _ANY.search(text) is not None or _ESCAPES.search(text) is not None


def clean_data(value: Any) -> Any:
    """A parsed JSON value with every string (object keys included) passed through `clean_text`, cleaned in place.

    Lists and objects are changed where they stand (a freshly parsed answer belongs to no one else), which keeps
    the common case, where nothing needs cleaning, free of copies.
    """
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        items = cast(list[Any], value)
        for index, item in enumerate(items):
            if isinstance(item, str | list | dict):
                items[index] = clean_data(item)
        return items
    if isinstance(value, dict):
        fields = cast(dict[Any, Any], value)
        for key, item in fields.items():
            if isinstance(item, str | list | dict):
                fields[key] = clean_data(item)
        if not all(not isinstance(k, str) or k.isprintable() for k in fields):
            cleaned = {(clean_text(k) if isinstance(k, str) else k): v for k, v in fields.items()}
            fields.clear()
            fields.update(cleaned)
        return fields
    return value
