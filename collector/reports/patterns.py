"""Regular expressions from report requests: checked by RE2, only ever run inside ClickHouse.

A ``matches`` filter's pattern comes from whoever holds a key or a share link.
Python's ``re`` backtracks: one pattern such as ``(?:.|.|.|.|.)*Z`` runs for
seconds or hours holding the GIL, and ingest stalls with it. RE2 matches in time
linear in the text, so a pattern is checked here with google-re2 (the library
behind ClickHouse's ``match()``) and then matched only by ClickHouse, never in
Python. The length cap bounds what one pattern can make ClickHouse compile.
"""

from __future__ import annotations

import re2

from collector.errors import InvalidField

MAX_PATTERN_LENGTH = 256

_OPTIONS = re2.Options()
# A refused pattern is the client's 400, not a line on the server's stderr.
_OPTIONS.log_errors = False


def check_pattern(pattern: str, field: str) -> None:
    """InvalidField naming ``field`` unless ``pattern`` is RE2 syntax of a bounded length."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidField(f"a regular expression is at most {MAX_PATTERN_LENGTH} characters "
                           f"(this one has {len(pattern)})", field)
    try:
        re2.compile(pattern, _OPTIONS)
    except re2.error as error:
        raise InvalidField(f"not a valid RE2 regular expression ({_reason(error)}; RE2 has "
                           "no lookarounds or backreferences)", field) from None


def literal_pattern(text: str) -> str:
    """A pattern matching ``text`` itself, every RE2 metacharacter escaped."""
    escaped: str = re2.escape(text)
    return escaped


def _reason(error: Exception) -> str:
    detail = error.args[0] if error.args else ""
    return detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
