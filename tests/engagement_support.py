"""Driving engagement in a real browser: a paused clock, scrolling, hiding and blurring.

Headless Chromium never hides a page or takes its focus by itself; these scripts tell
the page so (``document.hidden``, ``visibilityState``, ``hasFocus``) and fire the event
the browser would fire. Time is Playwright's clock, paused: only ``fast_forward`` moves
``Date.now()``, so engaged times are exact.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

PAUSED_AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

HIDE = """() => {
  Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
  Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "hidden"});
  document.dispatchEvent(new Event("visibilitychange"));
}"""
SHOW = """() => {
  delete document.hidden;
  delete document.visibilityState;
  document.dispatchEvent(new Event("visibilitychange"));
}"""
BLUR = """() => { document.hasFocus = () => false; window.dispatchEvent(new Event("blur")); }"""
FOCUS = """() => { delete document.hasFocus; window.dispatchEvent(new Event("focus")); }"""


def pause_clock(page: Any) -> None:
    """Before the page loads: its clock stands still until the test moves it."""
    page.clock.install(time=PAUSED_AT - timedelta(minutes=1))
    page.clock.pause_at(PAUSED_AT)  # after its start: time never runs back


def depth(page: Any) -> int:
    """The percent of the page seen so far, as both trackers reckon it."""
    seen = page.evaluate("window.scrollY + window.innerHeight")
    return round(100 * seen / page.evaluate("document.scrollingElement.scrollHeight"))


def scroll_to(page: Any, y: int) -> None:
    page.evaluate(f"window.scrollTo(0, {y})")
    page.wait_for_function(f"window.scrollY == {y}", polling=20)
    page.wait_for_timeout(50)  # the scroll event comes with the next frame
