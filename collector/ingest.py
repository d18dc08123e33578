"""Parse an incoming event in Plausible's Events API format, accepting what Plausible accepts.

Takes the short names the trackers send (``n``, ``u``, ``d``, ``r``, ``p``/``m``,
``h``, ``i``, ``w``, ``sd``, ``e``, ``$``) and the long ones of the documented API
(``name``, ``url``, ``domain``, ``referrer``, ``props``/``meta``, ``hashMode``,
``interactive``, ``revenue``...), whatever the Content-Type. A short name that is
absent, ``null`` or ``false`` gives way to its long name, as in Plausible.

Like Plausible, a body is refused (400, naming the field) only for what leaves no
event to record: not a JSON object, no usable event name (a number is a name:
``404``), no url (or one over 2,000 bytes), no domain and no host in the url to take
it from, a prop key or value over its length, an engagement event with neither
scroll depth nor time. Everything else that cannot be used is dropped on its own and
the event kept: props that are not an object, prop values that are objects, arrays,
null or blank, props past the 30th, a referrer that is not a string, a screen width
or scroll depth that is not a number, a revenue that is not an amount in a known
currency, domains that are no domain names (they name no site). What is kept of URLs
and referrers, and that no address is stored, is decided after this, in the pipeline.
Knows nothing about storage.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from collector.currencies import CURRENCIES
from collector.errors import InvalidField, PayloadTooLarge
from collector.sites import normalize_domain
from collector.untrusted_json import decode_json

MAX_NAME_LENGTH = 120
MAX_URL_BYTES = 2000
MAX_REFERRER_LENGTH = 2000
MAX_PROPS = 30
MAX_PROP_KEY_BYTES = 300
MAX_PROP_VALUE_BYTES = 2000
MAX_DOMAINS = 10
MAX_SCROLL_DEPTH = 100
# One engagement report counts at most this long (a visit ends after 30 minutes without
# events); unbounded, 51 reports of 86,400,000 ms made one visit last 51 days.
MAX_ENGAGEMENT_MS = 30 * 60 * 1000
ENGAGEMENT = "engagement"
# Plausible's goals reported by the page they happened on: it fills in their ``path`` prop.
GOALS_WITH_PATH = frozenset({"404", "WP Form Completions", "Form: Submission"})
# Revenue is held in millionths of the currency unit (an Int64 column).
MICROS = 1_000_000
_NO_REVENUE = (0, "")


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
    revenue_amount: int = 0  # millionths of the currency unit
    revenue_currency: str = ""  # ISO 4217, "" when the event carries no revenue


def parse_event(body: bytes, limit: int) -> IncomingEvent:
    if len(body) > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes", "body")
    if not body:
        raise InvalidField("the body is empty; send a JSON object", "body")
    data = decode_json(body, "body")
    if not isinstance(data, dict):
        raise InvalidField("the body must be a JSON object", "body")
    name = _name(_pick(data, "n", "name"))
    url = _url(_pick(data, "u", "url"))
    props = _pick(data, "m", "meta")
    keys, values = _props(_pick(data, "p", "props") if props is None or props is False
                          else props)
    scroll_depth, engaged_ms = _engagement(data) if name == ENGAGEMENT else (0, 0)
    amount, currency = _revenue(_pick(data, "revenue", "$"))
    return IncomingEvent(
        name=name,
        url=url,
        domains=_domains(_pick(data, "d", "domain"), url),
        referrer=_referrer(_pick(data, "r", "referrer")),
        prop_keys=keys,
        prop_values=values,
        hash_mode=_hash_mode(_pick(data, "h", "hashMode")),
        interactive=_interactive(data),
        screen_width=_screen_width(_pick(data, "w", "screen_width")),
        scroll_depth=scroll_depth,
        engaged_ms=engaged_ms,
        revenue_amount=amount,
        revenue_currency=currency,
    )


def props_with_path(incoming: IncomingEvent, pathname: str) -> tuple[list[str], list[str]]:
    """The event's props; for a goal reported by page without a ``path`` prop, the stored
    (scrubbed) path first, as Plausible adds it."""
    keys = incoming.prop_keys
    if incoming.name not in GOALS_WITH_PATH or "path" in keys:
        return keys, incoming.prop_values
    return ["path", *keys][:MAX_PROPS], [pathname, *incoming.prop_values][:MAX_PROPS]


def _pick(data: dict[str, Any], short: str, long: str) -> Any:
    """``data[short] || data[long]`` as Plausible reads it: null and false give way."""
    value = data.get(short)
    return data.get(long) if value is None or value is False else value


def _name(value: Any) -> str:
    if isinstance(value, str):
        name = value
    elif isinstance(value, int) and not isinstance(value, bool):
        name = str(value)  # 404 tracking names its event with a number
    elif value is None:
        raise InvalidField("is required", "name")
    else:
        raise InvalidField("must be a string or an integer", "name")
    if not name:
        raise InvalidField("is required", "name")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidField(f"is longer than {MAX_NAME_LENGTH} characters", "name")
    return name


def _url(value: Any) -> str:
    if value is None:
        raise InvalidField("is required", "url")
    if not isinstance(value, str):
        raise InvalidField("must be a string", "url")
    # A character is at most 4 bytes: only long URLs need encoding to be measured.
    if len(value) * 4 > MAX_URL_BYTES and len(value.encode()) > MAX_URL_BYTES:
        raise InvalidField(f"is longer than {MAX_URL_BYTES} bytes", "url")
    return value


def _domains(value: Any, url: str) -> list[str]:
    """The sites named; a name that is no domain names no site (dropped as unknown)."""
    if not isinstance(value, str):  # absent (or not text): the site is the page's host
        return [_domain_of_url(url)]
    parts = [part for part in value.split(",") if part.strip()]
    if not parts:
        raise InvalidField("is required", "domain")
    if len(parts) > MAX_DOMAINS:
        raise InvalidField(f"names more than {MAX_DOMAINS} sites", "domain")
    domains = []
    for part in parts:
        try:
            domains.append(normalize_domain(part))
        except InvalidField:
            continue
    return domains


def _domain_of_url(url: str) -> str:
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:  # an unclosed IPv6 bracket
        raise InvalidField("not a valid URL", "url") from None
    if not host:
        raise InvalidField("is required when the url has no host", "domain")
    try:
        return normalize_domain(host)
    except InvalidField:
        raise InvalidField(f"is required: the url's host {host!r} is no domain name",
                           "domain") from None


def _referrer(value: Any) -> str:
    return value[:MAX_REFERRER_LENGTH] if isinstance(value, str) else ""


def _hash_mode(value: Any) -> bool:
    if value is None or isinstance(value, bool):  # true: ours; Plausible's trackers send 1
        return bool(value)
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise InvalidField("must be an integer", "hashMode") from None
    if not isinstance(value, int):
        raise InvalidField("must be an integer", "hashMode")
    return value == 1


def _interactive(data: dict[str, Any]) -> bool:
    """Plausible keeps only a boolean (anything else: interactive); 0 and 1 count too."""
    for name in ("i", "interactive"):
        value = data.get(name)
        if isinstance(value, bool):
            return value
        if value in (0, 1) and isinstance(value, int):
            return bool(value)
    return True


def _screen_width(value: Any) -> int | None:
    number = _whole_number(value)
    return number if number is not None and 0 <= number <= 100_000 else None


def _engagement(data: dict[str, Any]) -> tuple[int, int]:
    """Scroll depth (capped at 100) and engagement time (capped at one report's 30 minutes)
    of an engagement event; one of them must be there."""
    depth = _whole_number(data.get("sd"), text=True)
    engaged = _whole_number(data.get("e"), text=True)
    usable_depth = depth is not None and depth >= 0
    usable_time = engaged is not None and engaged >= 0
    if not usable_depth and not usable_time:
        raise InvalidField("an engagement event needs a scroll depth (sd) or an engagement "
                           "time (e), a whole number from 0", "engagement_time")
    return (min(depth, MAX_SCROLL_DEPTH) if usable_depth and depth is not None else 0,
            min(engaged, MAX_ENGAGEMENT_MS) if usable_time and engaged is not None else 0)


def _whole_number(value: Any, text: bool = False) -> int | None:
    """``value`` as an int when it is one (1.0 and, with ``text``, "1" count), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if text and isinstance(value, str) and value.isascii() and value.isdigit() \
            and len(value) < 20:
        return int(value)
    return None


def _props(value: Any) -> tuple[list[str], list[str]]:
    """The first 30 usable props: text, numbers and booleans as text, the rest dropped."""
    if isinstance(value, str):
        try:
            value = decode_json(value, "props")
        except InvalidField:  # not JSON (or nested past the cap): no props, like Plausible
            return [], []
    if not isinstance(value, dict) or not value:
        return [], []
    keys: list[str] = []
    values: list[str] = []
    for key, item in value.items():
        if item is None or isinstance(item, (dict, list)) or not key.strip():
            continue
        text = ("true" if item else "false") if isinstance(item, bool) else str(item)
        if not text.strip():
            continue
        _check_prop_size(key, text)
        keys.append(key)
        values.append(text)
        if len(keys) == MAX_PROPS:
            break
    return keys, values


def _check_prop_size(key: str, text: str) -> None:
    if _longer_than(key, MAX_PROP_KEY_BYTES):
        raise InvalidField(f"key longer than {MAX_PROP_KEY_BYTES} bytes", "props")
    if _longer_than(text, MAX_PROP_VALUE_BYTES):
        raise InvalidField(f"value of {key!r} is longer than {MAX_PROP_VALUE_BYTES} bytes",
                           "props")


def _longer_than(text: str, limit: int) -> bool:
    return len(text) * 4 > limit and len(text.encode()) > limit


def _revenue(value: Any) -> tuple[int, str]:
    """(millionths, currency) of ``{"amount": ..., "currency": ...}`` (or its JSON text);
    anything else is no revenue, and the event is kept without it."""
    if isinstance(value, str):
        try:
            value = decode_json(value, "revenue")
        except InvalidField:
            return _NO_REVENUE
    if not isinstance(value, dict):
        return _NO_REVENUE
    currency, amount = value.get("currency"), _decimal(value.get("amount"))
    # Under ten trillion units: the millionths fit the column (and "1e999999" is no work).
    if not isinstance(currency, str) or currency not in CURRENCIES or amount is None \
            or amount.adjusted() > 12:
        return _NO_REVENUE
    return int((amount * MICROS).to_integral_value()), currency


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        # repr: the shortest text of a float (20.1, not 20.10000000000000142...)
        amount = Decimal(repr(value) if isinstance(value, float) else value)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None
