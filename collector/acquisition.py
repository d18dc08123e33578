"""An event's page and where its visitor came from, read from the event's two URLs.

This is the one derivation of the stored hostname, pathname, referrer, source,
medium and campaign tags. ``Pipeline.process`` reads every event with it, and
the tests build their rows with it too, so the traffic reports see in a test is
the traffic ingest would have stored: a derivation bug cannot hide behind a
hand-written row.
"""

from __future__ import annotations

from typing import NamedTuple

from collector.enrich.referrers import (
    DIRECT,
    ReferrerClass,
    classify_referrer,
    classify_tagged_source,
)
from collector.privacy import CleanPage, PageUrlCleaner, clean_referrer
from collector.settings import Settings


class Arrival(NamedTuple):
    """An event's cleaned page, its referrer (host + path only) and the source they name."""

    page: CleanPage
    referrer: str
    source: ReferrerClass

    @property
    def referrer_host(self) -> str:
        return _host_of(self.referrer)

    def event_values(self) -> tuple[str, ...]:
        """The values of the ``Event`` fields the two URLs determine, in ``URL_FIELDS``
        order (a tuple: ``Pipeline.process`` builds events by position, per event)."""
        tag = self.page.tags.get
        return (self.page.hostname, self.page.pathname, self.referrer, self.source.source,
                self.source.medium, tagged_source(self.page), tag("utm_medium", ""),
                tag("utm_campaign", ""), tag("utm_term", ""), tag("utm_content", ""))

    def event_fields(self) -> dict[str, str]:
        """The ``Event`` fields the two URLs determine, by field name."""
        return dict(zip(URL_FIELDS, self.event_values(), strict=True))


# The Event fields an arrival determines, in the order of ``Arrival.event_values``.
URL_FIELDS = ("hostname", "pathname", "referrer", "referrer_source", "referrer_medium",
              "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


class ArrivalReader:
    """Cleans page URLs and referrers under the privacy settings, and classifies the source."""

    def __init__(self, query_allowlist: tuple[str, ...], scrub_paths: bool,
                 max_path_length: int) -> None:
        self._pages = PageUrlCleaner(query_allowlist, scrub_paths, max_path_length)
        self._max_path_length = max_path_length

    @classmethod
    def from_settings(cls, settings: Settings) -> ArrivalReader:
        return cls(settings.query_allowlist, settings.scrub_paths, settings.max_path_length)

    def read(self, url: str, referrer: str | None, hash_mode: bool = False) -> Arrival:
        """The arrival of an event; raises InvalidField when ``url`` is unparsable or data:."""
        page = self._pages.clean(url, hash_mode)
        cleaned_referrer = clean_referrer(referrer, page.hostname, self._max_path_length)
        referred = classify_referrer(_host_of(cleaned_referrer))
        tag = tagged_source(page)
        if not tag:
            return Arrival(page, cleaned_referrer, referred)
        source = classify_tagged_source(tag)
        if source.medium == DIRECT and referred.source:  # an unknown tag on a referred visit
            source = ReferrerClass(source.source, referred.medium)
        return Arrival(page, cleaned_referrer, source)


def tagged_source(page: CleanPage) -> str:
    """The source a campaign tag names (stored as ``utm_source``, as Plausible does), or "".

    The first of ``utm_source``, ``source`` and ``ref`` wins, and over any referrer, as in
    Plausible: a tagged link says where it was shared, a referrer only which page linked.
    """
    tags = page.tags
    return tags.get("utm_source") or tags.get("source") or tags.get("ref") or ""


def _host_of(referrer: str) -> str:
    return referrer.split("/", 1)[0]
