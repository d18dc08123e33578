"""``/openapi.json``: a valid OpenAPI 3.1 document of real routes; schemathesis finds no 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from starlette.routing import Route
from starlette.testclient import TestClient

from collector.app import create_app
from collector.openapi import openapi_document
from collector.reports.auth import create_key
from collector.storage import Store
from tests.conftest import app_settings
from tests.reporting_data import SITE, sample_site_events, store_events


@pytest.fixture(scope="module")
def app(store: Store, engine_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    store_events(store, sample_site_events())
    data_dir = tmp_path_factory.mktemp("openapi") / "collector-data"
    return create_app(app_settings(engine_url, data_dir=data_dir), store)


@pytest.fixture(scope="module")
def key(store: Store) -> str:
    return create_key(store, SITE)


@pytest.fixture(scope="module")
def api_schema(app: Any) -> Iterator[Any]:
    """The app's own document, loaded by schemathesis, which starts the app once."""
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    shutdown_lifespans()  # the app's writer and store connection end with this module


def test_the_document_is_valid_openapi_3_1() -> None:
    document = openapi_document()
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_the_served_document_describes_real_routes(app: Any) -> None:
    document = TestClient(app).get("/openapi.json").json()  # no startup needed to read it
    assert document == openapi_document()
    routes = {route.path: route.methods for route in app.routes if isinstance(route, Route)}
    for path, operations in document["paths"].items():
        for method in operations:
            assert method.upper() in routes[path], (method, path)


def test_report_endpoints_require_the_header_never_the_url() -> None:
    document = openapi_document()
    for path in ("/api/v2/query", "/api/v2/drops", "/api/v2/properties"):
        operation = document["paths"][path]["post"]
        assert {"apiKey": []} in operation["security"]
        assert not any(parameter["name"] == "auth"
                       for parameter in operation.get("parameters", []))


# Every operation of the document, fuzzed through hypothesis directly: schemathesis's
# pytest plugin breaks on newer pytest releases (pytest 9.2: 'Function' object has no
# attribute '_nodeid'), and this needs nothing of it.
FUZZ_SETTINGS = settings(max_examples=15, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck))


def test_no_request_gets_a_server_error(api_schema: Any, key: str) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 9, "the document's operations must all be fuzzed"
    for operation in operations:

        @FUZZ_SETTINGS
        @given(case=operation.as_strategy())
        def fuzz(case: Any) -> None:
            # Aim the reports at the site that has data and that the key opens, so the
            # fuzzed dimensions, filters and dates reach the query builder and the store.
            if isinstance(case.body, dict) and "site_id" in case.body:
                case.body["site_id"] = SITE
            if isinstance(case.query, dict) and "site_id" in case.query:
                case.query["site_id"] = SITE
            case.call_and_validate(headers={"Authorization": f"Bearer {key}"},
                                   checks=[not_a_server_error])

        fuzz()
