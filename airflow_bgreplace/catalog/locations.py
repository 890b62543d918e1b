"""Where catalog files live: local paths, ``file://`` URIs, http(s) URLs and object-storage URIs.

One set of rules for the manifest reader, the hashes, the output manifest and the contact sheet.
Nothing here imports Airflow at module level: ``airflow.sdk.ObjectStoragePath`` is imported only
when a non-local URI string has to be opened, so plain Python on a laptop never needs it.
An ``ObjectStoragePath`` (or any ``upath``-like object) passed in is used as it is.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit


@runtime_checkable
class StoragePath(Protocol):
    """What we need of an ``ObjectStoragePath``: ``open()``, and ``str()`` giving its URI."""

    def open(self, mode: str = ..., *args: Any, **kwargs: Any) -> Any: ...


Location = str | os.PathLike[str] | StoragePath

# A scheme needs two letters or more so that Windows drive letters stay paths.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")
_BARE_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):(?!//)")


def scheme_of(text: str) -> str | None:
    """The lower-cased scheme of a ``scheme://`` URI, else None (a plain path)."""
    match = _SCHEME.match(text)
    return match.group(1).lower() if match else None


def is_http_url(value: object) -> bool:
    return isinstance(value, str) and scheme_of(value) in ("http", "https")


def has_bare_scheme(text: str) -> bool:
    """``data:...``, ``mailto:...``: a scheme without ``//``, which names neither a path nor a store."""
    return bool(_BARE_SCHEME.match(text))


def file_uri_to_path(uri: str) -> Path:
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise ValueError(f"{uri!r} names a file on another host")
    return Path(unquote(parts.path))


def location_text(location: Location) -> str:
    """The path or URI a location stands for, for messages and manifests."""
    if isinstance(location, str):
        return location
    if isinstance(location, os.PathLike):
        return os.fspath(location)
    return str(location)


def local_path(location: Location) -> Path | None:
    """The local file a location names, or None when it lives elsewhere (http, object storage)."""
    if isinstance(location, Path):
        return location
    text = location_text(location)
    scheme = scheme_of(text)
    if scheme is None:
        return Path(text)
    if scheme == "file":
        return file_uri_to_path(text)
    return None


def storage_path(location: Location) -> StoragePath:
    """An object with ``open()`` for a non-local location; imports Airflow only for URI strings."""
    if isinstance(location, StoragePath) and not isinstance(location, str | os.PathLike):
        return location
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(location_text(location))


def open_binary(location: Location, mode: str = "rb") -> IO[bytes]:
    """Open any location for binary reading or writing (http(s) URLs are not opened here)."""
    path = local_path(location)
    if path is not None:
        return path.open(mode)
    if is_http_url(location_text(location)):
        raise ValueError(f"{location_text(location)} is an http(s) URL; it is not opened as a file")
    handle: IO[bytes] = storage_path(location).open(mode)
    return handle


def parent_of(location: Location) -> Path | str:
    """The folder of a location: a ``Path`` when local, else the parent URI (no trailing slash)."""
    path = local_path(location)
    if path is not None:
        return path.absolute().parent
    text = location_text(location).rstrip("/")
    scheme, _, rest = text.partition("://")
    return f"{scheme}://{posixpath.dirname(rest)}"


def join(base: Path | str, relative: str) -> Path | str:
    """``relative`` resolved against a folder: ``..`` is applied, the result is not checked."""
    if isinstance(base, Path):
        return Path(os.path.normpath(base / relative))
    scheme, _, rest = base.partition("://")
    bucket, _, key = rest.partition("/")
    # normpath never climbs above the bucket: "s3://b/x/../../y" stays inside b.
    joined = posixpath.normpath(posixpath.join("/", key, relative)).lstrip("/")
    return f"{scheme}://{bucket}/{joined}"

