"""The contact sheet: one HTML page showing what a catalog run did to every item, before and after.

The page is self-contained and works offline and from ``file://``: CSS inline, no script, no
web font, no CDN. Thumbnails (320 px by default) are JPEG, or PNG where the image has
transparency (drawn over a checkerboard), and are either embedded as data URIs (the default:
one file to attach to an e-mail or open from a bucket) or written to a folder beside the page,
which keeps the HTML small for catalogs of thousands of items. The status filter at the top is
CSS radio buttons, so it works where scripts are blocked.

Decoding up to 2,000 cards' photos and cut-outs is most of an unchanged night's work, so the
nightly run keeps its thumbnails in a ``cache`` folder between runs: a local source whose path,
size and modification time are unchanged (the rsync rule, as for the catalog's content hashes)
gets last night's thumbnail back without being read.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import io
import os
import posixpath
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

from PIL import Image, ImageOps

from airflow_bgreplace.catalog import locations
from airflow_bgreplace.catalog.locations import Location
from airflow_bgreplace.catalog.manifest import CatalogItem, Treatment
from airflow_bgreplace.catalog.outputs import (
    OutcomeStatus,
    OutputRow,
    format_duration,
    latest_outcomes,
    summarise,
)

INLINE: Final = "inline"
DEFAULT_THUMB_PX: Final = 320
#: Cards beyond this are left out (the header says so): a page with 50,000 images helps no one.
DEFAULT_MAX_CARDS: Final = 2000
#: Cached thumbnails unused by any page for this long are removed (a week of pages, at most).
THUMBNAIL_CACHE_DAYS: Final = 7
#: Sources larger than this are not thumbnailed (a contact sheet must not stall on one huge file).
MAX_SOURCE_BYTES: Final = 60 * 1024 * 1024
#: Nor sources declaring more pixels (checked from the header: a small PNG may declare 50,000 x 50,000).
MAX_SOURCE_PIXELS: Final = 89_478_485
_REFERENCE_PX: Final = 96
_JPEG_QUALITY: Final = 80
#: Problems first: the person reading the page is looking for what went wrong.
_CARD_ORDER: Final = (OutcomeStatus.failed, OutcomeStatus.succeeded, OutcomeStatus.skipped, OutcomeStatus.unchanged)


@dataclass(frozen=True)
class Thumbnail:
    src: str | None
    width: int = 0
    height: int = 0
    has_alpha: bool = False
    #: Why there is no picture (remote URL, missing file, not an image).
    problem: str | None = None


#: Looks up the thumbnail made for a URI at a size (default: the card size).
ThumbFor = Callable[..., Thumbnail]


@dataclass(frozen=True)
class ContactSheet:
    """What :func:`write_contact_sheet` wrote."""

    uri: str
    cards: int
    thumbnails: int
    #: Images that could not be shown (shown as a labelled placeholder instead).
    unavailable: int
    html_bytes: int


def write_contact_sheet(
    rows: Iterable[OutputRow | Mapping[str, Any]],
    output: Location,
    *,
    title: str = "Catalog refresh",
    run_id: str | None = None,
    thumbnails: str = INLINE,
    items: Iterable[CatalogItem] = (),
    summary: Mapping[str, Any] | None = None,
    thumb_px: int = DEFAULT_THUMB_PX,
    max_cards: int | None = DEFAULT_MAX_CARDS,
    max_workers: int = 8,
    cache: str | os.PathLike[str] | None = None,
) -> ContactSheet:
    """Write the contact sheet of a run's output rows to ``output`` (a path, URI or ``ObjectStoragePath``).

    ``thumbnails`` is ``"inline"`` (data URIs in the page) or a folder path relative to the page,
    such as ``"contact_sheet_files"``, where JPEG/PNG thumbnails are written. ``items`` (the
    manifest's :class:`CatalogItem`) add the treatment details: colour swatch, prompt, reference.
    ``summary`` defaults to :func:`~airflow_bgreplace.catalog.outputs.summarise` of ``rows``.
    Images that are http(s) URLs are not downloaded; their card says so. ``cache`` is a local
    folder of thumbnails kept between runs (local sources only); thumbnails no page has used for
    :data:`THUMBNAIL_CACHE_DAYS` are removed when a page is written.
    """
    outcomes = latest_outcomes(row if isinstance(row, OutputRow) else OutputRow.model_validate(row) for row in rows)
    totals = dict(summary) if summary is not None else summarise(outcomes)
    by_sku = {item.sku: item for item in items}
    invalid = [row for row in outcomes if row.status is OutcomeStatus.invalid]
    shown = sorted(
        (row for row in outcomes if row.status is not OutcomeStatus.invalid),
        key=lambda row: (_CARD_ORDER.index(row.status), row.sku or ""),
    )
    hidden = 0
    if max_cards is not None and len(shown) > max_cards:
        shown, hidden = shown[:max_cards], len(shown) - max_cards

    store = _ThumbnailStore(output, thumbnails, None if cache is None else _ThumbnailCache(cache))
    wanted: dict[tuple[str, int], None] = {}
    for row in shown:
        for uri in (row.input_uri, row.output_uri):
            if uri:
                wanted[(uri, thumb_px)] = None
        item = by_sku.get(row.sku or "")
        if item is not None and item.reference:
            wanted[(item.reference, _REFERENCE_PX)] = None
    with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
        # Pillow releases the GIL while decoding and resizing, so threads do scale here.
        made = dict(zip(wanted, pool.map(lambda key: store.make(*key), wanted), strict=True))

    def thumb(uri: str | None, px: int = thumb_px) -> Thumbnail:
        return made.get((uri, px), Thumbnail(None, problem="no image")) if uri else Thumbnail(None, problem="no image")

    cards = [_card(row, by_sku.get(row.sku or ""), thumb) for row in shown]
    page = _page(
        title=title,
        run_id=run_id,
        totals=totals,
        cards=cards,
        statuses=[row.status for row in shown],
        invalid=invalid,
        hidden=hidden,
    )
    data = page.encode("utf-8")
    local = locations.local_path(output)
    if local is not None:
        local.parent.mkdir(parents=True, exist_ok=True)
    with locations.open_binary(output, "wb") as handle:
        handle.write(data)
    if store.cache is not None:
        store.cache.prune()
    unavailable = sum(1 for value in made.values() if value.src is None)
    return ContactSheet(
        uri=locations.location_text(output),
        cards=len(cards),
        thumbnails=len(made) - unavailable,
        unavailable=unavailable,
        html_bytes=len(data),
    )


# --------------------------------------------------------------------------- thumbnails


class _ThumbnailStore:
    """Makes thumbnails and says where the page finds them (a data URI or a relative file)."""

    def __init__(self, page: Location, folder: str, cache: _ThumbnailCache | None = None) -> None:
        self.cache = cache
        self.inline = folder == INLINE
        self.folder = folder.strip("/")
        if not self.inline:
            if os.path.isabs(self.folder) or locations.scheme_of(self.folder):
                raise ValueError(f"thumbnails folder {folder!r} must be relative to the page")
            page_text = locations.location_text(page)
            local = locations.local_path(page)
            self.base: str = os.fspath(local.parent) if local is not None else posixpath.dirname(page_text)
            self.local = local is not None
            if self.local:
                os.makedirs(os.path.join(self.base, self.folder), exist_ok=True)

    def make(self, uri: str, px: int) -> Thumbnail:
        key = self.cache.key(uri, px) if self.cache is not None else None
        try:
            cached = self.cache.get(key) if self.cache is not None and key is not None else None
            if cached is not None:
                encoded, kind, size, alpha = cached
            else:
                encoded, kind, size, alpha = _encode_thumbnail(_read_image_bytes(uri), px)
                if self.cache is not None and key is not None:
                    self.cache.put(key, encoded)
        except _Unavailable as exc:
            return Thumbnail(None, problem=str(exc))
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            return Thumbnail(None, problem=f"not readable as an image ({type(exc).__name__})")
        if self.inline:
            src = f"data:image/{kind};base64,{base64.b64encode(encoded).decode('ascii')}"
        else:
            name = hashlib.sha256(f"{uri}|{px}".encode()).hexdigest()[:20] + (".png" if kind == "png" else ".jpg")
            self._write(name, encoded)
            src = f"{self.folder}/{name}"
        return Thumbnail(src, size[0], size[1], alpha)

    def _write(self, name: str, data: bytes) -> None:
        if self.local:
            with open(os.path.join(self.base, self.folder, name), "wb") as handle:
                handle.write(data)
        else:
            with locations.open_binary(f"{self.base}/{self.folder}/{name}", "wb") as handle:
                handle.write(data)


class _ThumbnailCache:
    """Encoded thumbnails in a local folder, one file per (source path, size, mtime, px).

    A changed source gets a new key, so a stale thumbnail is never served. A file's mtime is
    when a page last used it; :meth:`prune` drops files unused for :data:`THUMBNAIL_CACHE_DAYS`,
    which bounds the folder to a week of pages (the cards a night shows shift with what changed,
    so keeping last night's page alone would leave tonight re-encoding them). Files are written
    whole (temporary name, then rename), so a concurrent reader sees nothing or the whole file,
    and losing a file only costs its re-encoding.
    """

    _SUFFIX: Final = ".thumb"

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = os.fspath(folder)
        os.makedirs(self.folder, exist_ok=True)
        self._used: set[str] = set()
        self._lock = threading.Lock()

    def key(self, uri: str, px: int) -> str | None:
        path = locations.local_path(uri)
        if path is None:
            return None  # object storage: no cheap identity, so no cache
        try:
            stat = os.stat(path)
        except OSError:
            return None
        identity = f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}|{px}"
        name = hashlib.sha256(identity.encode()).hexdigest()[:40] + self._SUFFIX
        with self._lock:
            self._used.add(name)
        return name

    def get(self, name: str) -> tuple[bytes, str, tuple[int, int], bool] | None:
        path = os.path.join(self.folder, name)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
            os.utime(path)  # used tonight: kept another THUMBNAIL_CACHE_DAYS
            with Image.open(io.BytesIO(data)) as image:  # reads the header only
                size = image.size
        except (OSError, ValueError, Image.DecompressionBombError):
            return None
        # _encode_thumbnail writes PNG exactly when the thumbnail has transparency.
        png = data.startswith(b"\x89PNG")
        return data, "png" if png else "jpeg", size, png

    def put(self, name: str, data: bytes) -> None:
        target = os.path.join(self.folder, name)
        partial = f"{target}.{os.getpid()}.{threading.get_ident()}.part"
        try:
            with open(partial, "wb") as handle:
                handle.write(data)
            os.replace(partial, target)
        except OSError:
            with contextlib.suppress(OSError):
                os.remove(partial)  # a cache that cannot be written only costs speed

    def prune(self) -> None:
        oldest = time.time() - THUMBNAIL_CACHE_DAYS * 86400
        with contextlib.suppress(OSError), os.scandir(self.folder) as entries:
            for entry in entries:
                if entry.name.endswith(self._SUFFIX) and entry.name not in self._used:
                    with contextlib.suppress(OSError):
                        if entry.stat().st_mtime < oldest:
                            os.remove(entry.path)


class _Unavailable(Exception):
    pass


def _read_image_bytes(uri: str) -> bytes:
    if locations.is_http_url(uri):
        raise _Unavailable("remote URL, not downloaded")
    try:
        with locations.open_binary(uri) as handle:
            data = handle.read(MAX_SOURCE_BYTES + 1)
    except FileNotFoundError:
        raise _Unavailable("file not found") from None
    except (OSError, ValueError) as exc:
        raise _Unavailable(f"cannot open ({type(exc).__name__})") from None
    if len(data) > MAX_SOURCE_BYTES:
        raise _Unavailable("too large to thumbnail")
    return data


def _encode_thumbnail(data: bytes, px: int) -> tuple[bytes, str, tuple[int, int], bool]:
    """``(bytes, "jpeg"|"png", size, has_alpha)``: PNG only where transparency must survive."""
    with warnings.catch_warnings():  # Pillow's bomb warning: our own pixel limit below decides
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        source = Image.open(io.BytesIO(data))
    with source:
        if source.width * source.height > MAX_SOURCE_PIXELS:
            raise _Unavailable(f"{source.width}x{source.height}: too many pixels to thumbnail")
        source.draft("RGB", (px * 2, px * 2))  # JPEG decodes at a fraction of full size: much faster
        image = ImageOps.exif_transpose(source)
        image.thumbnail((px, px), Image.Resampling.LANCZOS)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        image = image.convert("RGBA")
        low, _high = image.getchannel("A").getextrema()
        has_alpha = isinstance(low, int | float) and low < 255
    buffer = io.BytesIO()
    if has_alpha:
        # 256 colours with alpha: a third of the bytes of a full PNG, and no visible loss at this size.
        image.quantize(256, method=Image.Quantize.FASTOCTREE).save(buffer, "PNG", optimize=True)
        return buffer.getvalue(), "png", image.size, True
    image.convert("RGB").save(buffer, "JPEG", quality=_JPEG_QUALITY, optimize=True, progressive=True)
    return buffer.getvalue(), "jpeg", image.size, False


# --------------------------------------------------------------------------- HTML


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _figure(label: str, thumb: Thumbnail, *, link: str | None = None, checker: bool = False) -> str:
    if thumb.src is None:
        body = f'<div class="placeholder"><span>{_e(thumb.problem or "no image")}</span></div>'
    else:
        img = (
            f'<img src="{_e(thumb.src)}" width="{thumb.width}" height="{thumb.height}" '
            f'alt="{_e(label)}" decoding="async">'
        )
        body = f'<a href="{_e(link)}">{img}</a>' if link else img
    classes = "thumb checker" if checker and thumb.has_alpha else "thumb"
    return f'<figure class="{classes}">{body}<figcaption>{_e(label)}</figcaption></figure>'


def _link(uri: str | None) -> str | None:
    """A link a browser can follow from the page: local files and http(s) URLs only."""
    if not uri:
        return None
    if locations.is_http_url(uri):
        return uri
    local = locations.local_path(uri)
    return local.absolute().as_uri() if local is not None else None


def _money(value: float | None) -> str:
    return "" if value is None else f"${value:,.3f}" if value < 1 else f"${value:,.2f}"


def _treatment_detail(row: OutputRow, item: CatalogItem | None, thumb: ThumbFor) -> str:
    treatment = item.treatment.value if item else row.treatment
    parts = [f'<span class="treatment">{_e(treatment or "?")}</span>']
    if item is None:
        return "".join(parts)
    if item.treatment is Treatment.color and item.color_hex:
        parts.append(f'<span class="swatch" style="background:{_e(item.color_hex)}"></span>'
                     f'<code>{_e(item.color_hex)}</code>')
    if item.treatment is Treatment.scene:
        if item.reference:
            ref = thumb(item.reference, _REFERENCE_PX)
            name = posixpath.basename(item.reference)
            if ref.src:
                parts.append(f'<img class="ref" src="{_e(ref.src)}" width="{ref.width}" height="{ref.height}" '
                             f'alt="reference {_e(name)}" title="reference: {_e(name)}">')
            else:
                parts.append(f'<span class="ref-name" title="{_e(ref.problem or "")}">ref: {_e(name)}</span>')
        if item.prompt:
            parts.append(f'<q title="{_e(item.prompt)}">{_e(item.prompt)}</q>')
    return "".join(parts)


def _card(row: OutputRow, item: CatalogItem | None, thumb: ThumbFor) -> str:
    status = row.status.value
    after_label = {"failed": "no result", "skipped": "not processed"}.get(status, "after")
    facts = [fact for fact in (
        row.vendor,
        _money(row.cost_usd),
        f"{row.duration_s:.1f} s" if row.duration_s is not None else "",
        f"{row.width} x {row.height}" if row.width and row.height else "",
    ) if fact]
    error = f'<p class="error">{_e(row.error)}</p>' if row.error else ""
    return (
        f'<article class="card s-{status}">'
        f'<div class="pair">{_figure("before", thumb(row.input_uri), link=_link(row.input_uri))}'
        f'{_figure(after_label, thumb(row.output_uri), link=_link(row.output_uri), checker=True)}</div>'
        f'<div class="meta"><div class="title"><h3>{_e(row.sku or "(no sku)")}</h3>'
        f'<span class="badge b-{status}">{_e(status)}</span></div>'
        f'<div class="detail">{_treatment_detail(row, item, thumb)}</div>'
        f'<div class="facts">{" · ".join(_e(fact) for fact in facts)}</div>{error}</div></article>'
    )


def _page(
    *,
    title: str,
    run_id: str | None,
    totals: Mapping[str, Any],
    cards: list[str],
    statuses: list[OutcomeStatus],
    invalid: list[OutputRow],
    hidden: int,
) -> str:
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    tiles = [
        ("Items", totals.get("items", 0), ""),
        ("Succeeded", totals.get("succeeded", 0), "ok"),
        ("Failed", totals.get("failed", 0), "bad" if totals.get("failed") else ""),
        ("Skipped / unchanged", f"{totals.get('skipped', 0)} / {totals.get('unchanged', 0)}", ""),
        ("Invalid rows", totals.get("invalid", 0), "warn" if totals.get("invalid") else ""),
        ("Cost", f"${totals.get('cost_usd', 0.0):,.2f}", ""),
        ("Wall time", format_duration(float(totals.get("wall_time_s", 0.0))), ""),
    ]
    tile_html = "".join(
        f'<div class="tile {tone}"><div class="value">{_e(value)}</div><div class="label">{_e(label)}</div></div>'
        for label, value, tone in tiles
    )
    present = [status for status in _CARD_ORDER if status in statuses]
    radios = '<input type="radio" name="show" id="show-all" checked>' + "".join(
        f'<input type="radio" name="show" id="show-{status.value}">' for status in present
    )
    chips = f'<label for="show-all">All <b>{len(cards)}</b></label>' + "".join(
        f'<label for="show-{status.value}">{_e(status.value.capitalize())} <b>{statuses.count(status)}</b></label>'
        for status in present
    )
    filter_css = "".join(
        f"#show-{s.value}:checked~main .card:not(.s-{s.value}){{display:none}}"
        f'#show-{s.value}:checked~nav label[for="show-{s.value}"]{{background:#1f2933;color:#fff;border-color:#1f2933}}'
        for s in present
    )
    invalid_html = ""
    if invalid:
        lines = "".join(f"<li>{_e(row.error or row.sku or 'invalid row')}</li>" for row in invalid)
        invalid_html = (
            f'<details class="invalid" open><summary>{len(invalid)} manifest row(s) not processed</summary>'
            f"<ul>{lines}</ul></details>"
        )
    hidden_html = f'<p class="note">{hidden} more item(s) not shown (limit reached).</p>' if hidden else ""
    subtitle = " · ".join(part for part in (f"run {_e(run_id)}" if run_id else "", f"generated {generated}") if part)
    empty = '<p class="note">Nothing to show: no item was processed.</p>' if not cards else ""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}{' · ' + _e(run_id) if run_id else ''}</title>"
        f"<style>{_CSS}{filter_css}</style></head><body>"
        f'<header><div class="heading"><h1>{_e(title)}</h1><p class="sub">{subtitle}</p></div>'
        f'<div class="tiles">{tile_html}</div></header>'
        f"{invalid_html}{radios}<nav>{chips}</nav>"
        f'<main class="grid">{"".join(cards)}</main>{hidden_html}{empty}'
        "</body></html>\n"
    )


_CSS: Final = """
:root{--ink:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--card:#fff;
--sans:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Liberation Sans","DejaVu Sans",sans-serif;
--mono:ui-monospace,"SFMono-Regular",Menlo,Consolas,"Liberation Mono","DejaVu Sans Mono",monospace;
--ok:#1f8a5b;--ok-bg:#e3f5ec;--bad:#c8372d;--bad-bg:#fde8e6;--warn:#a65f00;--warn-bg:#fff3d6;
--quiet:#52606d;--quiet-bg:#eef1f4}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:14px/1.45 var(--sans)}
header{background:var(--card);border-bottom:1px solid var(--line);padding:20px 28px 18px}
h1{margin:0;font-size:22px;font-weight:650;letter-spacing:-.01em}
.sub{margin:2px 0 14px;color:var(--muted);font-size:13px}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(120px,1fr));gap:10px}
.tile{background:var(--bg);border:1px solid var(--line);border-radius:10px;padding:10px 12px}
.tile .value{font-size:20px;font-weight:650;font-variant-numeric:tabular-nums}
.tile .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.tile.ok .value{color:var(--ok)}.tile.bad .value{color:var(--bad)}.tile.warn .value{color:var(--warn)}
.tile.bad{background:var(--bad-bg);border-color:#f6c8c3}.tile.warn{background:var(--warn-bg);border-color:#f3dca6}
.invalid{margin:16px 28px 0;background:var(--warn-bg);border:1px solid #f3dca6;border-radius:10px;padding:10px 14px}
.invalid summary{cursor:pointer;font-weight:600;color:var(--warn)}
.invalid ul{margin:8px 0 2px;padding-left:20px;overflow-wrap:anywhere;
font:12.5px/1.6 var(--mono)}
input[name=show]{position:absolute;opacity:0;pointer-events:none}
nav{display:flex;flex-wrap:wrap;gap:8px;padding:16px 28px 0}
nav label{cursor:pointer;user-select:none;border:1px solid var(--line);background:var(--card);border-radius:999px;
padding:4px 12px;font-size:13px;color:var(--quiet)}
nav label b{font-weight:650;margin-left:2px}
#show-all:checked~nav label[for=show-all]{background:var(--ink);color:#fff;border-color:var(--ink)}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(300px,100%),1fr));gap:16px;padding:16px 28px 40px}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;overflow:hidden;
box-shadow:0 1px 2px rgba(31,41,51,.06);display:flex;flex-direction:column}
.card.s-failed{border-color:#f2b8b2;box-shadow:0 0 0 1px #f6c8c3}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:1px;background:var(--line)}
.thumb{margin:0;position:relative;background:#f0f2f5;aspect-ratio:1/1;display:flex;align-items:center;justify-content:center}
.thumb a{display:contents}
.thumb img{max-width:100%;max-height:100%;width:auto;height:auto;display:block;object-fit:contain}
.thumb figcaption{position:absolute;left:6px;bottom:6px;font-size:10.5px;text-transform:uppercase;letter-spacing:.05em;
color:#fff;background:rgba(31,41,51,.55);padding:1px 6px;border-radius:4px}
.checker{background-color:#fff;background-image:conic-gradient(#e3e6ea 25%,#fff 0 50%,#e3e6ea 0 75%,#fff 0);
background-size:16px 16px}
.placeholder{display:flex;align-items:center;justify-content:center;width:100%;height:100%;padding:12px;text-align:center;
color:var(--muted);font-size:12px;background:repeating-linear-gradient(135deg,#f0f2f5 0 10px,#e9ecf0 10px 20px)}
.meta{padding:10px 12px 12px;display:flex;flex-direction:column;gap:5px}
.title{display:flex;align-items:center;justify-content:space-between;gap:8px}
h3{margin:0;font-size:14.5px;font-weight:650;font-family:var(--mono)}
.badge{font-size:11px;font-weight:650;text-transform:uppercase;letter-spacing:.05em;border-radius:999px;padding:2px 9px}
.b-succeeded{color:var(--ok);background:var(--ok-bg)}.b-failed{color:var(--bad);background:var(--bad-bg)}
.b-skipped{color:var(--warn);background:var(--warn-bg)}.b-unchanged{color:var(--quiet);background:var(--quiet-bg)}
.detail{display:flex;align-items:center;flex-wrap:wrap;gap:6px;color:var(--ink);font-size:13px;min-height:22px}
.treatment{font-weight:600}
.swatch{width:16px;height:16px;border-radius:4px;border:1px solid rgba(0,0,0,.15);display:inline-block}
.detail code{font-size:12px;color:var(--muted)}
.detail img.ref{width:auto;height:22px;border-radius:3px;border:1px solid var(--line)}
.ref-name{color:var(--muted);font-size:12px}
.detail q{color:var(--muted);font-style:italic;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;
flex:1 1 0;min-width:0}
.facts{color:var(--muted);font-size:12.5px;font-variant-numeric:tabular-nums}
.error{margin:2px 0 0;padding:6px 8px;border-radius:6px;background:var(--bad-bg);color:#8f241c;font-size:12.5px;
overflow-wrap:anywhere}
.note{padding:0 28px;color:var(--muted)}
@media (max-width:640px){header{padding:16px}nav,.grid{padding-left:12px;padding-right:12px}.invalid{margin:12px 12px 0}
.note{padding:0 12px}.tiles{grid-template-columns:repeat(2,1fr)}}
"""
