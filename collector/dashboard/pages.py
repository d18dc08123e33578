"""The dashboard's two HTML pages: the sign-in form and the dashboard shell.

The shell is markup only: which site, which mode (signed in or a share link),
the site's timezone and what the geo data needs; the script reads these from
``data-`` attributes and asks the query API for everything else. Every value is
escaped here, and the script only ever writes data as text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape

from collector.dashboard.assets import asset_url


@dataclass(frozen=True)
class Shell:
    site: str
    sites: tuple[str, ...]  # the picker's choices (the one site of a share link)
    mode: str  # "key" (signed in) or "share"
    timezone: str
    city: bool  # city-level location is collected
    attribution: str  # the geo database's required credit, "" when none
    public_k: int = 1  # rows below it are folded (share links)
    token: str = ""  # the share token, for share links only


def _document(title: str, body: str, body_class: str) -> str:
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta name=\"color-scheme\" content=\"light dark\">"
        "<meta name=\"robots\" content=\"noindex, nofollow\">"
        f"<title>{escape(title)}</title>"
        "<link rel=\"icon\" href=\"data:,\">"
        f"<link rel=\"stylesheet\" href=\"{asset_url('dashboard.css')}\">"
        f"</head><body class=\"{body_class}\">{body}</body></html>\n"
    )


def sign_in_page(error: str = "", next_path: str = "") -> str:
    alert = (f'<p class="error" role="alert" id="sign-in-error">{escape(error)}</p>'
             if error else "")
    body = (
        '<main class="sign-in"><h1>Sign in to the dashboard</h1>'
        "<p>Use an API key for the site you want to see "
        "(<code>collector keys create --site example.com</code>). One key opens one site; "
        "sign in again with another key to add a site.</p>"
        f"{alert}"
        '<form method="post" action="/login">'
        '<label for="key">API key</label>'
        '<input id="key" name="key" type="password" autocomplete="off" required '
        'spellcheck="false" placeholder="ck_…"'
        + (' aria-describedby="sign-in-error" aria-invalid="true"' if error else "") + ">"
        f'<input type="hidden" name="next" value="{escape(next_path)}">'
        '<button type="submit">Sign in</button></form>'
        "<p class=\"note\">Signing in sets one cookie, for this dashboard only. "
        "Tracked visitors never get a cookie.</p></main>"
    )
    return _document("Sign in · Collector", body, "page-sign-in")


def dashboard_page(shell: Shell) -> str:
    attributes = {
        "data-site": shell.site,
        "data-sites": json.dumps(list(shell.sites)),
        "data-mode": shell.mode,
        "data-timezone": shell.timezone,
        "data-city": "1" if shell.city else "0",
        "data-attribution": shell.attribution,
        "data-public-k": str(shell.public_k),
    }
    if shell.token:
        attributes["data-token"] = shell.token
    data = " ".join(f'{name}="{escape(value)}"' for name, value in attributes.items())
    sign_out = ('<form method="post" action="/logout" class="sign-out">'
                f'<input type="hidden" name="site" value="{escape(shell.site)}">'
                '<button type="submit">Sign out</button></form>'
                if shell.mode == "key" else "")
    body = (
        '<a class="skip" href="#dashboard">Skip to the dashboard</a>'
        '<header class="topbar"><span class="brand">Collector</span>'
        '<span id="site-slot"></span>'
        '<span class="realtime" id="realtime" aria-live="polite"></span>'
        f"{sign_out}</header>"
        f'<main id="dashboard" tabindex="-1" {data}>'
        f"<h1 class=\"visually-hidden\">Analytics for {escape(shell.site)}</h1>"
        '<noscript><p class="error">The dashboard needs JavaScript; the same numbers are '
        "in the query API (POST /api/v2/query).</p></noscript></main>"
        f'<script type="module" src="{asset_url("dashboard.js")}"></script>'
    )
    return _document(f"{shell.site} · Collector", body, "page-dashboard")


def message_page(title: str, message: str) -> str:
    body = (f'<main class="sign-in"><h1>{escape(title)}</h1><p>{escape(message)}</p>'
            '<p><a href="/login">Sign in</a></p></main>')
    return _document(f"{title} · Collector", body, "page-message")
