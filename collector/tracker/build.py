"""A tiny, dependency-free JavaScript minifier for our own ``script.js``.

It drops comments and whitespace and shortens the names the script declares
(``var``, ``function`` names and parameters, ``catch`` bindings); nothing else
is rewritten. Renaming ignores scopes, which stays correct because it maps
names one to one and never touches globals, property names (``a.name``) or
object keys (``{name: ...}``). It is safe only for source that follows the
rules in the header of ``script.js``: every statement ends with a semicolon
(no automatic semicolon insertion), plain ES5 (no shorthand properties, no
template literals, no ``let``/``const``/arrows).

Before minifying, ``variants.select`` keeps the lines of the features a variant
asks for (``script.hash.js`` keeps those of ``hash``).

``python -m collector.tracker.build [script.<features>.js]`` prints the minified
script (the default one without a name) and its sizes; ``--compare FILE`` measures
other scripts the same way (Plausible's own, say).
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import string
import sys
from collections import Counter
from pathlib import Path
from typing import NamedTuple

from collector.tracker.variants import features_of, select

SOURCE = Path(__file__).with_name("script.js")
_WORD = frozenset(string.ascii_letters + string.digits + "_$")
# After these a "/" starts a regular expression, not a division.
_REGEX_AFTER_PUNCTUATION = frozenset("(,=:[!&|?{};+-*%<>~^")
_REGEX_AFTER_WORDS = frozenset({"return", "typeof", "case", "do", "else", "in", "new", "void"})
# Declaring one of these would rename the global too, since renaming ignores scopes.
_GLOBALS = frozenset({"window", "document", "navigator", "location", "history", "localStorage",
                      "JSON", "URL", "fetch", "String", "RegExp", "arguments", "undefined"})
_LITERALS = {"true": "!0", "false": "!1"}
_KEYWORDS = frozenset({"do", "if", "in", "for", "let", "new", "try", "var", "int"})


class Token(NamedTuple):
    kind: str  # "word", "literal" (string or regex) or "punct"
    text: str
    spaced: bool  # whitespace or a comment came before it in the source


def minify(source: str) -> str:
    tokens = tokenize(source)
    names = short_names(tokens)
    out: list[str] = []
    for index, token in enumerate(tokens):
        text = token.text
        following = tokens[index + 1].text if index + 1 < len(tokens) else ""
        if text == ";" and following == "}":
            continue  # the last statement of a block needs no semicolon
        if token.kind == "word" and not _is_property(tokens, index):
            text = names.get(text) or _LITERALS.get(text, text)
        if out and token.spaced and _would_merge(out[-1][-1], text[0]):
            out.append(" ")
        out.append(text)
    return "".join(out)


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    spaced = False
    position, length = 0, len(source)
    while position < length:
        char = source[position]
        if char.isspace():
            spaced, position = True, position + 1
            continue
        if source.startswith("/*", position):
            spaced, position = True, _end_of(source, "*/", position + 2)
            continue
        if source.startswith("//", position):
            spaced, position = True, _end_of(source, "\n", position + 2)
            continue
        if char in "'\"":
            kind, end = "literal", _end_of_quoted(source, position, char)
        elif char == "/" and _starts_regex(tokens):
            kind, end = "literal", _end_of_regex(source, position)
        elif char in _WORD:
            kind, end = "word", position
            while end < length and source[end] in _WORD:
                end += 1
        elif char == "`":
            raise ValueError("template literals are not supported by the minifier")
        else:
            kind, end = "punct", position + 1
        tokens.append(Token(kind, source[position:end], spaced))
        spaced, position = False, end
    return tokens


def short_names(tokens: list[Token]) -> dict[str, str]:
    """Declared name -> short name, the most used names getting the shortest."""
    declared = _declared_names(tokens)
    shadowed = declared & _GLOBALS
    if shadowed:
        raise ValueError(f"declared names shadow globals the script uses: {sorted(shadowed)}")
    uses = Counter(t.text for i, t in enumerate(tokens)
                   if t.kind == "word" and t.text in declared and not _is_property(tokens, i))
    taken = {t.text for t in tokens if t.kind == "word"} | _KEYWORDS
    candidates = (name for name in _name_sequence() if name not in taken)
    return {name: next(candidates) for name, _ in uses.most_common()}


def _declared_names(tokens: list[Token]) -> set[str]:
    declared: set[str] = set()
    for index, token in enumerate(tokens):
        if token.kind != "word" or index + 1 >= len(tokens):
            continue
        following = tokens[index + 1]
        if token.text == "var":
            declared.update(_variables(tokens, index + 1))
        if token.text == "function" and following.kind == "word":
            declared.add(following.text)
        if token.text in ("function", "catch"):
            declared.update(_parameters(tokens, index + 1))
    return declared


def _variables(tokens: list[Token], start: int) -> list[str]:
    """Names of ``var a = ..., b, c = ...;`` (those at the statement's own nesting level)."""
    names: list[str] = []
    depth, expect_name, after_name = 0, True, False
    for token in tokens[start:]:
        if after_name and token.text in ("in", "of"):
            break  # for (var name in ...)
        after_name = False
        if token.kind == "punct" and token.text in "([{":
            depth += 1
        elif token.kind == "punct" and token.text in ")]}":
            depth -= 1
            if depth < 0:
                break
        elif depth == 0 and token.text == ";":
            break
        elif depth == 0 and token.text == ",":
            expect_name = True
            continue
        if expect_name and token.kind == "word":
            names.append(token.text)
            after_name = True
        expect_name = False
    return names


def _parameters(tokens: list[Token], start: int) -> list[str]:
    position = start
    while position < len(tokens) and tokens[position].text != "(":
        position += 1
    names = []
    for token in tokens[position + 1:]:
        if token.text == ")":
            break
        if token.kind == "word":
            names.append(token.text)
    return names


def _is_property(tokens: list[Token], index: int) -> bool:
    """``a.name`` or the key of ``{name: ...}`` / ``{..., name: ...}``."""
    previous = tokens[index - 1].text if index else ""
    following = tokens[index + 1].text if index + 1 < len(tokens) else ""
    return previous == "." or (previous in ("{", ",") and following == ":")


def _name_sequence() -> itertools.chain[str]:
    letters = string.ascii_letters
    pairs = (a + b for a in letters for b in letters + string.digits)
    return itertools.chain(letters, pairs)


def _would_merge(previous: str, following: str) -> bool:
    return (previous in _WORD and following in _WORD) or \
        (previous == following and previous in "+-/")


def _starts_regex(tokens: list[Token]) -> bool:
    if not tokens:
        return True
    last = tokens[-1]
    if last.kind == "word":
        return last.text in _REGEX_AFTER_WORDS
    return last.kind == "punct" and last.text in _REGEX_AFTER_PUNCTUATION


def _end_of(source: str, closing: str, start: int) -> int:
    found = source.find(closing, start)
    if found < 0:
        raise ValueError(f"unterminated comment at offset {start}")
    return found + len(closing)


def _end_of_quoted(source: str, start: int, quote: str) -> int:
    position = start + 1
    while position < len(source) and source[position] != "\n":
        if source[position] == "\\":
            position += 2
        elif source[position] == quote:
            return position + 1
        else:
            position += 1
    raise ValueError(f"unterminated string at offset {start}")


def _end_of_regex(source: str, start: int) -> int:
    position, in_class = start + 1, False
    while position < len(source) and source[position] != "\n":
        char = source[position]
        if char == "\\":
            position += 2
            continue
        if char == "/" and not in_class:
            position += 1
            while position < len(source) and source[position] in _WORD:
                position += 1  # flags
            return position
        in_class = (in_class or char == "[") and char != "]"
        position += 1
    raise ValueError(f"unterminated regular expression at offset {start}")


def build(features: frozenset[str] = frozenset(), source_path: Path = SOURCE) -> bytes:
    """The bytes served for the variant with ``features`` (none: ``/js/script.js``)."""
    source = select(source_path.read_text(encoding="utf-8"), features)
    return (minify(source) + "\n").encode("utf-8")


def gzipped_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def main(arguments: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m collector.tracker.build",
                                     description="Print a tracker variant and its sizes.")
    parser.add_argument("name", nargs="?", default="script.js",
                        help="the variant's file name, e.g. script.hash.outbound-links.js")
    parser.add_argument("--compare", type=Path, action="append", default=[], metavar="FILE",
                        help="also measure FILE (repeatable)")
    options = parser.parse_args(arguments)
    features = features_of(options.name)
    if features is None:
        parser.error(f"{options.name} names no script variant")
    built = build(features)
    sys.stdout.write(built.decode("utf-8"))
    sys.stderr.write(f"{options.name}: {_sizes(built)}\n")
    for other in options.compare:
        sys.stderr.write(f"{other}: {_sizes(other.read_bytes())}\n")


def _sizes(data: bytes) -> str:
    return f"{len(data)} bytes, {gzipped_size(data)} bytes gzipped (level 9)"


if __name__ == "__main__":
    main()
