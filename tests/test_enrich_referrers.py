"""collector.enrich.referrers and spam: referrer host → source/medium; spam blocklist."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.enrich import ReferrerClass, SpamList, classify_referrer, update_spam_list
from collector.enrich.referrers import KNOWN_REFERRERS, MEDIUMS
from collector.errors import CollectorError

SPAMMERS = (
    Path(__file__).resolve().parents[2] / "shared" / "testdata" / "referrers" / "spammers.txt"
)


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
def spam() -> SpamList:
    return SpamList.from_file(SPAMMERS)


def test_spam_list_loads_every_host(spam: SpamList) -> None:
    hosts = [line for line in SPAMMERS.read_text().splitlines() if line.strip()]
    assert len(spam) == len(set(hosts))


def test_spam_matches_host_and_subdomains_only(spam: SpamList) -> None:
    listed = next(line for line in SPAMMERS.read_text().splitlines() if line.count(".") == 1)
    assert spam.is_spam(listed)
    assert spam.is_spam(listed.upper())
    assert spam.is_spam("www." + listed)
    assert spam.is_spam("deep.sub." + listed)
    assert not spam.is_spam("not" + listed)
    assert not spam.is_spam(listed + ".example")
    assert not spam.is_spam("google.com")
    assert not spam.is_spam("")


def test_spam_list_from_hosts() -> None:
    spam = SpamList(["spam.com", " Other.Example. ", ""])
    assert len(spam) == 2
    assert spam.is_spam("a.spam.com") and spam.is_spam("other.example")
    assert not spam.is_spam("notspam.com")


def test_missing_spam_file_is_an_empty_list(tmp_path: Path) -> None:
    assert len(SpamList.from_file(None)) == 0
    assert len(SpamList.from_file(tmp_path / "absent.txt")) == 0
    assert not SpamList.from_file(None).is_spam("anything.com")


def test_update_spam_list(served: tuple[Path, str], tmp_path: Path) -> None:
    root, base = served
    (root / "spammers.txt").write_bytes(SPAMMERS.read_bytes())
    dest = tmp_path / "lists" / "spammers.txt"
    count = update_spam_list(dest, base + "/spammers.txt")
    assert count == len(SpamList.from_file(SPAMMERS))
    assert len(SpamList.from_file(dest)) == count
    assert sorted(p.name for p in dest.parent.iterdir()) == ["spammers.txt"]


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
