"""Serving ``/js/script.js`` and its variants under Plausible's names
(``/js/plausible.hash.js``...): each built once, gzipped once, cached for a day.

The ETag is a hash of the served bytes, so a new release changes it and
browsers that revalidate get the new script; the gzipped variant carries its
own ETag, since its bytes differ.
"""

from __future__ import annotations

import gzip
import hashlib
from functools import cache

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from collector.tracker.build import build
from collector.tracker.variants import features_of

MEDIA_TYPE = "application/javascript"
CACHE_CONTROL = "public, max-age=86400"


class Asset:
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.gzipped = gzip.compress(body, compresslevel=9, mtime=0)
        digest = hashlib.sha256(body).hexdigest()[:20]
        self.etag = f'"{digest}"'
        self.gzip_etag = f'"{digest}-gz"'


SCRIPT = Asset(build())


# One entry per set of features: every name asking for the same set shares it, so no
# request can grow the cache past the 2**10 sets there are.
@cache
def variant(features: frozenset[str]) -> Asset:
    return SCRIPT if not features else Asset(build(features))


async def script_endpoint(request: Request) -> Response:
    """``/js/script.js``, or ``/js/{name}`` for a variant; a name Plausible never served: 404."""
    features = features_of(request.path_params.get("name", "script.js"))
    if features is None:
        return PlainTextResponse("Not Found", status_code=404)
    return asset_response(variant(features), request)


def asset_response(asset: Asset, request: Request, media_type: str = MEDIA_TYPE,
                   cache_control: str = CACHE_CONTROL) -> Response:
    """``asset``, gzipped when the client takes it, 304 when its ETag still matches."""
    compressed = _accepts_gzip(request.headers.get("accept-encoding", ""))
    etag = asset.gzip_etag if compressed else asset.etag
    headers = {
        "Cache-Control": cache_control,
        "ETag": etag,
        "Vary": "Accept-Encoding",
        # Lets sites pin the script with Subresource Integrity (crossorigin="anonymous").
        "Access-Control-Allow-Origin": "*",
        "X-Content-Type-Options": "nosniff",
    }
    if _matches(request.headers.get("if-none-match", ""), (asset.etag, asset.gzip_etag)):
        return Response(status_code=304, headers=headers)
    if compressed:
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=media_type, headers=headers)
    return Response(asset.body, media_type=media_type, headers=headers)


def _accepts_gzip(accept_encoding: str) -> bool:
    for part in accept_encoding.lower().split(","):
        coding, _, parameters = part.partition(";")
        if coding.strip() in ("gzip", "x-gzip", "*"):
            return _quality(parameters) > 0
    return False


def _quality(parameters: str) -> float:
    for parameter in parameters.split(";"):
        name, _, value = parameter.strip().partition("=")
        if name == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def _matches(if_none_match: str, etags: tuple[str, ...]) -> bool:
    """Either variant's tag validates: the bytes behind both are the same script."""
    if if_none_match.strip() == "*":
        return True
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return not candidates.isdisjoint(etags)
