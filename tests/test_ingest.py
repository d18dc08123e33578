"""Parsing the Plausible Events API body: both name styles, what is dropped, what is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from collector.errors import InvalidField, PayloadTooLarge
from collector.ingest import MAX_ENGAGEMENT_MS, IncomingEvent, parse_event, props_with_path

LIMIT = 65536
BASE = {"n": "pageview", "u": "https://e.com/", "d": "e.com"}


def parsed(**fields: Any) -> IncomingEvent:
    body = {**BASE, **fields}
    return parse_event(json.dumps({key: value for key, value in body.items()
                                   if value is not ...}).encode(), LIMIT)


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
    assert (event.revenue_amount, event.revenue_currency) == (0, "")


def test_long_names_of_the_documented_api() -> None:
    event = parse_event(
        b'{"name":"Signup","url":"https://example.com/","domain":"Example.com,www.b.org",'
        b'"props":{"ok":true,"skip":null},"interactive":true,"hashMode":1}', LIMIT)
    assert event.name == "Signup"
    assert event.domains == ["example.com", "b.org"]
    assert (event.prop_keys, event.prop_values) == (["ok"], ["true"])
    assert event.interactive is True
    assert event.hash_mode is True


def test_a_short_name_that_is_null_or_false_gives_way_to_the_long_one() -> None:
    event = parsed(n=None, name="Signup", p=False, props={"a": 1}, d=None, domain="x.org")
    assert (event.name, event.prop_keys, event.domains) == ("Signup", ["a"], ["x.org"])


def test_props_may_come_as_meta() -> None:
    assert parsed(m={"a": "1"}, p={"b": "2"}).prop_keys == ["a"]
    assert parsed(meta='{"c": "3"}').prop_keys == ["c"]


@pytest.mark.parametrize("props", [[1], "{broken", '"show-more:button"', 7, '["a"]',
                                   '{"a":' * 40 + "1" + "}" * 40])
def test_props_that_are_no_object_are_dropped_and_the_event_kept(props: Any) -> None:
    event = parsed(p=props)
    assert (event.prop_keys, event.prop_values) == ([], [])


def test_prop_values_plausible_cannot_keep_are_dropped_one_by_one() -> None:
    event = parsed(p={"nested": {"a": 1}, "list": ["x"], "none": None, "blank": "   ",
                      "": "no key", "  ": "blank key", "flag": False, "count": 12, "ok": "y"})
    assert (event.prop_keys, event.prop_values) == (["flag", "count", "ok"],
                                                    ["false", "12", "y"])


def test_props_past_the_thirtieth_are_dropped() -> None:
    event = parsed(p={f"k{i}": "v" for i in range(50)})
    assert event.prop_keys == [f"k{i}" for i in range(30)]


def test_the_goals_plausible_reports_by_page_get_a_path_prop() -> None:
    assert props_with_path(parsed(n="404", p={"x": "1"}), "/missing") == (
        ["path", "x"], ["/missing", "1"])
    assert props_with_path(parsed(n="404", p={"path": "/sent"}), "/missing") == (
        ["path"], ["/sent"])
    assert props_with_path(parsed(n="Signup"), "/join") == ([], [])
    full = props_with_path(parsed(n="Form: Submission", p={f"k{i}": "v" for i in range(30)}),
                           "/form")
    assert len(full[0]) == 30 and full[0][0] == "path"


def test_a_numeric_event_name_is_its_text() -> None:
    assert parsed(n=404).name == "404"


def test_the_domain_defaults_to_the_url_host() -> None:
    assert parsed(d=..., u="https://www.Shop.example/cart").domains == ["shop.example"]
    assert parsed(d=["e.com"], u="https://a.example/").domains == ["a.example"]


def test_names_that_are_no_domain_name_no_site() -> None:
    assert parsed(d="e.com,not a domain!, ,www.b.org").domains == ["e.com", "b.org"]
    assert parsed(d="hostile.test\u0000").domains == []


@pytest.mark.parametrize("url", ["app://localhost/login", "chrome-extension://abc/popup.html",
                                 "about:config", "/relative", "file:///android_asset/index.html",
                                 "javascript:void(0)"])
def test_urls_of_any_scheme_but_data_are_taken(url: str) -> None:
    assert parsed(u=url).url == url


def test_a_long_referrer_is_cut_and_one_that_is_no_text_ignored() -> None:
    assert parsed(r="https://r.example/" + "a" * 3000).referrer == (
        "https://r.example/" + "a" * 3000)[:2000]
    assert parsed(r=5).referrer == ""


@pytest.mark.parametrize(("fields", "width"), [
    ({"w": 1280}, 1280), ({"w": "wide"}, None), ({"w": -5}, None), ({"w": 1e300}, None),
    ({"screen_width": 375.0}, 375),
])
def test_a_screen_width_that_is_no_width_is_ignored(fields: dict[str, Any],
                                                    width: int | None) -> None:
    assert parsed(**fields).screen_width == width


@pytest.mark.parametrize(("fields", "interactive"), [
    ({"i": False}, False), ({"interactive": False}, False), ({"i": 0}, False),
    ({"i": "maybe"}, True), ({}, True),
])
def test_interactive_is_a_boolean_or_the_default(fields: dict[str, Any],
                                                 interactive: bool) -> None:
    assert parsed(**fields).interactive is interactive


@pytest.mark.parametrize(("fields", "expected"), [
    ({"sd": 55, "e": 4200}, (55, 4200)),
    ({"sd": 140}, (100, 0)),
    ({"sd": "40"}, (40, 0)),
    ({"e": "900"}, (0, 900)),
    ({"sd": -1, "e": 10}, (0, 10)),
    ({"sd": "x", "e": 86_400_000}, (0, MAX_ENGAGEMENT_MS)),
])
def test_engagement_fields(fields: dict[str, Any], expected: tuple[int, int]) -> None:
    event = parsed(n="engagement", **fields)
    assert (event.scroll_depth, event.engaged_ms) == expected


def test_engagement_fields_of_other_events_are_ignored() -> None:
    event = parsed(sd=10, e=500)
    assert (event.scroll_depth, event.engaged_ms) == (0, 0)
    assert parsed(sd="long", e=-1).name == "pageview"


@pytest.mark.parametrize(("revenue", "expected"), [
    ({"amount": 20.2, "currency": "EUR"}, (20_200_000, "EUR")),
    ({"amount": 20, "currency": "USD"}, (20_000_000, "USD")),
    ({"amount": "12.3", "currency": "USD"}, (12_300_000, "USD")),
    ('{"amount": 1.5, "currency": "JPY"}', (1_500_000, "JPY")),
    ({"amount": "0.0000005", "currency": "USD"}, (0, "USD")),
    ({"amount": -4.99, "currency": "GBP"}, (-4_990_000, "GBP")),
])
def test_revenue_in_millionths(revenue: Any, expected: tuple[int, str]) -> None:
    for name in ("$", "revenue"):
        event = parsed(**{name: revenue})
        assert (event.revenue_amount, event.revenue_currency) == expected


@pytest.mark.parametrize("revenue", [
    {"amount": 1233.2, "currency": "EEEE"}, {"amount": 10, "currency": "usd"},
    {"amount": "1831d", "currency": "USD"}, {"amount": "NaN", "currency": "USD"},
    {"amount": True, "currency": "USD"}, {"amount": "1e40", "currency": "USD"},
    {"amount": 5}, {"currency": "USD"}, {"amount": 5, "currency": ["USD"]}, "{broken", 12,
])
def test_revenue_that_is_no_amount_in_a_currency_is_dropped(revenue: Any) -> None:
    event = parsed(**{"$": revenue})
    assert (event.revenue_amount, event.revenue_currency) == (0, "")


@pytest.mark.parametrize(("body", "field"), [
    (b"", "body"),
    (b"not json", "body"),
    (b"[1,2]", "body"),
    (b'"<script>"', "body"),
    (b'{"u":"https://e.com/","d":"e.com"}', "name"),
    (b'{"n":"","u":"https://e.com/","d":"e.com"}', "name"),
    (b'{"n":1.5,"u":"https://e.com/","d":"e.com"}', "name"),
    (b'{"n":["a"],"u":"https://e.com/","d":"e.com"}', "name"),
    (b'{"n":"' + b"x" * 200 + b'","u":"https://e.com/","d":"e.com"}', "name"),
    (b'{"n":"pageview","d":"e.com"}', "url"),
    (b'{"n":"pageview","u":5,"d":"e.com"}', "url"),
    (b'{"n":"pageview","u":"https://e.com/' + b"a" * 2000 + b'","d":"e.com"}', "url"),
    (b'{"n":"pageview","u":"about:config"}', "domain"),
    (b'{"n":"pageview","u":"https://e.com/","d":"  "}', "domain"),
    (b'{"n":"pageview","u":"https://e.com/","d":",,"}', "domain"),
    (b'{"n":"x","u":"https://e.com/","d":"e.com","h":"hash"}', "hashMode"),
    (b'{"n":"x","u":"https://e.com/","d":"e.com","p":{"' + b"k" * 301 + b'":"v"}}', "props"),
    (b'{"n":"x","u":"https://e.com/","d":"e.com","p":{"k":"' + b"v" * 2001 + b'"}}', "props"),
    (b'{"n":"engagement","u":"https://e.com/","d":"e.com"}', "engagement_time"),
    (b'{"n":"engagement","u":"https://e.com/","d":"e.com","sd":-1,"e":-5}', "engagement_time"),
])
def test_what_leaves_no_event_is_refused_naming_the_field(body: bytes, field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_event(body, LIMIT)
    assert caught.value.field == field


def test_a_prop_value_is_measured_in_bytes() -> None:
    assert parsed(p={"k": "é" * 1000}).prop_values == ["é" * 1000]  # 2,000 bytes
    with pytest.raises(InvalidField):
        parsed(p={"k": "é" * 1001})


def test_body_over_the_limit() -> None:
    with pytest.raises(PayloadTooLarge):
        parse_event(b"{" + b" " * 100 + b"}", 50)
