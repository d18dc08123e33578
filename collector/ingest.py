"""Parse and validate an incoming event in Plausible's Events API format.

Accepts the short names the trackers send (``n``, ``u``, ``d``, ``r``, ``p``,
``h``, ``i``, ``w``, ``sd``, ``e``) and the long ones of the documented API
(``name``, ``url``, ``domain``, ``referrer``, ``props``, ``interactive``...),
whatever the Content-Type. Knows nothing about storage.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from collector.errors import InvalidField, PayloadTooLarge
from collector.sites import normalize_domain
from collector.untrusted_json import decode_json

MAX_NAME_LENGTH = 120
MAX_URL_LENGTH = 2048
MAX_PROPS = 30
MAX_PROP_KEY_LENGTH = 300
MAX_PROP_VALUE_LENGTH = 2000
MAX_DOMAINS = 10
# One engagement report counts at most this long (a visit ends after 30 minutes without
# events); unbounded, 51 reports of 86,400,000 ms made one visit last 51 days.
MAX_ENGAGEMENT_MS = 30 * 60 * 1000


class IncomingEvent(NamedTuple):
    name: str
    url: str
    domains: list[str]
    referrer: str
    prop_keys: list[str]
    prop_values: list[str]
    hash_mode: bool
    interactive: bool
    screen_width: int | None
    scroll_depth: int
    engaged_ms: int


def parse_event(body: bytes, limit: int) -> IncomingEvent:
    if len(body) > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes", "body")
    if not body:
        raise InvalidField("the body is empty; send a JSON object", "body")
    data = decode_json(body, "body")
    if not isinstance(data, dict):
        raise InvalidField("the body must be a JSON object", "body")
    name = _text(data, "n", "name", MAX_NAME_LENGTH, required=True)
    url = _text(data, "u", "url", MAX_URL_LENGTH, required=True)
    keys, values = _props(_pick(data, "p", "props"))
    return IncomingEvent(
        name=name,
        url=url,
        domains=_domains(_text(data, "d", "domain", 1000, required=True)),
        referrer=_text(data, "r", "referrer", MAX_URL_LENGTH),
        prop_keys=keys,
        prop_values=values,
        hash_mode=_flag(data, "h", "hashMode", default=False),
        interactive=_flag(data, "i", "interactive", default=True),
        screen_width=_integer(data, "w", "screen_width", 0, 100_000, optional=True),
        scroll_depth=_integer(data, "sd", "scroll_depth", 0, 100) or 0,
        # Accepted like Plausible accepts it, but clamped (never a 400 that loses the event).
        engaged_ms=min(_integer(data, "e", "engagement_time", 0) or 0, MAX_ENGAGEMENT_MS),
    )


def _pick(data: dict[str, Any], short: str, long: str) -> Any:
    value = data.get(short)
    return data.get(long) if value is None else value


def _text(data: dict[str, Any], short: str, long: str, max_length: int,
          required: bool = False) -> str:
    value = _pick(data, short, long)
    if value is None or value == "":
        if required:
            raise InvalidField("is required", long)
        return ""
    if not isinstance(value, str):
        raise InvalidField("must be a string", long)
    if len(value) > max_length:
        raise InvalidField(f"is longer than {max_length} characters", long)
    return value


def _flag(data: dict[str, Any], short: str, long: str, default: bool) -> bool:
    value = _pick(data, short, long)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    raise InvalidField("must be true or false", long)


def _integer(data: dict[str, Any], short: str, long: str, low: int, high: int | None = None,
             optional: bool = False) -> int | None:
    value = _pick(data, short, long)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidField("must be an integer", long)
    if high is None and value < low:
        raise InvalidField(f"must be at least {low}", long)
    if high is not None and not low <= value <= high:
        raise InvalidField(f"must be between {low} and {high}", long)
    return value


def _domains(value: str) -> list[str]:
    domains = [normalize_domain(part) for part in value.split(",") if part.strip()]
    if not domains:
        raise InvalidField("is required", "domain")
    if len(domains) > MAX_DOMAINS:
        raise InvalidField(f"names more than {MAX_DOMAINS} sites", "domain")
    return domains


def _props(value: Any) -> tuple[list[str], list[str]]:
    if value is None or value == "":
        return [], []
    if isinstance(value, str):
        value = decode_json(value, "props")
    if not isinstance(value, dict):
        raise InvalidField("must be an object", "props")
    if len(value) > MAX_PROPS:
        raise InvalidField(f"has more than {MAX_PROPS} keys", "props")
    keys, values = [], []
    for key, item in value.items():
        if len(key) > MAX_PROP_KEY_LENGTH:
            raise InvalidField(f"key longer than {MAX_PROP_KEY_LENGTH} characters", "props")
        if item is None:
            continue
        if isinstance(item, (dict, list)):
            raise InvalidField(f"value of {key!r} must be a string, number or boolean",
                               "props")
        text = ("true" if item else "false") if isinstance(item, bool) else str(item)
        if len(text) > MAX_PROP_VALUE_LENGTH:
            raise InvalidField(f"value of {key!r} is longer than {MAX_PROP_VALUE_LENGTH}",
                               "props")
        keys.append(key)
        values.append(text)
    return keys, values
