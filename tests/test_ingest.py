"""Parsing the Plausible Events API body: both name styles, and every malformed class."""

from __future__ import annotations

import pytest

from collector.errors import InvalidField, PayloadTooLarge
from collector.ingest import parse_event

LIMIT = 65536


def test_short_names_as_the_tracker_sends_them() -> None:
    event = parse_event(
        b'{"n":"pageview","u":"https://example.com/a","d":"example.com","r":"https://t.co/x",'
        b'"w":1280,"h":1,"i":false,"p":"{\\"plan\\":\\"pro\\",\\"n\\":3}"}', LIMIT)
    assert event.name == "pageview"
    assert event.url == "https://example.com/a"
    assert event.domains == ["example.com"]
    assert event.referrer == "https://t.co/x"
    assert event.screen_width == 1280
    assert event.hash_mode is True
    assert event.interactive is False
    assert (event.prop_keys, event.prop_values) == (["plan", "n"], ["pro", "3"])


def test_long_names_of_the_documented_api() -> None:
    event = parse_event(
        b'{"name":"Signup","url":"https://example.com/","domain":"Example.com,www.b.org",'
        b'"props":{"ok":true,"skip":null},"interactive":true}', LIMIT)
    assert event.name == "Signup"
    assert event.domains == ["example.com", "b.org"]
    assert (event.prop_keys, event.prop_values) == (["ok"], ["true"])
    assert event.interactive is True


def test_engagement_fields() -> None:
    event = parse_event(b'{"n":"engagement","u":"https://e.com/","d":"e.com","sd":55,"e":4200}',
                        LIMIT)
    assert (event.scroll_depth, event.engaged_ms) == (55, 4200)


@pytest.mark.parametrize(("body", "field"), [
    (b"", "body"),
    (b"not json", "body"),
    (b"[1,2]", "body"),
    (b'{"u":"https://e.com/","d":"e.com"}', "name"),
    (b'{"n":"pageview","d":"e.com"}', "url"),
    (b'{"n":"pageview","u":"https://e.com/"}', "domain"),
    (b'{"n":5,"u":"https://e.com/","d":"e.com"}', "name"),
    (b'{"n":"x","u":"https://e.com/","d":"not a domain!"}', "domain"),
    (b'{"n":"x","u":"https://e.com/","d":"e.com","w":"wide"}', "screen_width"),
    (b'{"n":"x","u":"https://e.com/","d":"e.com","w":-5}', "screen_width"),
    (b'{"n":"x","u":"https://e.com/","d":"e.com","i":"maybe"}', "interactive"),
    (b'{"n":"x","u":"https://e.com/","d":"e.com","p":[1]}', "props"),
    (b'{"n":"x","u":"https://e.com/","d":"e.com","p":"{broken"}', "props"),
    (b'{"n":"x","u":"https://e.com/","d":"e.com","p":{"a":{"nested":1}}}', "props"),
    (b'{"n":"' + b"x" * 200 + b'","u":"https://e.com/","d":"e.com"}', "name"),
    (b'{"n":"x","u":"https://e.com/","d":"e.com","sd":101}', "scroll_depth"),
])
def test_malformed_input_names_the_field(body: bytes, field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_event(body, LIMIT)
    assert caught.value.field == field


def test_too_many_props() -> None:
    props = ",".join(f'"k{i}":"v"' for i in range(31))
    with pytest.raises(InvalidField, match="more than 30"):
        parse_event(('{"n":"x","u":"https://e.com/","d":"e.com","p":{' + props + "}}").encode(),
                    LIMIT)


def test_body_over_the_limit() -> None:
    with pytest.raises(PayloadTooLarge):
        parse_event(b"{" + b" " * 100 + b"}", 50)
