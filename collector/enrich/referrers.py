"""Referrer host → (source, medium).

The table of known hosts is data (``data/referrers.csv``), so adding a search engine
is a one-line change. A host matches itself or its nearest listed parent domain:
``news.google.com`` is "Google News" because it is listed, ``maps.google.com`` falls
back to "Google". Google's country domains also match by rule.

A visit with no referrer may still name its source in a campaign tag (ChatGPT adds
``utm_source=chatgpt.com`` to the links it cites, and a link opened from an app
carries no referrer): ``classify_tagged_source`` reads such a tag against the same table.
"""

from __future__ import annotations

import csv
import re
from functools import lru_cache
from importlib.resources import files
from typing import NamedTuple

SEARCH = "search"
SOCIAL = "social"
EMAIL = "email"
AI_ASSISTANT = "ai-assistant"
REFERRAL = "referral"
DIRECT = "direct"
MEDIUMS = frozenset({SEARCH, SOCIAL, EMAIL, AI_ASSISTANT, REFERRAL})

DATA_FILE = "referrers.csv"
CACHE_SIZE = 10_000
# Prefixes that name the same site as the bare host for our purpose.
STRIPPED_PREFIXES = ("www.", "m.")
_GOOGLE_COUNTRY = re.compile(r"google\.(?:co\.|com\.)?[a-z]{2}")


class ReferrerClass(NamedTuple):
    source: str
    medium: str


DIRECT_CLASS = ReferrerClass("", DIRECT)
GOOGLE_CLASS = ReferrerClass("Google", SEARCH)


def _load_table() -> dict[str, ReferrerClass]:
    text = files("collector.enrich").joinpath("data", DATA_FILE).read_text(encoding="utf-8")
    lines = (line for line in text.splitlines() if line and not line.startswith("#"))
    table: dict[str, ReferrerClass] = {}
    for row in csv.DictReader(lines):
        medium = row["medium"].strip()
        if medium not in MEDIUMS:
            raise ValueError(f"{DATA_FILE}: unknown medium {medium!r} for {row['host']}")
        table[row["host"].strip().lower()] = ReferrerClass(row["source"].strip(), medium)
    return table


KNOWN_REFERRERS: dict[str, ReferrerClass] = _load_table()
# Source names, lower-cased: a tag saying "chatgpt" or "Google" means that source.
KNOWN_SOURCES: dict[str, ReferrerClass] = {
    found.source.lower(): found for found in KNOWN_REFERRERS.values()}


def _normalized(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.startswith("["):  # IPv6 literal: nothing to match, keep as is
        return host
    host = host.partition(":")[0]
    for prefix in STRIPPED_PREFIXES:
        if host.startswith(prefix):
            return host[len(prefix) :]
    return host


def _match(host: str) -> ReferrerClass | None:
    candidate = host
    while True:
        found = KNOWN_REFERRERS.get(candidate)
        if found is not None:
            return found
        if _GOOGLE_COUNTRY.fullmatch(candidate):
            return GOOGLE_CLASS
        dot = candidate.find(".")
        if dot < 0:
            return None
        candidate = candidate[dot + 1 :]


@lru_cache(maxsize=CACHE_SIZE)
def classify_referrer(host: str) -> ReferrerClass:
    """Source and medium of a referrer host; ("", "direct") when there is none."""
    normalized = _normalized(host) if host else ""
    if not normalized:
        return DIRECT_CLASS
    found = _match(normalized)
    if found is not None:
        return found
    return ReferrerClass(normalized, REFERRAL)


@lru_cache(maxsize=CACHE_SIZE)
def classify_tagged_source(tag: str) -> ReferrerClass:
    """Source and medium named by a ``ref``/``source``/``utm_source`` tag of a visit with
    no referrer: a known source name (any case) or host classifies like that referrer;
    any other tag is the source as written, medium "direct" (nothing referred it)."""
    value = tag.strip()
    if not value:
        return DIRECT_CLASS
    found = KNOWN_SOURCES.get(value.lower())
    if found is None and "." in value:  # only a dotted tag can name a host
        found = _match(_normalized(value))
    return found if found is not None else ReferrerClass(value, DIRECT)
