"""Script variants: Plausible's file names, and the source lines each variant keeps.

A Plausible snippet names its features in the file name, dot-separated and in any
order: ``/js/script.hash.outbound-links.js``, ``/js/plausible.tagged-events.js``.
Serving the same names means moving a site here takes a new host and nothing else.

``script.js`` marks the lines of a feature with directives on lines of their own::

    //@ if hash            kept when the variant has the feature
    //@ if not manual      kept when it has not
    //@ else               the other branch
    //@ end

``if`` takes one or more feature names (any of them); blocks nest.
"""

from __future__ import annotations

import re

# Plausible's script extensions. "pageleave" named its engagement reports before they
# became part of every script; it is accepted and changes nothing.
FEATURES = frozenset({
    "compat", "exclusions", "file-downloads", "hash", "local", "manual", "outbound-links",
    "pageleave", "pageview-props", "revenue", "tagged-events",
})
INERT_FEATURES = frozenset({"pageleave"})
# The names Plausible serves its script under; all mean the same script.
BASE_NAMES = ("script", "plausible", "analytics")

_DIRECTIVE = re.compile(r"^\s*//@\s*(.*?)\s*$")


def features_of(filename: str) -> frozenset[str] | None:
    """The features ``filename`` asks for, or None when it names no script.

    ``script.js`` asks for none; a feature listed twice or one Plausible never had
    makes the name unknown (a 404), as it is on Plausible.
    """
    parts = filename.split(".")
    if len(parts) < 2 or parts[0] not in BASE_NAMES or parts[-1] != "js":
        return None
    requested = parts[1:-1]
    if len(set(requested)) != len(requested) or not FEATURES.issuperset(requested):
        return None
    return frozenset(requested) - INERT_FEATURES


def select(source: str, features: frozenset[str]) -> str:
    """``source`` with the lines of the features not in ``features`` removed."""
    kept: list[str] = []
    branches: list[bool] = []  # one per open block: whether its current branch is kept
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        match = _DIRECTIVE.match(line)
        if match is None:
            if all(branches):
                kept.append(line)
            continue
        words = match.group(1).split()
        if words[:1] == ["if"]:
            branches.append(_holds(words[1:], features, number))
        elif words == ["else"] and branches:
            branches[-1] = not branches[-1]
        elif words == ["end"] and branches:
            branches.pop()
        else:
            raise ValueError(f"line {number}: unknown or unbalanced directive {line.strip()!r}")
    if branches:
        raise ValueError("a //@ if block is not closed with //@ end")
    return "".join(kept)


def _holds(words: list[str], features: frozenset[str], number: int) -> bool:
    negated = words[:1] == ["not"]
    names = words[1:] if negated else words
    unknown = set(names) - FEATURES
    if not names or unknown:
        raise ValueError(f"line {number}: //@ if needs feature names, got {sorted(unknown)}")
    present = any(name in features for name in names)
    return not present if negated else present
