"""An event's page and where its visitor came from, read from the event's two URLs.

This is the one derivation of the stored hostname, pathname, referrer, source,
medium and campaign tags. ``Pipeline.process`` reads every event with it, and
the tests build their rows with it too, so the traffic reports see in a test is
the traffic ingest would have stored: a derivation bug cannot hide behind a
hand-written row.
"""

from __future__ import annotations

from typing import NamedTuple

from collector.enrich.referrers import ReferrerClass, classify_referrer, classify_tagged_source
from collector.privacy import CleanPage, PageUrlCleaner, clean_referrer
from collector.settings import Settings

# The tags that may name a source when there is no referrer, the first present wins.
SOURCE_TAGS = ("ref", "source", "utm_source")


class Arrival(NamedTuple):
    """An event's cleaned page, its referrer (host + path only) and the source they name."""

    page: CleanPage
    referrer: str
    source: ReferrerClass

    @property
    def referrer_host(self) -> str:
        return _host_of(self.referrer)

    def event_fields(self) -> dict[str, str]:
        """The ``Event`` fields the two URLs determine, by field name."""
        tag = self.page.tags.get  # one literal, no comprehension: this runs per event
        return {"hostname": self.page.hostname, "pathname": self.page.pathname,
                "referrer": self.referrer, "referrer_source": self.source.source,
                "referrer_medium": self.source.medium, "utm_source": tag("utm_source", ""),
                "utm_medium": tag("utm_medium", ""), "utm_campaign": tag("utm_campaign", ""),
                "utm_term": tag("utm_term", ""), "utm_content": tag("utm_content", "")}


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
        """The arrival of an event; raises InvalidField when ``url`` is no http(s) URL."""
        page = self._pages.clean(url, hash_mode)
        cleaned_referrer = clean_referrer(referrer, page.hostname, self._max_path_length)
        source = classify_referrer(_host_of(cleaned_referrer))
        if not source.source:  # no referrer: a campaign tag may name the source
            tags = page.tags
            source = classify_tagged_source(next(
                (tags[tag] for tag in SOURCE_TAGS if tags.get(tag)), ""))
        return Arrival(page, cleaned_referrer, source)


def _host_of(referrer: str) -> str:
    return referrer.split("/", 1)[0]
