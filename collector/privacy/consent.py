"""Consent signals a browser sends on the visitor's behalf."""

from __future__ import annotations

from collections.abc import Mapping


def opted_out(headers: Mapping[str, str]) -> bool:
    """True when the visitor asked not to be tracked (Do Not Track or Global Privacy Control)."""
    # Promise: "You can opt-out of most tracking features" — DNT and GPC are honoured.
    return headers.get("dnt") == "1" or headers.get("sec-gpc") == "1"
