"""collector.acquisition: page, referrer, source and medium as ingest derives them, and the
channels they make, through the parser, the app and the demo generator."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from collector.acquisition import ArrivalReader
from collector.channels import channel_of
from collector.reports.auth import create_key
from collector.reports.demo import generate
from collector.settings import Settings
from collector.storage import Store
from tests.conftest import CHROME_UA, flush, running_app
from tests.reporting_data import make_event

READER = ArrivalReader.from_settings(Settings.from_env({}))
PAGE = "https://example.com/pricing"

# (page URL, referrer) -> (stored referrer, source, medium, channel)
ARRIVALS = [
    ((PAGE, None), ("", "", "direct", "Direct")),
    ((PAGE, "https://example.com/about"), ("", "", "direct", "Direct")),  # inside the site
    ((PAGE, "https://www.google.com/search?q=x"), ("google.com/search", "Google", "search",
                                                   "Organic Search")),
    ((PAGE + "?utm_source=google&utm_medium=cpc", "https://www.google.de/"),
     ("google.de", "Google", "search", "Paid Search")),
    ((PAGE + "?utm_source=google&utm_medium=cpc", None), ("", "Google", "search",
                                                          "Paid Search")),
    ((PAGE, "https://chatgpt.com/"), ("chatgpt.com", "ChatGPT", "ai-assistant",
                                      "AI Assistants")),
    ((PAGE + "?utm_source=chatgpt.com", None), ("", "ChatGPT", "ai-assistant",
                                                "AI Assistants")),
    ((PAGE + "?ref=Perplexity", None), ("", "Perplexity", "ai-assistant", "AI Assistants")),
    ((PAGE + "?source=www.claude.ai", None), ("", "Claude", "ai-assistant", "AI Assistants")),
    # A tag wins over the referrer, as in Plausible; an unknown tag keeps the referrer's class.
    ((PAGE + "?utm_source=chatgpt.com", "https://news.ycombinator.com/item?id=1"),
     ("news.ycombinator.com/item", "ChatGPT", "ai-assistant", "AI Assistants")),
    ((PAGE + "?ref=betalist", "https://betalist.com/p"),
     ("betalist.com/p", "betalist", "referral", "Referral")),
    ((PAGE + "?utm_source=notchatgpt.com", None), ("", "notchatgpt.com", "direct",
                                                   "Referral")),
    ((PAGE + "?ref=producthunt", None), ("", "producthunt", "direct", "Referral")),
    ((PAGE + "?utm_source=newsletter&utm_medium=email", None), ("", "newsletter", "direct",
                                                                "Email")),
    ((PAGE, "https://github.com/o/r"), ("github.com/o/r", "github.com", "referral",
                                        "Referral")),
]


@pytest.mark.parametrize(("urls", "expected"), ARRIVALS,
                         ids=[f"{url[len(PAGE):] or 'page'} from {referrer or 'nowhere'}"
                              for (url, referrer), _ in ARRIVALS])
def test_arrival_and_channel(urls: tuple[str, str | None],
                             expected: tuple[str, str, str, str]) -> None:
    stored = READER.read(*urls).event_fields()
    channel = channel_of(stored["referrer_source"], stored["referrer_medium"],
                         stored["utm_source"], stored["utm_medium"], stored["utm_campaign"])
    assert (stored["referrer"], stored["referrer_source"], stored["referrer_medium"],
            channel) == expected
    assert (stored["hostname"], stored["pathname"]) == ("example.com", "/pricing")


def test_test_events_cannot_be_given_derived_fields() -> None:
    with pytest.raises(TypeError, match="referrer_source"):
        make_event(0, 1, referrer_source="Google")


SITE = "channels.test"
# One visitor each: the visitor hash covers the user agent.
USER_AGENTS = [
    CHROME_UA,
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
]
VISITS = [  # (page URL, referrer)
    (f"https://{SITE}/", None),
    (f"https://{SITE}/", "https://www.google.com/"),
    (f"https://{SITE}/?utm_source=google&utm_medium=cpc&utm_campaign=brand",
     "https://www.google.com/"),
    (f"https://{SITE}/", "https://chatgpt.com/"),
    (f"https://{SITE}/docs?utm_source=chatgpt.com", None),
]


def test_channels_end_to_end_from_the_events_api(store: Store, engine_url: str) -> None:
    with running_app(store, engine_url) as client:
        for user_agent, (url, referrer) in zip(USER_AGENTS, VISITS, strict=True):
            response = client.post(
                "/api/event", headers={"User-Agent": user_agent, "Content-Type": "text/plain"},
                json={"n": "pageview", "u": url, "d": SITE, "r": referrer})
            assert response.status_code == 202 and "x-collector-dropped" not in response.headers
        flush(client)
        key = create_key(store, SITE)

        def breakdown(dimension: str) -> dict[str, int]:
            response = client.post("/api/v2/query", headers={"Authorization": f"Bearer {key}"},
                                   json={"site_id": SITE, "date_range": "all",
                                         "metrics": ["visits"], "dimensions": [dimension]})
            assert response.status_code == 200, response.text
            return {row["dimensions"][0]: row["metrics"][0] for row in response.json()["results"]}

        assert breakdown("visit:channel") == {"Direct": 1, "Organic Search": 1, "Paid Search": 1,
                                              "AI Assistants": 2}
        assert breakdown("visit:source") == {"Direct / None": 1, "Google": 2, "ChatGPT": 2}
    tagged = store.rows("SELECT referrer, referrer_source, referrer_medium, utm_source "
                        "FROM events WHERE site = {site:String} AND pathname = '/docs'",
                        {"site": SITE})
    assert tagged == [("", "ChatGPT", "ai-assistant", "chatgpt.com")]


def test_demo_traffic_is_what_ingest_would_store(store: Store) -> None:
    """Every kind of demo visit: its referrer and tags, read the way ingest reads them,
    give the stored source, medium and channel."""
    site = "demo-channels.test"
    generate(store, site, 3_000, 2, now=datetime.now(UTC))
    kinds = store.rows(
        "SELECT DISTINCT referrer, referrer_source, referrer_medium, utm_source, utm_medium, "
        "utm_campaign, channel FROM visits WHERE site = {site:String}", {"site": site})
    for referrer, source, medium, utm_source, utm_medium, utm_campaign, channel in kinds:
        tags = "&".join(f"{name}={value}" for name, value in (
            ("utm_source", utm_source), ("utm_medium", utm_medium),
            ("utm_campaign", utm_campaign)) if value)
        arrival = READER.read(f"https://{site}/?{tags}", f"https://{referrer}" if referrer
                              else None)
        assert (arrival.referrer, *arrival.source) == (referrer, source, medium)
        assert channel == channel_of(source, medium, utm_source, utm_medium, utm_campaign)
    assert {"Direct", "Organic Search", "Paid Search", "AI Assistants"} <= {
        kind[-1] for kind in kinds}
