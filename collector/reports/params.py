"""Bound query parameters: every value a request carries reaches SQL only as ``{pN:Type}``."""

from __future__ import annotations

from typing import Any


class Parameters:
    """Collects values and hands out clickhouse-connect placeholders for them."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def bind(self, value: Any, kind: str = "String") -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{kind}}}"
