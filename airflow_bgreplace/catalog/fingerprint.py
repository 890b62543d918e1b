"""What decides whether a catalog item changed since its last successful run.

An item's fingerprint is a hash of its image's identity plus every parameter that shapes the
output. Two runs with equal fingerprints would ask a vendor for the same picture, so the second
one is skipped as ``unchanged``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final

from airflow_bgreplace.catalog import locations
from airflow_bgreplace.catalog.locations import Location
from airflow_bgreplace.catalog.manifest import CatalogItem, Treatment

#: Part of every fingerprint: bumping it re-processes the whole catalog once, on purpose.
FINGERPRINT_VERSION: Final = 1
_CHUNK_BYTES: Final = 1024 * 1024


def content_hash(
    source: Location | bytes,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
) -> str:
    """Identify an image by its content, reading it in 1 MiB chunks (memory stays flat).

    * bytes, a local path, a ``file://`` URI, an object-storage URI or an ``ObjectStoragePath``:
      ``"sha256:<hex>"`` of the bytes themselves.
    * an http(s) URL: **not downloaded here** (a nightly run would fetch the whole catalog just to
      learn that nothing changed). The identity is ``"url-sha256:<hex>"`` of the URL string plus
      the ``etag`` and ``last_modified`` the caller got from a ``HEAD`` request, when it has them.
      Without them, only the URL counts: a new photo published under the same URL is not
      noticed, and a signed URL whose query changes on every run looks changed every night.

    The two prefixes keep a URL identity from ever equalling a content hash.
    """
    if isinstance(source, bytes | bytearray):
        return "sha256:" + hashlib.sha256(source).hexdigest()
    text = locations.location_text(source)
    if locations.is_http_url(text):
        identity = "\n".join((text, etag or "", last_modified or ""))
        return "url-sha256:" + hashlib.sha256(identity.encode("utf-8")).hexdigest()
    digest = hashlib.sha256()
    with locations.open_binary(source) as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def item_fingerprint(
    item: CatalogItem,
    image_bytes_hash: str,
    *,
    reference_hash: str | None = None,
    default_vendor: str | None = None,
) -> str:
    """A stable hex digest of ``image_bytes_hash`` and the parameters of ``item``'s treatment.

    Only the parameters its treatment uses count: a leftover ``color`` on a ``remove`` row
    changes nothing in the output, so it does not make the item "changed". The scene reference
    counts by ``reference_hash`` (its :func:`content_hash`) when given, else by its URI.
    ``default_vendor`` is the vendor that processes items naming none: switching it re-processes
    them, since another vendor draws another picture.
    """
    parameters: dict[str, Any] = {
        "version": FINGERPRINT_VERSION,
        "image": image_bytes_hash,
        "treatment": item.treatment.value,
        "vendor": item.vendor or default_vendor,
        "output_format": item.output_format,
    }
    if item.treatment is Treatment.color:
        parameters["color"] = list(item.color) if item.color else None
    elif item.treatment is Treatment.scene:
        parameters["prompt"] = item.prompt
        parameters["reference"] = reference_hash or item.reference
    # Sorted keys and fixed separators: the same parameters always serialise to the same bytes.
    canonical = json.dumps(parameters, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
