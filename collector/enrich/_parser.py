"""user-agents' classification on top of ua-parser 1.x's compiled Rust matchers.

``user_agents.parse`` calls ua-parser's legacy pure-Python API (hundreds of ``re``
patterns tried one by one, ~800 µs for an unseen string). The classification rules of
``user_agents`` (mobile / tablet / PC / bot) are what we want, so we subclass its
``UserAgent`` and build its inputs from ua-parser's matchers compiled by ``ua_parser_rs``
(the ``ua-parser[regex]`` extra). No third-party module is patched.

We drive the three ``ua_parser_rs`` extractors ourselves, exactly as
``ua_parser.regex.Resolver`` builds them, because its per-call ``PartialResult`` and
dataclass wrapping cost ~7 µs of the ~30 µs an unseen string takes.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, Protocol

from ua_parser import BasicResolver, Domain, load_builtins, load_lazy_builtins
from user_agents.parsers import Browser, OperatingSystem
from user_agents.parsers import Device as UserAgentsDevice
from user_agents.parsers import UserAgent as _UserAgentsClassifier


class _Versioned(Protocol):
    family: str
    major: str | None
    minor: str | None
    patch: str | None


class _Branded(Protocol):
    family: str
    brand: str | None
    model: str | None


_Resolved = tuple[_Versioned | None, _Versioned | None, _Branded | None]


def _rust_resolve() -> Callable[[str], _Resolved]:
    import ua_parser_rs

    # Lazy matchers carry only the pattern strings: Rust compiles them, Python never does.
    browsers, systems, devices = load_lazy_builtins()
    versioned = attrgetter("regex", "family", "major", "minor", "patch", "patch_minor")
    browser = ua_parser_rs.UserAgentExtractor(map(versioned, browsers)).extract
    system = ua_parser_rs.OSExtractor(map(versioned, systems)).extract
    device = ua_parser_rs.DeviceExtractor(
        map(attrgetter("regex", "regex_flag", "family", "brand", "model"), devices)
    ).extract

    def resolve(ua: str) -> _Resolved:
        return browser(ua), system(ua), device(ua)

    return resolve


def _python_resolve() -> Callable[[str], _Resolved]:
    # Without the `regex` extra: same answers, several times slower.
    resolver = BasicResolver(load_builtins())

    def resolve(ua: str) -> _Resolved:
        result: Any = resolver(ua, Domain.ALL)
        return result.user_agent, result.os, result.device

    return resolve


def _best_resolve() -> Callable[[str], _Resolved]:
    try:
        return _rust_resolve()
    except ImportError:
        return _python_resolve()


RESOLVE = _best_resolve()


class ParsedUserAgent(_UserAgentsClassifier):  # type: ignore[misc]
    """A ``user_agents.parsers.UserAgent`` whose fields come from :data:`RESOLVE`."""

    def __init__(self, ua_string: str) -> None:
        # The base __init__ is skipped on purpose: it would parse again, slowly.
        browser, system, device = RESOLVE(ua_string)
        self.ua_string = ua_string
        self.browser = _versioned(Browser, browser)
        self.os = _versioned(OperatingSystem, system)
        if device is None:
            self.device = UserAgentsDevice("Other", None, None)
        else:
            self.device = UserAgentsDevice(device.family, device.brand, device.model)


def _versioned(kind: Any, found: _Versioned | None) -> Any:
    # Same values as user_agents' parse_browser()/parse_operating_system(): numeric parts
    # as int, missing parts dropped, "Other" when nothing matched.
    if found is None:
        return kind("Other", (), "")
    parts = (found.major, found.minor, found.patch)
    version = tuple(int(part) if part.isdigit() else part for part in parts if part)
    return kind(found.family, version, ".".join(map(str, version)))


def parse_user_agent(ua: str) -> ParsedUserAgent:
    """The user-agents view of ``ua`` (uncached: callers cache their own results)."""
    return ParsedUserAgent(ua)
