"""The headers every dashboard page carries, and the checks on its forms.

The pages load only this collector's own versioned assets: no inline script, no
third-party host, nothing a value from the data could turn into code. Share
links carry their token in the path, so no page sends a Referer anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.requests import Request

from collector.errors import Forbidden, InvalidField

# 'self' everywhere it is needed and nothing else; data: only for the favicon.
_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
           "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors {frames}")


def page_headers(embed_origins: Sequence[str] = ()) -> dict[str, str]:
    """Headers of an HTML page; ``embed_origins`` may frame it (share links only)."""
    frames = " ".join(embed_origins) if embed_origins else "'none'"
    headers = {
        "Content-Security-Policy": _POLICY.format(frames=frames),
        "X-Content-Type-Options": "nosniff",
        # A share token is in the URL: no page may hand it to another site. (Not
        # no-referrer: with it, browsers post forms with "Origin: null".)
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if not embed_origins:
        headers["X-Frame-Options"] = "DENY"  # for browsers that ignore frame-ancestors
    return headers


def check_same_origin(request: Request) -> None:
    """Refuse a form posted from another site (sign-in and sign-out change the cookie)."""
    origin = request.headers.get("origin")
    if origin == "null":
        raise Forbidden("the form was posted from an opaque origin", "origin")
    if origin is None:
        # Browsers send Origin with every cross-site POST; its absence means same-site
        # (or a non-browser client, which has no cookie to abuse).
        return
    host = request.headers.get("host", "")
    if urlsplit(origin).netloc != host:
        raise Forbidden("the form was posted from another site", "origin")


def normalize_origin(text: str) -> str:
    """``scheme://host[:port]`` of an origin allowed to embed a share link; 400 otherwise."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment or parts.username or any(
                character in text for character in " ;,'\""):
        raise InvalidField(f"not an origin (scheme://host[:port]): {text!r}", "embed_origin")
    return f"{parts.scheme}://{parts.netloc.lower()}"
