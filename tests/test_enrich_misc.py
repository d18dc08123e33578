"""collector.enrich.screen and language: coarse screen classes and primary languages."""

from __future__ import annotations

import pytest

from collector.enrich import primary_language, screen_class


@pytest.mark.parametrize(
    ("width", "expected"),
    [
        (None, ""),
        (0, ""),
        (-5, ""),
        (320, "mobile"),
        (575, "mobile"),
        (576, "tablet"),
        (991, "tablet"),
        (992, "laptop"),
        (1439, "laptop"),
        (1440, "desktop"),
        (3840, "desktop"),
    ],
)
def test_screen_class(width: int | None, expected: str) -> None:
    assert screen_class(width) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("en-US,en;q=0.9", "en"),
        ("pt-BR", "pt"),
        ("PT-br", "pt"),
        ("en_GB", "en"),
        ("de", "de"),
        ("zh-Hant-TW,zh;q=0.8", "zh"),
        ("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", "fr"),
        ("de;q=0.5, fr;q=0.8", "fr"),
        ("*;q=0.5, es;q=0.4", "es"),
        ("en;q=0, nl;q=0.3", "nl"),
        ("ast", "ast"),
        ("*", ""),
        ("", ""),
        (None, ""),
        ("garbage!!", ""),
        ("i-klingon", ""),
        ("12-34", ""),
        (";q=1", ""),
        ("en;q=abc", ""),
    ],
)
def test_primary_language(value: str | None, expected: str) -> None:
    assert primary_language(value) == expected


def test_very_long_header_is_cut_not_cached_whole() -> None:
    assert primary_language("de," + "x" * 10_000) == "de"
