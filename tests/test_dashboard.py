"""The dashboard's server side: sign-in sessions, share links, headers, assets, the
property-key list. What a browser shows is in tests/test_dashboard_browser.py."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from collector.dashboard import sessions
from collector.dashboard.assets import VERSION, asset_url
from collector.dashboard.security import normalize_origin
from collector.errors import InvalidField
from collector.reports.auth import SHARE, create_key, key_id_of, revoke_key
from collector.reports.thresholds import set_thresholds
from collector.sites import add_site
from collector.storage import Store
from tests.conftest import CHROME_UA, flush, running_app

SITE = "dash.example"
OTHER_SITE = "other-dash.example"
ORIGIN = "http://testserver"
TOTALS = {"site_id": SITE, "date_range": "7d", "metrics": ["visitors", "pageviews"]}


@pytest.fixture(scope="module")
def client(store: Store, engine_url: str) -> Iterator[TestClient]:
    add_site(store, SITE, "Europe/Berlin")
    add_site(store, OTHER_SITE)
    with running_app(store, engine_url) as running:
        for number, (path, props) in enumerate([
                ("/", {}), ("/pricing", {"plan": "pro"}), ("/pricing", {"plan": "free"}),
                ("/signup", {"plan": "pro", "rare_key": "x"})]):
            sent = running.post("/api/event", json={
                "n": "Signup" if props else "pageview", "u": f"https://{SITE}{path}",
                "d": SITE, "p": props},
                headers={"User-Agent": f"{CHROME_UA} Visitor/{number}"})
            assert sent.status_code == 202, sent.text
        flush(running)
        yield running


@pytest.fixture(scope="module")
def key(store: Store) -> str:
    return create_key(store, SITE)


def sign_in(client: TestClient, key: str, **headers: str) -> Any:
    response = client.post("/login", data={"key": key}, follow_redirects=False,
                           headers={"Origin": ORIGIN, **headers})
    client.cookies.clear()  # each test sends the cookie it means to, explicitly
    return response


def with_cookie(value: str) -> dict[str, str]:
    return {"Cookie": f"{sessions.COOKIE_NAME}={value}"}


def signed_in(client: TestClient, key: str) -> str:
    response = sign_in(client, key)
    assert response.status_code == 303, response.text
    return str(response.cookies[sessions.COOKIE_NAME])


def test_sign_in_sets_one_http_only_strict_cookie_and_opens_the_site(
        client: TestClient, key: str) -> None:
    response = sign_in(client, key)
    assert response.status_code == 303
    assert response.headers["location"] == f"/dashboard/{SITE}"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{sessions.COOKIE_NAME}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
    assert key.split("_", 2)[2] not in cookie  # the secret itself is never in the cookie
    page = client.get(f"/dashboard/{SITE}", follow_redirects=False,
                      headers=with_cookie(response.cookies[sessions.COOKIE_NAME]))
    assert page.status_code == 200
    assert f'data-site="{SITE}"' in page.text and 'data-timezone="Europe/Berlin"' in page.text


def test_the_cookie_is_secure_over_https_and_behind_a_trusted_proxy(
        store: Store, engine_url: str, key: str) -> None:
    with running_app(store, engine_url) as plain:
        https = TestClient(plain.app, base_url="https://testserver")
        secure = https.post("/login", data={"key": key}, follow_redirects=False,
                            headers={"Origin": "https://testserver"})
        assert "Secure" in secure.headers["set-cookie"]
        # Forwarded proto counts only from a trusted proxy.
        forwarded = sign_in(plain, key, **{"X-Forwarded-Proto": "https"})
        assert "Secure" not in forwarded.headers["set-cookie"]
    proxy = ipaddress.ip_network("203.0.113.0/24")  # the test client's address
    with running_app(store, engine_url, trusted_proxies=(proxy,)) as proxied:
        forwarded = sign_in(proxied, key, **{"X-Forwarded-Proto": "https"})
        assert "Secure" in forwarded.headers["set-cookie"]


def test_wrong_keys_and_share_tokens_do_not_sign_in(client: TestClient, store: Store) -> None:
    wrong = sign_in(client, "ck_nothing_here")
    assert wrong.status_code == 401 and 'id="sign-in-error"' in wrong.text
    assert "set-cookie" not in wrong.headers
    share = sign_in(client, create_key(store, SITE, SHARE))
    assert share.status_code == 401 and "/share/" in share.text


def test_a_cross_site_form_cannot_sign_in_or_out(client: TestClient, key: str) -> None:
    assert sign_in(client, key, Origin="https://evil.example").status_code == 403
    assert sign_in(client, key, Origin="null").status_code == 403
    out = client.post("/logout", headers={"Origin": "https://evil.example"},
                      follow_redirects=False)
    assert out.status_code == 403


def test_next_is_a_dashboard_path_of_the_signed_in_site_never_another_host(
        client: TestClient, key: str) -> None:
    for target in ("https://evil.example/", "//evil.example/dashboard/x", "/dashboard/%2F%2Fx"):
        response = client.post("/login", data={"key": key, "next": target},
                               headers={"Origin": ORIGIN}, follow_redirects=False)
        assert response.headers["location"] == f"/dashboard/{SITE}"
    kept = client.post("/login", data={"key": key, "next": f"/dashboard/{SITE}?period=7d"},
                       headers={"Origin": ORIGIN}, follow_redirects=False)
    assert kept.headers["location"] == f"/dashboard/{SITE}?period=7d"


def test_the_session_reads_its_sites_reports_only(client: TestClient, key: str) -> None:
    cookie = with_cookie(signed_in(client, key))
    answer = client.post("/api/v2/query", json=TOTALS, headers=cookie)
    # Four visitors: one pageview, three Signup events.
    assert answer.status_code == 200 and answer.json()["results"][0]["metrics"] == [4, 1]
    other = client.post("/api/v2/query", json={**TOTALS, "site_id": OTHER_SITE}, headers=cookie)
    assert other.status_code == 403 and other.json()["field"] == "site_id"
    realtime = client.get(f"/api/v1/stats/realtime/visitors?site_id={SITE}", headers=cookie)
    assert realtime.status_code == 200 and realtime.json() == 4
    drops = client.post("/api/v2/drops", json={"site_id": SITE, "date_range": "7d"},
                        headers=cookie)
    assert drops.status_code == 200
    assert client.post("/api/v2/query", json=TOTALS,
                       headers=with_cookie("nope")).status_code == 401
    assert client.get(f"/dashboard/{OTHER_SITE}", headers=cookie,
                      follow_redirects=False).headers["location"].startswith("/login?next=")


def test_one_cookie_holds_several_sites_and_signing_out_of_one_keeps_the_others(
        client: TestClient, store: Store, key: str) -> None:
    first = signed_in(client, key)
    second_key = create_key(store, OTHER_SITE)
    both = sign_in(client, second_key, **with_cookie(first))
    cookie = str(both.cookies[sessions.COOKIE_NAME])
    page = client.get(f"/dashboard/{SITE}", headers=with_cookie(cookie))
    assert f'data-sites="[&quot;{SITE}&quot;, &quot;{OTHER_SITE}&quot;]"' in page.text
    out = client.post("/logout", data={"site": OTHER_SITE}, follow_redirects=False,
                      headers={"Origin": ORIGIN, **with_cookie(cookie)})
    assert out.headers["location"] == "/dashboard"
    remaining = str(out.cookies[sessions.COOKIE_NAME])
    assert [grant.site for grant in sessions.session_grants(store, remaining)] == [SITE]
    last = client.post("/logout", data={"site": SITE}, follow_redirects=False,
                       headers={"Origin": ORIGIN, **with_cookie(remaining)})
    assert last.headers["location"] == "/login"
    assert 'Max-Age=0' in last.headers["set-cookie"]


def test_revoking_the_key_ends_its_sessions_and_forged_or_expired_ones_fail(
        client: TestClient, store: Store) -> None:
    token = create_key(store, SITE, label="to revoke")
    cookie = signed_in(client, token)
    assert sessions.session_grants(store, cookie)[0].site == SITE
    key_id, expires, mac = cookie.split(".")
    forged = f"{key_id}.{int(expires) + 10 ** 6}.{mac}"
    assert sessions.session_grants(store, forged) == []
    assert sessions.session_grants(store, cookie, now=int(expires) + 1) == []
    revoke_key(store, key_id_of(token))
    assert sessions.session_grants(store, cookie) == []
    assert client.post("/api/v2/query", json=TOTALS,
                       headers=with_cookie(cookie)).status_code == 401


def test_pages_carry_a_strict_policy_and_no_inline_script(client: TestClient, key: str) -> None:
    page = client.get(f"/dashboard/{SITE}",
                      headers=with_cookie(signed_in(client, key)))
    for response in (page, client.get("/login")):
        policy = response.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "'unsafe-inline'" not in policy
        assert "frame-ancestors 'none'" in policy and response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", response.text, re.S)
        assert all('src="/dashboard/assets/' in attributes and not body
                   for attributes, body in scripts)
        assert "http://" not in response.text and "https://" not in response.text


def test_assets_are_versioned_immutable_and_old_versions_are_gone(client: TestClient) -> None:
    url = asset_url("dashboard.js")
    assert url == f"/dashboard/assets/{VERSION}/dashboard.js"
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "immutable" in response.headers["cache-control"]
    again = client.get(url, headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    assert client.get("/dashboard/assets/0123456789ab/dashboard.js").status_code == 404
    assert client.get(f"/dashboard/assets/{VERSION}/nothing.js").status_code == 404
    # The script imports its chart module relatively: both must share the version.
    assert client.get(url.replace("dashboard.js", "chart.js")).status_code == 200


def test_a_share_link_opens_read_only_and_may_be_embedded_on_listed_origins(
        client: TestClient, store: Store, key: str) -> None:
    token = create_key(store, SITE, SHARE, embed_origins=("https://blog.example",))
    page = client.get(f"/share/{token}")
    assert page.status_code == 200
    assert 'data-mode="share"' in page.text and f'data-token="{token}"' in page.text
    assert "Sign out" not in page.text
    assert "frame-ancestors https://blog.example" in page.headers["content-security-policy"]
    assert "x-frame-options" not in page.headers
    plain = client.get(f"/share/{create_key(store, SITE, SHARE)}")
    assert "frame-ancestors 'none'" in plain.headers["content-security-policy"]
    assert client.get(f"/share/{key}").status_code == 404  # an API key is not a share link
    assert client.get("/share/cs_nothing_here").status_code == 404
    revoked = create_key(store, SITE, SHARE)
    revoke_key(store, key_id_of(revoked))
    assert client.get(f"/share/{revoked}").status_code == 404


def test_embedding_origins_are_checked(store: Store) -> None:
    assert normalize_origin("https://Blog.Example:8443/") == "https://blog.example:8443"
    for bad in ("blog.example", "javascript:alert(1)", "https://a.example/path",
                "https://a.example; script-src *", "https://*.example'"):
        with pytest.raises(InvalidField):
            normalize_origin(bad)
    with pytest.raises(InvalidField):
        create_key(store, SITE, embed_origins=("https://blog.example",))  # API keys: never


def test_signing_in_is_needed_for_the_dashboard(client: TestClient) -> None:
    response = client.get(f"/dashboard/{SITE}", follow_redirects=False)
    assert response.headers["location"] == f"/login?next=/dashboard/{SITE}"
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    form = client.get(f"/login?next=/dashboard/{SITE}")
    assert f'name="next" value="/dashboard/{SITE}"' in form.text


def test_the_shell_escapes_what_it_is_given(store: Store, client: TestClient) -> None:
    from collector.dashboard.pages import Shell, dashboard_page

    page = dashboard_page(Shell(site='x"><script>', sites=('x"><script>',), mode="key",
                                timezone="UTC", city=False, attribution="<b>", public_k=5))
    assert "<script>" not in page.replace('<script type="module"', "")
    assert "&lt;b&gt;" in page


def test_property_keys_are_listed_and_rare_ones_left_out_for_share_links(
        client: TestClient, store: Store, key: str) -> None:
    body = {"site_id": SITE, "date_range": "7d"}
    answer = client.post("/api/v2/properties", json=body,
                         headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200
    assert answer.json()["results"] == [{"key": "plan", "visitors": 3},
                                        {"key": "rare_key", "visitors": 1}]
    set_thresholds(store, SITE, k=1, public_k=2)
    client.app.state.reports.site_contexts.forget()  # type: ignore[attr-defined]
    share = create_key(store, SITE, SHARE)
    public = client.post("/api/v2/properties", json=body,
                         headers={"Authorization": f"Bearer {share}"})
    # Only the key seen by 2 visitors or more, its count noised (tests/test_share_privacy.py).
    assert [row["key"] for row in public.json()["results"]] == ["plan"]
    wrong = client.post("/api/v2/properties", json={**body, "metrics": ["x"]},
                        headers={"Authorization": f"Bearer {key}"})
    assert wrong.status_code == 400 and wrong.json()["field"] == "metrics"


def test_guessing_keys_at_sign_in_or_share_links_is_limited(store: Store,
                                                           engine_url: str) -> None:
    with running_app(store, engine_url) as fresh:  # its own failure counts
        statuses = [sign_in(fresh, f"ck_guess{n}_secret").status_code for n in range(40)]
        assert statuses[0] == 401 and statuses[-1] == 429
        refused = sign_in(fresh, "ck_more_guesses")
        assert refused.status_code == 429 and "Retry-After" in refused.headers
        assert fresh.get("/share/cs_nothing_here").status_code == 429
