"""The one exception tree: every error the package defines is in it, and its drawing is true."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import collector
from collector import errors
from collector.errors import CollectorError


def package_exceptions() -> list[type[BaseException]]:
    """Every exception class defined in a module of the package (``__main__`` runs the CLI)."""
    found = []
    for module_info in pkgutil.walk_packages(collector.__path__, "collector."):
        if module_info.name.endswith("__main__"):
            continue
        module = importlib.import_module(module_info.name)
        found += [member for _, member in inspect.getmembers(module, inspect.isclass)
                  if issubclass(member, BaseException) and member.__module__ == module.__name__]
    return found


def test_every_exception_of_the_package_is_in_the_tree_of_errors_py() -> None:
    defined = package_exceptions()
    assert {error.__module__ for error in defined} == {"collector.errors"}
    assert all(issubclass(error, CollectorError) for error in defined)


def drawn_tree(docstring: str) -> dict[str, str | None]:
    """Each class drawn in the docstring → the one drawn as its parent (None for the root)."""
    parents: dict[str, str | None] = {}
    path: list[str] = []
    for line in docstring.splitlines():
        if root := re.fullmatch(r"    (\w+)", line):
            parents[root[1]], path = None, [root[1]]
        elif branch := re.match(r"    ((?:[│ ]   )*)[├└]── (\w+)", line):
            depth = len(branch[1]) // 4 + 1
            del path[depth:]
            parents[branch[2]] = path[-1]
            path.append(branch[2])
    return parents


def test_the_docstring_draws_the_tree_as_it_is() -> None:
    actual = {name: None if member is CollectorError else member.__bases__[0].__name__
              for name, member in inspect.getmembers(errors, inspect.isclass)
              if issubclass(member, CollectorError)}
    assert drawn_tree(errors.__doc__ or "") == actual
