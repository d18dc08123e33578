"""What is kept of page URLs and referrers: host and scrubbed path, campaign tags only."""

from __future__ import annotations

import pytest

from collector.errors import InvalidField
from collector.privacy import PageUrlCleaner, clean_referrer

CLEANER = PageUrlCleaner(("utm_*", "ref", "source"), scrub=True, max_length=512)


@pytest.mark.parametrize(("url", "hostname", "pathname"), [
    ("https://example.com/", "example.com", "/"),
    ("https://example.com", "example.com", "/"),
    ("https://WWW.Example.COM/Pricing", "example.com", "/Pricing"),
    ("http://blog.example.com/post/hello-world", "blog.example.com", "/post/hello-world"),
    ("https://example.com/search?q=secret+stuff&page=2", "example.com", "/search"),
    ("https://example.com/a#section-2", "example.com", "/a"),
    ("https://example.com/users/jane.doe@mail.example/settings", "example.com",
     "/users/:email/settings"),
    ("https://example.com/u/jane%40mail.example", "example.com", "/u/:email"),
    ("https://example.com/orders/12345678", "example.com", "/orders/:id"),
    ("https://example.com/orders/1234", "example.com", "/orders/1234"),
    ("https://example.com/invoice-9876543.pdf", "example.com", "/invoice-:id.pdf"),
    ("https://example.com/reset/3f2a9c1b7d4e8f60a1b2c3d4e5f60718", "example.com",
     "/reset/:token"),
    ("https://example.com/confirm/eyJhbGciOiJIUzI1NiJ9xK2abcDEF9", "example.com",
     "/confirm/:token"),
    ("https://example.com/doc/550e8400-e29b-41d4-a716-446655440000", "example.com",
     "/doc/:id"),
    ("https://example.com/blog/how-to-count-visitors-in-2024", "example.com",
     "/blog/how-to-count-visitors-in-2024"),
    ("https://example.com/caf%C3%A9/men%C3%BC", "example.com", "/café/menü"),
    ("https://example.com/日本語/ページ", "example.com", "/日本語/ページ"),
    ("https://example.com/p/" + "a" * 1000, "example.com", ("/p/" + "a" * 1000)[:512]),
    ("https://example.com:8443/port", "example.com", "/port"),
    ("https://user:pass@example.com/creds", "example.com", "/creds"),
    ("https://example.com/static/app.3f9a1c.js", "example.com", "/static/app.3f9a1c.js"),
    ("https://example.com/phone/+4915112345678", "example.com", "/phone/+:id"),
])
def test_page_urls(url: str, hostname: str, pathname: str) -> None:
    page = CLEANER.clean(url)
    assert (page.hostname, page.pathname) == (hostname, pathname)


def test_only_allow_listed_parameters_are_kept() -> None:
    page = CLEANER.clean("https://e.com/?utm_source=news&utm_Medium=email&q=me&ref=hn"
                         "&token=abc&utm_content=jane@mail.example")
    assert page.tags == {"utm_source": "news", "utm_medium": "email", "ref": "hn",
                         "utm_content": ":email"}


def test_fragment_kept_in_hash_mode_and_scrubbed() -> None:
    page = CLEANER.clean("https://e.com/app#/users/12345678", hash_mode=True)
    assert page.pathname == "/app#/users/:id"


def test_scrubbing_can_be_switched_off() -> None:
    cleaner = PageUrlCleaner(("utm_*",), scrub=False, max_length=512)
    assert cleaner.clean("https://e.com/orders/12345678").pathname == "/orders/12345678"


@pytest.mark.parametrize("url", ["data:text/html,<p>hi</p>", "http://[::1/"])
def test_not_a_page_url(url: str) -> None:
    with pytest.raises(InvalidField) as caught:
        CLEANER.clean(url)
    assert caught.value.field == "url"


@pytest.mark.parametrize(("url", "host", "path"), [
    ("app://localhost/login?utm_source=x", "localhost", "/login"),
    ("chrome-extension://abcdef/popup.html", "abcdef", "/popup.html"),
    ("ftp://e.com/x", "e.com", "/x"),
    ("about:config", "(none)", "config"),
    ("example.com/page", "(none)", "example.com/page"),
    ("https://", "(none)", "/"),
    ("https://e.com/path ", "e.com", "/path"),
    # A local path names the computer's user: only the file name is kept.
    ("file:///Users/jane/Sites/index.html", "(none)", "/index.html"),
])
def test_any_other_scheme_is_a_page_as_plausible_takes_it(url: str, host: str,
                                                           path: str) -> None:
    page = CLEANER.clean(url)
    assert (page.hostname, page.pathname) == (host, path)


@pytest.mark.parametrize(("referrer", "expected"), [
    (None, ""),
    ("", ""),
    ("https://www.google.com/", "google.com"),
    ("https://news.ycombinator.com/item?id=123", "news.ycombinator.com/item"),
    ("https://example.com/other-page", ""),
    ("https://shop.example.com/cart", ""),
    ("https://mail.example.org/u/jane@doe.example/inbox", "mail.example.org/u/:email/inbox"),
    ("android-app://com.google.android.gm/", "com.google.android.gm"),
    ("not a url", ""),
])
def test_referrers(referrer: str | None, expected: str) -> None:
    assert clean_referrer(referrer, "example.com") == expected
