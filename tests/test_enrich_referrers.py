"""collector.enrich.referrers and spam: referrer host → source/medium; spam blocklist.

The spam list is tested on a small inline list, and on Matomo's real one when the
optional corpus ../shared/testdata/referrers is present (those tests skip without it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.enrich import ReferrerClass, SpamList, classify_referrer, update_spam_list
from collector.enrich.referrers import KNOWN_REFERRERS, MEDIUMS
from collector.enrich.spam import MINIMUM_HOSTS
from collector.errors import CollectorError
from tests.conftest import shared_testdata

# Shaped like Matomo's list: one host per line, some subdomains, a trailing newline.
INLINE_SPAM_LIST = """\
best-seo-offer.example
buttons-for-website.example
free-traffic.example
get-more-visitors.example
share.social-buttons.example
"""


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("", ("", "direct")),
        ("google.com", ("Google", "search")),
        ("www.google.com", ("Google", "search")),
        ("www.google.co.uk", ("Google", "search")),
        ("google.de", ("Google", "search")),
        ("google.com.br", ("Google", "search")),
        ("google.co.zz", ("Google", "search")),  # by rule, not listed
        ("news.google.com", ("Google News", "search")),
        ("maps.google.com", ("Google", "search")),
        ("mail.google.com", ("Gmail", "email")),
        ("gemini.google.com", ("Gemini", "ai-assistant")),
        ("www.bing.com", ("Bing", "search")),
        ("duckduckgo.com", ("DuckDuckGo", "search")),
        ("yandex.ru", ("Yandex", "search")),
        ("www.baidu.com", ("Baidu", "search")),
        ("www.ecosia.org", ("Ecosia", "search")),
        ("www.qwant.com", ("Qwant", "search")),
        ("search.naver.com", ("Naver", "search")),
        ("search.yahoo.com", ("Yahoo!", "search")),
        ("www.startpage.com", ("Startpage", "search")),
        ("search.brave.com", ("Brave Search", "search")),
        ("l.facebook.com", ("Facebook", "social")),
        ("m.facebook.com", ("Facebook", "social")),
        ("t.co", ("X", "social")),
        ("x.com", ("X", "social")),
        ("lnkd.in", ("LinkedIn", "social")),
        ("www.linkedin.com", ("LinkedIn", "social")),
        ("old.reddit.com", ("Reddit", "social")),
        ("some.deep.sub.reddit.com", ("Reddit", "social")),
        ("news.ycombinator.com", ("Hacker News", "social")),
        ("m.youtube.com", ("YouTube", "social")),
        ("bsky.app", ("Bluesky", "social")),
        ("mastodon.social", ("Mastodon", "social")),
        ("outlook.live.com", ("Outlook", "email")),
        ("mail.yahoo.com", ("Yahoo! Mail", "email")),
        ("chatgpt.com", ("ChatGPT", "ai-assistant")),
        ("chat.openai.com", ("ChatGPT", "ai-assistant")),
        ("www.perplexity.ai", ("Perplexity", "ai-assistant")),
        ("claude.ai", ("Claude", "ai-assistant")),
        ("copilot.microsoft.com", ("Microsoft Copilot", "ai-assistant")),
        ("GOOGLE.FR.", ("Google", "search")),
        ("www.example.org", ("example.org", "referral")),
        ("blog.example.org:8443", ("blog.example.org", "referral")),
        ("notgoogle.com", ("notgoogle.com", "referral")),
        ("t.co.evil.example", ("t.co.evil.example", "referral")),
    ],
)
def test_classify_referrer(host: str, expected: tuple[str, str]) -> None:
    assert classify_referrer(host) == ReferrerClass(*expected)


def test_table_is_large_and_clean() -> None:
    assert len(KNOWN_REFERRERS) >= 150
    assert {entry.medium for entry in KNOWN_REFERRERS.values()} <= MEDIUMS
    assert not any(host.startswith("www.") for host in KNOWN_REFERRERS)


# --- spam list --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spammers() -> Path:
    """Matomo's community list, from the optional corpus."""
    return shared_testdata("referrers", "spammers.txt")


@pytest.fixture
def inline_spam_file(tmp_path: Path) -> Path:
    path = tmp_path / "referrer-spam.txt"
    path.write_text(INLINE_SPAM_LIST, encoding="utf-8")
    return path


def test_inline_spam_list_loads_every_host(inline_spam_file: Path) -> None:
    assert len(SpamList.from_file(inline_spam_file)) == 5


def test_spam_list_loads_every_host(spammers: Path) -> None:
    hosts = [line for line in spammers.read_text().splitlines() if line.strip()]
    assert len(SpamList.from_file(spammers)) == len(set(hosts))


def _assert_matches_host_and_subdomains_only(spam: SpamList, listed: str) -> None:
    assert spam.is_spam(listed)
    assert spam.is_spam(listed.upper())
    assert spam.is_spam("www." + listed)
    assert spam.is_spam("deep.sub." + listed)
    assert not spam.is_spam("not" + listed)
    assert not spam.is_spam(listed + ".example")
    assert not spam.is_spam("google.com")
    assert not spam.is_spam("")


def test_inline_spam_matches_host_and_subdomains_only(inline_spam_file: Path) -> None:
    spam = SpamList.from_file(inline_spam_file)
    _assert_matches_host_and_subdomains_only(spam, "free-traffic.example")
    # A listed subdomain does not condemn its parent domain.
    assert spam.is_spam("share.social-buttons.example")
    assert not spam.is_spam("social-buttons.example")


def test_spam_matches_host_and_subdomains_only(spammers: Path) -> None:
    listed = next(line for line in spammers.read_text().splitlines() if line.count(".") == 1)
    _assert_matches_host_and_subdomains_only(SpamList.from_file(spammers), listed)


def test_spam_list_from_hosts() -> None:
    spam = SpamList(["spam.com", " Other.Example. ", ""])
    assert len(spam) == 2
    assert spam.is_spam("a.spam.com") and spam.is_spam("other.example")
    assert not spam.is_spam("notspam.com")


def test_missing_spam_file_is_an_empty_list(tmp_path: Path) -> None:
    assert len(SpamList.from_file(None)) == 0
    assert len(SpamList.from_file(tmp_path / "absent.txt")) == 0
    assert not SpamList.from_file(None).is_spam("anything.com")


def _assert_update_installs(list_text: bytes, served: tuple[Path, str], tmp_path: Path) -> int:
    root, base = served
    (root / "spammers.txt").write_bytes(list_text)
    dest = tmp_path / "lists" / "spammers.txt"
    count = update_spam_list(dest, base + "/spammers.txt")
    assert count == len(SpamList(list_text.decode().splitlines()))
    assert len(SpamList.from_file(dest)) == count
    assert sorted(p.name for p in dest.parent.iterdir()) == ["spammers.txt"]
    return count


def test_update_spam_list(served: tuple[Path, str], tmp_path: Path) -> None:
    # Just long enough to pass the plausibility check on the download's size.
    hosts = "".join(f"seo-offer-{number}.example\n" for number in range(MINIMUM_HOSTS))
    assert _assert_update_installs(hosts.encode(), served, tmp_path) == MINIMUM_HOSTS


def test_update_spam_list_with_the_real_list(
    served: tuple[Path, str], tmp_path: Path, spammers: Path
) -> None:
    assert _assert_update_installs(spammers.read_bytes(), served, tmp_path) > 2000


@pytest.mark.parametrize(
    "body",
    [b"", b"<html><body>rate limited</body></html>\n" * 500, b"only.com\nthree.com\nhosts.com\n"],
)
def test_update_spam_list_rejects_implausible_lists(
    served: tuple[Path, str], tmp_path: Path, body: bytes
) -> None:
    root, base = served
    (root / "bad.txt").write_bytes(body)
    dest = tmp_path / "spammers.txt"
    dest.write_text("kept.example\n")
    with pytest.raises(CollectorError):
        update_spam_list(dest, base + "/bad.txt")
    assert dest.read_text() == "kept.example\n"


def test_update_spam_list_reports_http_errors(served: tuple[Path, str], tmp_path: Path) -> None:
    _, base = served
    with pytest.raises(CollectorError, match="download failed"):
        update_spam_list(tmp_path / "spammers.txt", base + "/missing.txt")
