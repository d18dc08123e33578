"""The dashboard's own script and style sheet, served under a content-hash path.

The URLs carry a hash of the files' bytes (``/dashboard/assets/<hash>/<name>``),
so browsers may cache it for a year: a new release has new URLs. Nothing is
built at run time and nothing comes from another host.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from collector.tracker.assets import Asset, asset_response

PREFIX = "/dashboard/assets"
IMMUTABLE = "public, max-age=31536000, immutable"
_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@dataclass(frozen=True)
class StaticFile:
    asset: Asset
    media_type: str


def _load() -> dict[str, StaticFile]:
    folder = resources.files("collector.dashboard") / "static"
    files = {}
    for entry in sorted(folder.iterdir(), key=lambda entry: entry.name):
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if suffix in _MEDIA_TYPES:
            files[entry.name] = StaticFile(Asset(entry.read_bytes()), _MEDIA_TYPES[suffix])
    return files


FILES = _load()
# One version for the whole set, so the script's relative imports (./chart.js) find
# files of the same release.
VERSION = hashlib.sha256(b"".join(file.asset.etag.encode() for file in FILES.values())
                         ).hexdigest()[:12]


def asset_url(name: str) -> str:
    if name not in FILES:
        raise KeyError(f"no dashboard asset {name!r}")
    return f"{PREFIX}/{VERSION}/{name}"


async def asset_endpoint(request: Request) -> Response:
    found = FILES.get(request.path_params["name"])
    if found is None or request.path_params["version"] != VERSION:
        # An old hash is a page from an earlier release: it must reload, not mix versions.
        return PlainTextResponse("no such asset", 404, headers={"Cache-Control": "no-store"})
    return asset_response(found.asset, request, found.media_type, IMMUTABLE)
