"""Accept-Language header (or the tracker's ``navigator.language``) → primary language.

Only the primary subtag is kept ("en-US" → "en"): region subtags add little to a report
and split visitors into smaller, more identifying groups.
"""

from __future__ import annotations

import re
from functools import lru_cache

CACHE_SIZE = 4096
# Headers longer than this are not from a browser; they are cut rather than cached whole.
MAXIMUM_LENGTH = 256
# ISO 639 codes are two or three letters; anything else ("*", "i-klingon", junk) is dropped.
_PRIMARY = re.compile(r"[a-z]{2,3}")


def _quality(parameters: str) -> float:
    for parameter in parameters.split(";"):
        name, _, value = parameter.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


@lru_cache(maxsize=CACHE_SIZE)
def _primary_language(value: str) -> str:
    best, best_quality = "", 0.0
    for item in value.split(","):
        tag, _, parameters = item.partition(";")
        primary = tag.strip().replace("_", "-").partition("-")[0].lower()
        if not _PRIMARY.fullmatch(primary):
            continue
        quality = _quality(parameters) if parameters else 1.0
        # Strictly greater: on equal weight the first listed language wins.
        if quality > best_quality:
            best, best_quality = primary, quality
    return best


def primary_language(value: str | None) -> str:
    """Lower-case primary subtag of the preferred language, "" when there is none."""
    # Region subtags are dropped: "en-GB" and "en-US" visitors count together as "en".
    if not value:
        return ""
    return _primary_language(value[:MAXIMUM_LENGTH])
