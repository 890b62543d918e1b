"""The nightly catalog refresh over a large manifest: what an unchanged night and a 1 % night cost.

Runs the code of the nightly DAG's tasks in order, in-process (``plan`` = ``prepare_run``,
``batches``, ``process`` = one ``BgReplaceBatchOperator`` per vendor driven like Airflow drives
it, ``publish`` = ``finish_run``), against the vendor sandbox over HTTP, for each state store
(SQLite, and PostgreSQL when reachable). Airflow's own per-task overhead is not included.

The catalog: ``--rows`` rows (50 % remove, 25 % colour on ImagePipeline, 25 % prompt scenes on
fal), each naming **its own file**: one of the 30 sample-catalog photos (640x480 JPEG, ~32 KB)
followed by a row-unique trailer after the JPEG end marker, so every file has its own content
hash and still decodes as the photo. The files are made once into ``--cache-dir`` (~3.3 GB at
100,000 rows) and reused. Per store:

1. seed: a fresh state store; ``prepare_run`` hashes every file (the first night), then every
   planned item is written to its batch manifest as succeeded (no vendor is called for the
   seed), its output a hard link to a 640x480 transparent PNG cut-out (removals) or to its own
   input photo (colour, scene), and ``finish_run`` records them all;
2. unchanged night: the whole path; vendor calls (every sandbox counter) must be 0;
3. changed night: ``--changed`` rows get a new photo; the whole path, with the batches
   processed by the sandbox; planned and made submits must both equal ``--changed``;
4. the night after: unchanged again.

"minus vendor" = plan + batches + publish; the ``process`` step (submits, sandbox latency,
downloads) is reported on its own. Publish includes the contact sheet (up to 2,000 cards, each
thumbnailing its input and output; thumbnails are cached between nights beside the runs, and
all nights of a store share one folder, as a catalog's nights do). Real catalog photos are
larger (1-4 MP): that costs more in the first night's hashing and in the changed rows' hashes
and thumbnails, not in an unchanged night, which reads no image. Also measured:
``BgReplaceBatchOperator.load_items`` on a plan of every row, as the first try loads it (every
item validated) and as each resume does (items validated when used).

    .venv/bin/python bench/incremental_run.py                   # 100,000 rows, 1,000 changed
    .venv/bin/python bench/incremental_run.py --rows 40 --changed 6 --stores sqlite --no-write  # the test
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]  # results.py beside this file; tests.postgres_support

from results import append_section  # noqa: E402

from tests.postgres_support import find_postgres, temporary_schema  # noqa: E402

SAMPLES = sorted((ROOT / "dags_examples" / "sample_catalog" / "images").glob("*.jpg"))
HEADER = "sku,image,treatment,color,prompt,reference,vendor,output_format\n"
CATALOG = "bench"


# --------------------------------------------------------------------------- the catalog


def _photo(index: int, generation: int = 0) -> bytes:
    """Row ``index``'s photo: a sample JPEG plus a trailer after its end marker (decoders ignore it)."""
    sample = _SAMPLE_BYTES[(index + generation * 7) % len(_SAMPLE_BYTES)]
    return sample + f"\nbench-row {index} generation {generation}\n".encode()


_SAMPLE_BYTES = [path.read_bytes() for path in SAMPLES]


def _row(index: int, image: str) -> str:
    sku = f"SKU-{index:07d}"
    kind = index % 4
    if kind in (0, 1):
        return f"{sku},{image},remove,,,,,png\n"
    if kind == 2:
        return f"{sku},{image},color,#F4F1EA,,,,\n"
    return f'{sku},{image},scene,,"on a marble counter, soft light {index % 50}",,fal,\n'


def build_catalog(cache: Path, rows: int) -> Path:
    """``cache/<rows>/manifest.csv`` and one image per row (made once; a marker says it is complete)."""
    folder = cache / f"rows-{rows}"
    manifest = folder / "manifest.csv"
    marker = folder / ".complete"
    if marker.is_file() and marker.read_text() == f"{rows} {len(SAMPLES)}":
        return manifest
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with manifest.open("w") as out:
        out.write(HEADER)
        for index in range(rows):
            shard = f"{index // 1000:04d}"
            if index % 1000 == 0:
                (images / shard).mkdir(exist_ok=True)
            relative = f"images/{shard}/{index:07d}.jpg"
            (folder / relative).write_bytes(_photo(index))
            out.write(_row(index, relative))
    marker.write_text(f"{rows} {len(SAMPLES)}")
    print(f"built {rows} images in {time.perf_counter() - started:.1f} s under {folder}", flush=True)
    return manifest


def changed_indices(rows: int, changed: int) -> list[int]:
    """``changed`` rows spread evenly over the catalog, and over the treatments (row % 4)."""
    step = rows / max(changed, 1)
    offset = 4 if step >= 4 else 1
    return [int(n * step) + n % offset for n in range(min(changed, rows))]


def image_path(manifest: Path, index: int) -> Path:
    return manifest.parent / "images" / f"{index // 1000:04d}" / f"{index:07d}.jpg"


@contextmanager
def changed_photos(manifest: Path, indices: list[int]) -> Iterator[None]:
    """Give ``indices`` a new photo (another sample, another trailer); put the originals back after."""
    try:
        for index in indices:
            image_path(manifest, index).write_bytes(_photo(index, generation=1))
        yield
    finally:
        for index in indices:
            image_path(manifest, index).write_bytes(_photo(index))


# --------------------------------------------------------------------------- one night


def drive(operator: Any) -> tuple[dict[str, Any], int]:
    """Run a batch operator to the end the way Airflow does: execute, defer, event, resume..."""
    import asyncio

    from airflow.sdk.exceptions import TaskDeferred

    async def first_event(trigger: Any) -> Any:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    resumes = 0
    try:
        return operator.execute(context={}), resumes
    except TaskDeferred as deferred:
        pending = deferred
    while True:
        resumes += 1
        event = asyncio.run(first_event(pending.trigger))
        try:
            return operator.execute_complete({}, event, **(pending.kwargs or {})), resumes
        except TaskDeferred as deferred:
            pending = deferred


def night(
    manifest: Path,
    state: Any,
    out: Path,
    run_id: str,
    *,
    max_in_flight: int,
    poll_interval: float,
    seed: bool = False,
) -> dict[str, Any]:
    """One nightly run, timed per task. ``seed``: the batches are marked succeeded without a vendor."""
    from airflow_bgreplace.catalog.pipeline import RunFolder, finish_run, prepare_run
    from airflow_bgreplace.operators.batch import BgReplaceBatchOperator

    folder = RunFolder(f"file://{out / run_id}")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    prepared = prepare_run(
        str(manifest), catalog=CATALOG, default_vendor="imagepipeline", run_folder=folder, state=state
    )
    timings["plan"] = time.perf_counter() - started

    mark = time.perf_counter()
    # The DAG's ``batches`` task: the budget shared out by planned cost (no budget here).
    batches = [
        {key: batch[key] for key in ("vendor", "items_uri", "output_base", "manifest_uri")}
        for batch in prepared["batches"]
    ]
    timings["batches"] = time.perf_counter() - mark

    mark = time.perf_counter()
    resumes = 0
    for batch in batches:
        if seed:
            _mark_succeeded(batch, cutouts(manifest.parent.parent))
            continue
        operator = BgReplaceBatchOperator(
            task_id=f"process_{batch['vendor']}",
            **batch,
            max_in_flight=max_in_flight,
            poll_interval=poll_interval,
        )
        summary, count = drive(operator)
        resumes += count
    timings["process"] = time.perf_counter() - mark

    mark = time.perf_counter()
    summary = finish_run(
        prepared, catalog=CATALOG, run_folder=folder, state=state, run_id=run_id, max_failure_ratio=1.0
    )
    timings["publish"] = time.perf_counter() - mark
    timings["minus_vendor"] = timings["plan"] + timings["batches"] + timings["publish"]
    return {
        "counts": prepared["counts"], "summary": summary, "timings": timings, "resumes": resumes, "batches": batches,
    }  # fmt: skip


def cutouts(cache: Path) -> list[Path]:
    """One transparent PNG per sample photo (soft elliptical alpha): what a removal returns."""
    from PIL import Image, ImageDraw, ImageFilter

    folder = cache / "cutouts"
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for sample in SAMPLES:
        target = folder / f"{sample.stem}.png"
        if not target.is_file():
            with Image.open(sample) as photo:
                image = photo.convert("RGBA")
            alpha = Image.new("L", image.size, 0)
            width, height = image.size
            ImageDraw.Draw(alpha).ellipse((width * 0.2, height * 0.1, width * 0.8, height * 0.9), fill=255)
            image.putalpha(alpha.filter(ImageFilter.GaussianBlur(3)))
            image.save(target.with_suffix(".tmp"), "PNG")
            target.with_suffix(".tmp").replace(target)
        made.append(target)
    return made


def _mark_succeeded(batch: dict[str, Any], cutout_files: list[Path]) -> None:
    """The seed's stand-in for a first night's vendor work: every item succeeded. Its output is a
    hard link to a cut-out PNG (removals) or to its own input photo (colour, scene)."""
    from airflow_bgreplace.catalog.outputs import OutcomeStatus, OutputManifestWriter, OutputRow

    images = Path(batch["output_base"].removeprefix("file://"))
    images.mkdir(parents=True, exist_ok=True)
    with open(batch["items_uri"].removeprefix("file://"), "rb") as plan, OutputManifestWriter(
        batch["manifest_uri"], fsync=False
    ) as writer:
        for line in plan:
            item = json.loads(line)
            source = item["meta"]["input_uri"]
            if item["meta"]["treatment"] == "remove":
                output = images / f"{item['id']}.png"
                os.link(cutout_files[int(item["id"].removeprefix("SKU-")) % len(cutout_files)], output)
            else:
                output = images / f"{item['id']}.jpg"
                os.link(source, output)
            writer.write(
                OutputRow(
                    sku=item["id"], status=OutcomeStatus.succeeded, vendor=batch["vendor"], endpoint=item["endpoint"],
                    input_uri=source, output_uri=f"file://{output}", fingerprint=item["meta"]["fingerprint"],
                    job_id=f"seed-{item['id']}",
                )
            )  # fmt: skip


def vendor_calls(stats: dict[str, Any]) -> dict[str, int]:
    """Every request counter of every vendor in the sandbox (a call of any kind counts)."""
    counted = ("submits_accepted", "submits_rejected", "status_calls", "result_calls", "cancels", "uploads",
               "file_downloads")  # fmt: skip
    return {
        vendor: sum(int(counters.get(name, 0)) for name in counted) for vendor, counters in stats["vendors"].items()
    }


# --------------------------------------------------------------------------- one store


def run_store(
    name: str, url: str, manifest: Path, indices: list[int], sandbox: Any, args: argparse.Namespace
) -> dict[str, Any]:
    from airflow_bgreplace.catalog.state import CatalogStateStore

    state = CatalogStateStore(url)
    state.ensure_schema()
    out = Path(tempfile.mkdtemp(prefix=f"bench-incremental-{name}-"))
    knobs = {"max_in_flight": args.max_in_flight, "poll_interval": args.poll_interval}
    try:
        print(f"[{name}] seed (first night, no vendor)...", flush=True)
        seed = night(manifest, state, out, "seed", seed=True, **knobs)
        seed["load_items"] = time_load_items([batch["items_uri"] for batch in seed["batches"]], out)
        sandbox.reset()
        print(f"[{name}] unchanged night...", flush=True)
        unchanged = night(manifest, state, out, "unchanged", **knobs)
        unchanged["calls"] = vendor_calls(sandbox.stats())
        sandbox.reset()
        print(f"[{name}] changed night ({len(indices)} rows)...", flush=True)
        with changed_photos(manifest, indices):
            changed = night(manifest, state, out, "changed", **knobs)
            stats = sandbox.stats()["vendors"]
            changed["submits"] = sum(int(counters["submits_accepted"]) for counters in stats.values())
            changed["duplicates"] = sum(int(counters["duplicate_submits"]) for counters in stats.values())
            sandbox.reset()
            print(f"[{name}] the night after...", flush=True)
            after = night(manifest, state, out, "after", **knobs)
            after["calls"] = vendor_calls(sandbox.stats())
    finally:
        state.drop()
        state.dispose()
        shutil.rmtree(out, ignore_errors=True)
    return {"seed": seed, "unchanged": unchanged, "changed": changed, "after": after}


def time_load_items(plan_uris: list[str], scratch: Path) -> tuple[float, float, int]:
    """Median seconds of ``load_items`` on one plan holding every planned item (the seed's plans
    joined): as the first try loads it, and as a resume does."""
    from airflow_bgreplace.operators.batch import BgReplaceBatchOperator

    joined = scratch / "all_items.jsonl"
    with joined.open("wb") as out:
        for uri in plan_uris:
            out.write(Path(uri.removeprefix("file://")).read_bytes())
    operator = BgReplaceBatchOperator(task_id="load", vendor="imagepipeline", items_uri=f"file://{joined}")
    medians = []
    for validate_all in (True, False):
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            items = operator.load_items(validate_all=validate_all)
            runs.append(time.perf_counter() - started)
        medians.append(statistics.median(runs))
    return medians[0], medians[1], len(items)


# --------------------------------------------------------------------------- report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--changed", type=int, default=None, help="rows with a new photo (default: 1 %% of rows)")
    parser.add_argument("--stores", default="auto", help="sqlite,postgres; auto = sqlite, plus postgres when reachable")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "bgreplace-bench-catalog")
    parser.add_argument("--latency", type=float, default=0.05, help="sandbox job latency (s)")
    parser.add_argument("--max-in-flight", type=int, default=100)
    parser.add_argument("--poll-interval", type=float, default=0.2)
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch RESULTS.md")
    args = parser.parse_args()
    changed_count = args.changed if args.changed is not None else args.rows // 100
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))

    from airflow_bgreplace.sandbox import SandboxServer, SandboxSettings

    load_before = os.getloadavg()[0]
    manifest = build_catalog(args.cache_dir, args.rows)
    indices = changed_indices(args.rows, changed_count)
    wanted = ["sqlite", "postgres"] if args.stores == "auto" else args.stores.split(",")
    postgres_url, reason = find_postgres() if "postgres" in wanted else (None, "")
    if "postgres" in wanted and postgres_url is None:
        if args.stores != "auto":
            print(reason, file=sys.stderr)
            return 2
        print(f"postgres skipped: {reason}")
    settings = SandboxSettings(
        latency_s=args.latency, latency_distribution="fixed", concurrency=0, submit_rate=0, status_rate=0
    )
    results: dict[str, dict[str, Any]] = {}
    with ExitStack() as stack:
        sandbox = stack.enter_context(SandboxServer(settings))
        for vendor in ("imagepipeline", "fal"):
            os.environ[f"AIRFLOW_CONN_BGREPLACE_{vendor.upper()}_DEFAULT"] = sandbox.connection_uri(vendor)
        state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-state-")))
        urls = {"sqlite": f"sqlite:///{state_dir}/bgreplace.db"} if "sqlite" in wanted else {}
        if postgres_url is not None:
            urls["postgres"] = stack.enter_context(temporary_schema(postgres_url, prefix="bgreplace_bench"))
        for name, url in urls.items():
            results[name] = run_store(name, url, manifest, indices, sandbox, args)
    first_s, resume_s, load_n = next(iter(results.values()))["seed"]["load_items"]
    load_after = os.getloadavg()[0]

    ok = True
    table = [
        "| store | night | planned | submits made | vendor calls | plan s | publish s | **minus vendor s** "
        "| process s (vendor) | resumes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, nights in results.items():
        for label, key in (("seed (first night, all hashed)", "seed"), ("unchanged", "unchanged"),
                           (f"{changed_count} changed", "changed"), ("the night after", "after")):  # fmt: skip
            run = nights[key]
            t = run["timings"]
            planned = run["counts"]["to_process"]
            calls = run.get("calls")
            made = run.get("submits", "-" if key != "seed" else "(seeded)")
            calls_text = "-" if calls is None else str(sum(calls.values()))
            table.append(
                f"| {name} | {label} | {planned} | {made} | {calls_text} | {t['plan']:.2f} | {t['publish']:.2f} "
                f"| **{t['minus_vendor']:.2f}** | {t['process']:.2f} | {run['resumes']} |"
            )
        for key in ("unchanged", "after"):
            run = nights[key]
            if run["counts"]["to_process"] != 0 or sum(run["calls"].values()) != 0:
                ok = False
                print(f"[{name}] {key}: expected nothing planned and no vendor call: {run['counts']} {run['calls']}")
        changed = nights["changed"]
        if changed["counts"]["to_process"] != changed_count or changed["submits"] != changed_count:
            ok = False
            print(f"[{name}] changed: planned {changed['counts']['to_process']}, made {changed['submits']}")
        if changed["duplicates"] or changed["summary"]["succeeded"] != changed_count:
            ok = False
            print(f"[{name}] changed: {changed['duplicates']} duplicates, {changed['summary']['succeeded']} succeeded")
        if nights["seed"]["summary"]["recorded"] != args.rows:
            ok = False
            print(f"[{name}] seed recorded {nights['seed']['summary']['recorded']} of {args.rows}")
    table += [
        "",
        f"- Rows: {args.rows:,}, each its own file (a sample 640x480 JPEG + a row-unique trailer); "
        f"changed: {changed_count:,} rows given another photo, spread evenly.",
        "- minus vendor = plan (read + validate + stat/hash + diff + plans) + batches + publish (merge, "
        "record successes, output manifest, contact sheet of up to 2,000 cards); process = the batch operators "
        f"against the sandbox (latency {args.latency:g} s, unlimited concurrency, max_in_flight "
        f"{args.max_in_flight}). Vendor calls = every request counter of every sandbox vendor.",
        f"- `BgReplaceBatchOperator.load_items` on a {load_n:,}-item plan: {first_s:.2f} s on the first try "
        f"(every item validated), {resume_s:.2f} s on each resume (items validated when used).",
        f"- Load average (1 min): {load_before:.2f} before, {load_after:.2f} after.",
    ]
    print("\n".join(table))
    print("OK" if ok else "FAILED: see above")
    if not args.no_write:
        command = f".venv/bin/python bench/incremental_run.py --rows {args.rows}"
        if args.changed is not None:
            command += f" --changed {args.changed}"
        append_section("Incremental nightly run (plan, process, publish; sandbox)", command, table)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
