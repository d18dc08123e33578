"""The dashboard's routes: sign-in and out, the signed-in dashboard, share links, assets.

Every page reads the store only to check a key or a session; the numbers come
from the query API, which the page's script calls like any other client.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from collector.dashboard.assets import PREFIX, asset_endpoint
from collector.dashboard.pages import Shell, dashboard_page, message_page, sign_in_page
from collector.dashboard.security import check_same_origin, page_headers
from collector.dashboard.sessions import (
    COOKIE_NAME,
    SESSION_SECONDS,
    session_grants,
    sign_in,
    without_site,
)
from collector.errors import ClientError, TooManyRequests
from collector.operations.compliance import geo_database_statement
from collector.privacy.client_ip import ClientAddressResolver
from collector.reports.auth import SHARE, find_key
from collector.reports.service import Reports
from collector.sites import domain_of

MAX_FORM_BYTES = 4096


def dashboard_routes() -> list[Route]:
    return [
        Route("/", _home, methods=["GET"]),
        Route("/login", _sign_in_form, methods=["GET"]),
        Route("/login", _sign_in, methods=["POST"]),
        Route("/logout", _sign_out, methods=["POST"]),
        Route("/dashboard", _home, methods=["GET"]),
        Route("/dashboard/{site}", _dashboard, methods=["GET"]),
        Route("/share/{token}", _share, methods=["GET"]),
        Route(PREFIX + "/{version}/{name}", asset_endpoint, methods=["GET", "HEAD"]),
    ]


async def _home(request: Request) -> Response:
    grants = await run_in_threadpool(session_grants, _reports(request).store,
                                     request.cookies.get(COOKIE_NAME))
    if not grants:
        return RedirectResponse("/login", 303)
    return RedirectResponse(f"/dashboard/{quote(grants[-1].site)}", 303)


async def _sign_in_form(request: Request) -> Response:
    return _html(sign_in_page(next_path=_safe_next(request.query_params.get("next", ""))))


async def _sign_in(request: Request) -> Response:
    check_same_origin(request)
    form = await _form(request)
    try:
        # Failed keys count against the client, as on the API: no guessing here either.
        grant = await request.app.state.rate_limits.checked_token(
            request, _reports(request).store, form.get("key", "").strip())
        cookie = await run_in_threadpool(sign_in, _reports(request).store, grant,
                                         request.cookies.get(COOKIE_NAME))
    except ClientError as error:
        page = _html(sign_in_page(error.reason, _safe_next(form.get("next", ""))),
                     error.status_code)
        if isinstance(error, TooManyRequests):
            page.headers["Retry-After"] = str(error.retry_after)
        return page
    target = _safe_next(form.get("next", "")) or f"/dashboard/{quote(grant.site)}"
    if not target.startswith(f"/dashboard/{quote(grant.site)}"):
        target = f"/dashboard/{quote(grant.site)}"
    response = RedirectResponse(target, 303)
    _set_cookie(request, response, cookie, SESSION_SECONDS)
    return response


async def _sign_out(request: Request) -> Response:
    """Sign out of the site named in the form (all sites without one)."""
    check_same_origin(request)
    form = await _form(request)
    site = form.get("site", "").strip().lower()
    cookie = request.cookies.get(COOKIE_NAME)
    remaining = (await run_in_threadpool(without_site, _reports(request).store, cookie, site)
                 if site and cookie else "")
    response = RedirectResponse("/dashboard" if remaining else "/login", 303)
    if remaining:
        _set_cookie(request, response, remaining, SESSION_SECONDS)
    else:
        response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict",
                               secure=_is_https(request))
    return response


async def _dashboard(request: Request) -> Response:
    site = request.path_params["site"].strip().lower()
    reports = _reports(request)
    grants = await run_in_threadpool(session_grants, reports.store,
                                     request.cookies.get(COOKIE_NAME))
    if not any(grant.site == site for grant in grants):
        return RedirectResponse(f"/login?next={quote(request.url.path)}", 303)
    shell = await run_in_threadpool(_shell, request, site, "key",
                                    tuple(grant.site for grant in grants))
    return _html(dashboard_page(shell))


async def _share(request: Request) -> Response:
    token = request.path_params["token"]
    reports = _reports(request)
    try:
        grant = await request.app.state.rate_limits.checked_token(request, reports.store, token)
    except TooManyRequests:
        raise
    except ClientError:
        grant = None
    if grant is None or grant.kind != SHARE:
        return _html(message_page("Link not valid", "This share link is unknown or was "
                                  "revoked. Ask the site's owner for a new one."), 404)
    key = await run_in_threadpool(find_key, reports.store, grant.key_id)
    origins = key.embed_origins if key else ()
    shell = await run_in_threadpool(_shell, request, grant.site, "share", (grant.site,), token)
    return _html(dashboard_page(shell), embed_origins=origins)


def _shell(request: Request, site: str, mode: str, sites: tuple[str, ...],
           token: str = "") -> Shell:
    reports = _reports(request)
    settings = request.app.state.settings
    context = reports.site_contexts.for_site(site, SHARE)
    return Shell(site=site, sites=sites, mode=mode, timezone=context.timezone,
                 city=settings.geo_city, attribution=_attribution(request),
                 public_k=context.k, token=token)


def _attribution(request: Request) -> str:
    """The geo database's credit (DB-IP's licence requires it wherever its data shows)."""
    state = request.app.state
    if not hasattr(state, "geo_attribution"):
        state.geo_attribution = geo_database_statement(state.settings).get("attribution") or ""
    return str(state.geo_attribution)


def _reports(request: Request) -> Reports:
    reports: Reports = request.app.state.reports
    return reports


def _html(body: str, status: int = 200, embed_origins: tuple[str, ...] = ()) -> HTMLResponse:
    return HTMLResponse(body, status, headers=page_headers(embed_origins))


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    parsed = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    return {name: values[0] for name, values in parsed.items()}


def _safe_next(path: str) -> str:
    """Only a dashboard path of this collector: never an open redirect."""
    if not path.startswith("/dashboard/") or "//" in path or "\\" in path:
        return ""
    try:
        domain_of(path.removeprefix("/dashboard/").split("?")[0], "next")
    except ClientError:
        return ""
    return path


def _set_cookie(request: Request, response: Response, value: str, max_age: int) -> None:
    response.set_cookie(COOKIE_NAME, value, max_age=max_age, path="/", httponly=True,
                        samesite="strict", secure=_is_https(request))


def _is_https(request: Request) -> bool:
    """HTTPS here, or at a trusted proxy that says so."""
    if request.url.scheme == "https":
        return True
    resolver: Any = getattr(request.app.state, "dashboard_proxies", None)
    if resolver is None:
        resolver = ClientAddressResolver(request.app.state.settings.trusted_proxies)
        request.app.state.dashboard_proxies = resolver
    peer = request.client.host if request.client else None
    return bool(resolver.trusts(peer)
                and request.headers.get("x-forwarded-proto", "").lower() == "https")
