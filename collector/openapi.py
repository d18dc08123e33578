"""``GET /openapi.json``: an OpenAPI 3.1 description of the public endpoints, written by hand.

Hand-written on purpose: the endpoints parse their bodies themselves (field-named 400s,
Plausible's short and long names), so no framework could derive it. The names the API
accepts — metrics, filter operators, drop reasons, time dimensions — come from the
modules that check them, so the document cannot drift from them. The test suite
validates it and runs schemathesis against the app with it (no 5xx).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collector import __version__
from collector.drops import REASONS
from collector.reports.drops_report import TIME_DIMENSIONS
from collector.reports.metrics import METRICS
from collector.reports.request import (
    BEHAVIORAL_OPERATORS,
    COMPARISON_MODES,
    FILTER_OPERATORS,
    LOGICAL_OPERATORS,
    MAX_LIMIT,
)
from collector.reports.v1_params import INTERVALS, MAX_BREAKDOWN_LIMIT, PERIODS

JSON = "application/json"
Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema) -> dict[str, Schema]:
    return {JSON: {"schema": schema}}


def _answer(row: Schema, required: list[str], meta: bool = True) -> Schema:
    """A report's answer: ``results`` (rows of ``row``), ``meta`` and the ``query`` echoed."""
    properties: Schema = {"results": {"type": "array", "items": {
        "type": "object", "required": required, "properties": row}}}
    if meta:
        properties["meta"] = {"type": "object"}
    properties["query"] = {"type": "object"}
    return {"type": "object", "required": list(properties), "properties": properties}


def _error(description: str, headers: dict[str, Any] | None = None) -> Schema:
    answer: Schema = {"description": description, "content": _json(_ref("Error"))}
    if headers:
        answer["headers"] = headers
    return answer


RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.",
                               "schema": {"type": "integer", "minimum": 1}}}
_GIF = {"image/gif": {"schema": {"type": "string", "contentEncoding": "binary"}}}
_STRING = {"type": "string"}
_ERRORS = {
    "400": _error("Invalid input, or a report over COLLECTOR_REPORT_MAX_ROWS or "
                  "COLLECTOR_REPORT_MAX_MEMORY; `field` names what to fix."),
    "401": _error("No key, an unknown one or a revoked one."),
    "403": _error("The key does not give access to that site."),
    "429": _error("Too many failed key checks from this client, a share link's privacy "
                  "budget of the day is spent (until midnight UTC), or the link has 34 "
                  "reports running or waiting.", RETRY_AFTER),
    "503": _error("The report ran longer than COLLECTOR_REPORT_MAX_SECONDS, or the store "
                  "is unreachable.", RETRY_AFTER),
}
_REPORT_SECURITY: list[dict[str, list[str]]] = [{"apiKey": []}, {"session": []}]
# What Plausible accepts; what it cannot use is dropped with the event kept (ingest.py).
_EVENT_FIELDS: dict[str, tuple[Schema, str]] = {
    "name": ({"type": ["string", "integer"], "maxLength": 120,
              "description": "Required; a number is taken as its text (404)."}, "n"),
    "url": ({"type": "string", "maxLength": 2000,
             "description": "Required, at most 2,000 bytes; any scheme but data: (a page "
                            "without a host is (none))."}, "u"),
    "domain": ({"type": "string", "maxLength": 1000,
                "description": "Comma-separated sites; default: the url's host."}, "d"),
    "referrer": ({"type": ["string", "null"],
                  "description": "Cut at 2,000 characters; anything but text is ignored."},
                 "r"),
    "props": ({"type": ["object", "string", "null"],
               "description": "Or `m`/`meta`, which come first. An object or its JSON "
                              "text; the first 30 string, number or boolean values are kept "
                              "(key at most 300 bytes, value 2,000), anything else dropped.",
               "additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
              "p"),
    "revenue": ({"type": ["object", "string", "null"],
                 "description": "Also `$`. {amount, currency}: a number (or its text) in an "
                                "ISO 4217 currency; anything else is dropped.",
                 "properties": {"amount": {"type": ["number", "string"]},
                                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}}},
                "$"),
    "hashMode": ({"type": ["boolean", "integer"]}, "h"),
    "interactive": ({"type": ["boolean", "integer"],
                     "description": "Anything but a boolean (or 0, 1) is ignored."}, "i"),
    "screen_width": ({"type": "integer", "minimum": 0, "maximum": 100000,
                      "description": "Anything else is ignored."}, "w"),
    "scroll_depth": ({"type": ["integer", "string"],
                      "description": "Engagement events: 0-100, more counts as 100."}, "sd"),
    "engagement_time": ({"type": ["integer", "string"],
                         "description": "Engagement events, milliseconds: one report counts "
                                        "at most 30 minutes. An engagement event needs "
                                        "sd or e."}, "e"),
}
_DATE_RANGE = {"oneOf": [
    {"type": "string", "description": "day, 24h, 7d, 28d, 30d, 91d, month, 6mo, 12mo, year, all"},
    {"type": "array", "items": {"type": "string", "format": "date"},
     "minItems": 2, "maxItems": 2},
]}
_SITE_PROPERTIES: Schema = {"site_id": {"type": "string", "description": "The site's domain."},
                            "date_range": _DATE_RANGE}
_SITE_QUERY: Schema = {"type": "object", "required": ["site_id", "date_range"],
                       "properties": _SITE_PROPERTIES}

SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string", "description": "The reason, in words."},
                       "field": {"type": "string", "description": "The field to fix."}},
    },
    "Event": {
        "type": "object",
        "description": "Plausible's Events API body; each field also takes its short name.",
        "properties": {
            **{name: {**schema, "description": f"Also `{short}`. {schema.get('description', '')}"
                      .rstrip()} for name, (schema, short) in _EVENT_FIELDS.items()},
            **{short: schema for schema, short in _EVENT_FIELDS.values()},
            **dict.fromkeys(("m", "meta"), _EVENT_FIELDS["props"][0]),
        },
    },
    "Filter": {
        "type": "array",
        "description": "[operator, dimension, [values]] (a 4th element may be "
                       '{"case_sensitive": false}), [and|or, [filters]], [not, filter] or '
                       "[has_done|has_not_done, filter]. "
                       "The whole request schema: collector/reports/query_schema.json.",
        "prefixItems": [{"enum": [*FILTER_OPERATORS, *LOGICAL_OPERATORS,
                                  *BEHAVIORAL_OPERATORS]}],
        "minItems": 2,
        "maxItems": 4,
    },
    "Query": {
        "type": "object",
        "required": ["site_id", "date_range", "metrics"],
        "properties": {
            **_SITE_PROPERTIES,
            "date_range": {"anyOf": [*_DATE_RANGE["oneOf"], {
                "type": "array", "items": {"type": "string", "format": "date-time"},
                "minItems": 2, "maxItems": 2,
                "description": "Both included, to the second, with their offset."}]},
            "metrics": {"type": "array", "minItems": 1, "uniqueItems": True,
                        "items": {"enum": list(METRICS)}},
            "dimensions": {"type": "array", "items": _STRING, "uniqueItems": True},
            "filters": {"type": "array", "items": _ref("Filter")},
            "order_by": {"type": "array", "items": {
                "type": "array", "prefixItems": [_STRING, {"enum": ["asc", "desc"]}],
                "minItems": 2, "maxItems": 2}},
            "pagination": {"type": "object", "properties": {
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                "offset": {"type": "integer", "minimum": 0}}},
            "include": {"type": "object", "properties": {
                "comparison": {"enum": ["previous_period", False, None]},
                "comparisons": {"type": ["object", "null"], "properties": {
                    "mode": {"enum": list(COMPARISON_MODES)},
                    "date_range": {"type": "array", "items": {"type": "string",
                                                              "format": "date"},
                                   "minItems": 2, "maxItems": 2},
                    "match_day_of_week": {"type": "boolean"}}},
                "time_labels": {"type": "boolean"},
                "total_rows": {"type": "boolean"},
                "imports": {"type": "boolean"},
                "sample": {"type": "boolean"}}},
        },
    },
    "QueryAnswer": _answer({"dimensions": {"type": "array"}, "metrics": {"type": "array"},
                            "comparison": {"type": "object"}}, ["dimensions", "metrics"]),
    "DropsQuery": {
        "type": "object",
        "required": ["site_id", "date_range"],
        "properties": {**_SITE_PROPERTIES,
                       "dimensions": {"type": "array", "maxItems": 1,
                                      "items": {"enum": list(TIME_DIMENSIONS)}}},
    },
    "DropsAnswer": _answer({"time": _STRING, "reason": {"enum": list(REASONS)},
                            "count": {"type": ["integer", "null"]}}, ["reason", "count"]),
    "PropertiesQuery": _SITE_QUERY,
    "PropertiesAnswer": _answer({"key": _STRING, "visitors": {"type": "integer"}},
                                ["key", "visitors"], meta=False),
    "Readiness": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"enum": ["ready", "unavailable"]},
                       "reason": {"type": "string",
                                  "description": "Why not, in words (never store internals)."}},
    },
}


def _report(summary: str, body: str, answer: str, csv: bool = False) -> Schema:
    content = _json(_ref(answer))
    if csv:
        content["text/csv"] = {"schema": _STRING}
    return {"post": {
        "summary": summary,
        "security": _REPORT_SECURITY,
        "requestBody": {"required": True, "content": _json(_ref(body))},
        "responses": {"200": {"description": "The report.", "content": content}, **_ERRORS},
    }}


def _query_parameter(name: str, schema: Schema, description: str,
                     required: bool = False) -> Schema:
    return {"name": name, "in": "query", "required": required, "schema": schema,
            "description": description}


_V1_COMMON = [
    _query_parameter("site_id", _STRING, "The site's domain.", required=True),
    _query_parameter("period", {"enum": list(PERIODS)}, "Relative to `date`; default 30d."),
    _query_parameter("date", _STRING, "YYYY-MM-DD (default today); two joined by a comma "
                                      "for period=custom."),
    _query_parameter("metrics", _STRING, "Comma-separated; default visitors."),
    _query_parameter("filters", _STRING, "property==value;property!=value, `|` for "
                                         "alternatives, `*` as a wildcard."),
]


def _v1_stats(summary: str, results: Schema, extra: list[Schema]) -> Schema:
    """A Stats API v1 GET endpoint answering ``{"results": results}``."""
    answer = {"type": "object", "required": ["results"], "properties": {"results": results}}
    return {"get": {
        "summary": summary,
        "security": _REPORT_SECURITY,
        "parameters": [*_V1_COMMON, *extra],
        "responses": {"200": {"description": "The report.", "content": _json(answer)},
                      **_ERRORS},
    }}


_V1_COMPARE = _query_parameter("compare", _STRING, "previous_period adds comparison_value "
                                                   "and change.")
_V1_ROWS = {"type": "array", "items": {"type": "object"}}


PATHS: dict[str, Schema] = {
    "/api/event": {"post": {
        "summary": "Record a pageview or a custom event (Plausible's Events API).",
        "description": "Any Content-Type is read as JSON. Accepted as Plausible accepts it: "
                       "a field it cannot use is dropped and the event kept. 202 also answers "
                       "events dropped on purpose, with X-Collector-Dropped naming the "
                       "reason (a domain that names no site: unknown-site).",
        "requestBody": {"required": True, "content": {
            **_json(_ref("Event")), "text/plain": {"schema": _STRING}}},
        "responses": {
            "202": {"description": "Accepted, or dropped on purpose.",
                    "headers": {"X-Collector-Dropped": {
                        "description": "Why the event was not recorded.", "schema": _STRING}},
                    "content": {"text/plain": {"schema": {"const": "ok"}}}},
            "400": _error("No event to record: not a JSON object, no name, no url (or a "
                          "data: one), no domain, a prop over its length, an engagement "
                          "without sd or e; `field` names what to fix."),
            "413": _error("The body is larger than COLLECTOR_BODY_LIMIT."),
            "429": _error("Rate limit of the client or the site.", RETRY_AFTER),
            "503": _error("The write buffer is full; nothing accepted is lost.", RETRY_AFTER),
        },
    }},
    "/pixel.gif": {"get": {
        "summary": "Record a pageview without JavaScript; always answers the GIF.",
        "parameters": [
            {"name": "d", "in": "query", "required": True, "schema": _STRING,
             "description": "The site's domain."},
            {"name": "u", "in": "query", "schema": _STRING,
             "description": "The page: a path or an http(s) URL (default: the Referer)."},
            {"name": "n", "in": "query", "schema": _STRING,
             "description": "The event name (default pageview)."},
            {"name": "r", "in": "query", "schema": _STRING, "description": "The referrer."},
        ],
        "responses": {
            "200": {"description": "A 1×1 transparent GIF.", "content": _GIF},
            "429": {"description": "Rate limit; the GIF all the same.", "content": _GIF,
                    "headers": RETRY_AFTER},
        },
    }},
    "/api/v2/query": _report("Aggregates shaped like Plausible's Stats API v2.", "Query",
                             "QueryAnswer", csv=True),
    "/api/v2/drops": _report("What ingest filtered out, by reason.", "DropsQuery",
                             "DropsAnswer", csv=True),
    "/api/v2/properties": _report("The custom property keys of a site and period.",
                                  "PropertiesQuery", "PropertiesAnswer"),
    "/api/v1/stats/realtime/visitors": {"get": {
        "summary": "Visitors in the last five minutes.",
        "security": _REPORT_SECURITY,
        "parameters": [{"name": "site_id", "in": "query", "required": True,
                        "schema": _STRING}],
        "responses": {"200": {"description": "A bare number; for a share link that of the "
                                             "last whole five minutes, noised, or null below "
                                             "its k (docs/privacy.md).",
                              "content": _json({"type": ["integer", "null"], "minimum": 0})},
                      **_ERRORS},
    }},
    "/api/v1/stats/aggregate": _v1_stats(
        "Plausible's Stats API v1: metrics of a period.",
        {"type": "object", "additionalProperties": {"type": "object"}}, [_V1_COMPARE]),
    "/api/v1/stats/timeseries": _v1_stats(
        "Plausible's Stats API v1: metrics by hour, day or month.", _V1_ROWS,
        [_query_parameter("interval", {"enum": list(INTERVALS)}, "Default: hour for "
                                                                 "period=day, month for 6mo "
                                                                 "and 12mo, else day.")]),
    "/api/v1/stats/breakdown": _v1_stats(
        "Plausible's Stats API v1: metrics by a property's values.", _V1_ROWS, [
            _query_parameter("property", _STRING, "event:page, visit:source, "
                                                  "event:props:<name>, ...", required=True),
            _query_parameter("limit", {"type": "integer", "minimum": 1,
                                       "maximum": MAX_BREAKDOWN_LIMIT}, "Default 100."),
            _query_parameter("page", {"type": "integer", "minimum": 1}, "From 1."),
            _V1_COMPARE]),
    "/js/script.js": {"get": {
        "summary": "The tracking script (gzipped when accepted; ETag revalidation).",
        "responses": {
            "200": {"description": "The script.",
                    "content": {"application/javascript": {"schema": _STRING}}},
            "304": {"description": "Not modified (If-None-Match)."},
        },
    }},
    "/js/{name}": {"get": {
        "summary": "The tracking script under Plausible's names: script.js, plausible.js or "
                   "analytics.js with its extensions in any order (script.hash.tagged-events.js).",
        "parameters": [{"name": "name", "in": "path", "required": True, "schema": _STRING}],
        "responses": {
            "200": {"description": "The script variant the name asks for.",
                    "content": {"application/javascript": {"schema": _STRING}}},
            "304": {"description": "Not modified (If-None-Match)."},
            "404": {"description": "A name Plausible never served a script under.",
                    "content": {"text/plain": {"schema": _STRING}}},
        },
    }},
    "/healthz": {"get": {
        "summary": "Alive: answers without touching the store.",
        "responses": {"200": {"description": "Alive.",
                              "content": {"text/plain": {"schema": {"const": "ok"}}}}},
    }},
    "/readyz": {"get": {
        "summary": "Ready: the store answers and the buffer and the log are below their caps.",
        "responses": {
            "200": {"description": "Ready.", "content": _json(_ref("Readiness"))},
            "503": {"description": "Not ready; `reason` says why.",
                    "content": _json(_ref("Readiness"))},
        },
    }},
}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "collector", "version": __version__,
                 "description": "A privacy-first web analytics collector: ingest, reports "
                                "and health. Report endpoints take an API key or share token "
                                "in the Authorization header (never in the URL), or the "
                                "dashboard's session cookie."},
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer",
                           "description": "An API key (ck_...) or a share token (cs_...)."},
                "session": {"type": "apiKey", "in": "cookie", "name": "collector_session",
                            "description": "The dashboard's sign-in session."},
            },
        },
    }


_DOCUMENT = openapi_document()


async def openapi_endpoint(request: Request) -> Response:
    return JSONResponse(_DOCUMENT, headers={"Access-Control-Allow-Origin": "*"})
