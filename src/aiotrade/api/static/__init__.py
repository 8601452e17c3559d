"""Static files the app serves to browsers (the dashboard page, the offline docs' assets), from memory.

Files are read once, when the router is built, so no request reads a disk on the event loop (Starlette's
StaticFiles would stat and read each file in a worker thread). Each answer carries a strong ETag, and a
matching ``If-None-Match`` gets 304.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from fastapi import HTTPException, Request, Response

DASHBOARD_FILES = ("index.html", "dashboard.js", "dashboard.css")
_MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


class Assets:
    """A fixed set of files by name, answered with their media type, ETag and cache lifetime."""

    def __init__(self, files: dict[str, bytes], *, max_age_s: int) -> None:
        self._assets = {name: _asset(name, body) for name, body in files.items()}
        self._cache_control = f"public, max-age={max_age_s}"

    @classmethod
    def read(cls, folder: Traversable, names: Iterable[str], *, max_age_s: int) -> Assets:
        return cls({name: folder.joinpath(name).read_bytes() for name in names}, max_age_s=max_age_s)

    def names(self) -> list[str]:
        return sorted(self._assets)

    def response(self, request: Request, name: str) -> Response:
        asset = self._assets.get(name)
        if asset is None:
            raise HTTPException(status_code=404, detail="no such file")
        headers = {"ETag": asset.etag, "Cache-Control": self._cache_control, "X-Content-Type-Options": "nosniff"}
        if asset.etag in _etags(request.headers.get("if-none-match")):
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)


def dashboard_files() -> Traversable:
    return resources.files(__name__)


def _asset(name: str, body: bytes) -> Asset:
    suffix = name[name.rfind(".") :] if "." in name else ""
    media_type = _MEDIA_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    if media_type == "text/html":
        media_type += "; charset=utf-8"
    return Asset(body, media_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def _etags(header: str | None) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",")} if header else set()
