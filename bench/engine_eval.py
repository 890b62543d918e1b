"""Evaluate the local engine: matte quality per group and speed/memory per operation.

Quality runs on the development set in ``/work/shared/engine/dev`` (path argument; default
``../shared/engine/dev`` next to the repository). That set is third-party research data with
no licence to redistribute: it is read in place, never copied into the repository. From its
five alphamatting images the script builds semi-synthetic studio photos (the real foreground
and its true alpha over a near-white seamless, a light-grey sweep with vignette and a soft cast
shadow, and a light-blue paper: ``I = a F + (1 - a) B``, 12 % margin, sensor noise, JPEG q92),
and it scores the ten real photos as they are. Groups: studio-white, studio-grey, studio-blue,
real-alphamatting, real-grabcut. Metrics: mask IoU at alpha 0.5 (GrabCut's 128 band ignored),
alpha SAD in thousands, alpha MSE x 1e3.

Speed: remove / recolour / replace at 1 MP and 4 MP, each in a fresh process (cold call, then
the median of warm calls, and the process's peak RSS), on a studio photo and for remove also on
a real scene.

``--quick`` uses synthetic photos only and small speed images, finishing in seconds (it is
what ``tests/bench/test_engine_eval_runs.py`` runs). Results go to ``bench/RESULTS.md`` (the
engine section between its markers is replaced) unless ``--no-write``.

    .venv/bin/python bench/engine_eval.py                 # full run, ~2-4 min
    .venv/bin/python bench/engine_eval.py --quick --results /tmp/r.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from airflow_bgreplace import engine  # noqa: E402
from airflow_bgreplace.engine import synthetic  # noqa: E402
from airflow_bgreplace.engine.settings import ENV_MODEL_PATH, ENV_VERIFY, available_cores  # noqa: E402

DEFAULT_DEV = REPO.parent / "shared" / "engine" / "dev"
DEFAULT_RESULTS = REPO / "bench" / "RESULTS.md"
SECTION_START = "<!-- engine_eval:start -->"
SECTION_END = "<!-- engine_eval:end -->"
GROUPS = ("studio-white", "studio-grey", "studio-blue", "real-alphamatting", "real-grabcut")
STUDIO_MARGIN = 0.12
TARGETS = {"studio_iou": 0.985, "studio_sad_k": 5.0, "grabcut_iou": 0.88, "mp_per_s": 1.5}


@dataclass
class Sample:
    name: str
    group: str
    rgb: NDArray[np.uint8]
    alpha: NDArray[np.float32]
    #: Pixels the metrics skip (GrabCut's unlabelled band).
    ignore: NDArray[np.bool_] | None = None


@dataclass
class Row:
    name: str
    group: str
    iou: float
    sad_k: float
    mse_e3: float
    method: str
    confidence: float
    low_confidence: bool
    seconds: float
    megapixels: float
    notes: list[str] = field(default_factory=list)


# --- data ----------------------------------------------------------------------------------------


def _jpeg_roundtrip(rgb: NDArray[np.uint8], quality: int = 92) -> NDArray[np.uint8]:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), dtype=np.uint8)


def studio_variant(name: str, rgb: NDArray[np.uint8], alpha: NDArray[np.float32], kind: str, seed: int) -> Sample:
    """The real foreground and alpha over a synthetic backdrop, with a margin around the frame."""
    height, width = alpha.shape
    my, mx = round(STUDIO_MARGIN * height), round(STUDIO_MARGIN * width)
    fg = cv2.copyMakeBorder(rgb, my, my, mx, mx, cv2.BORDER_REPLICATE).astype(np.float32)
    a = cv2.copyMakeBorder(alpha, my, my, mx, mx, cv2.BORDER_CONSTANT, value=0.0)
    big_h, big_w = a.shape
    rng = np.random.default_rng(seed)
    backdrop = {"studio-white": "white", "studio-grey": "grey_sweep", "studio-blue": "blue_paper"}[kind]
    bg = synthetic.make_backdrop(backdrop, big_w, big_h, rng)  # type: ignore[arg-type]
    if kind == "studio-grey":
        # A soft key-light shadow cast to the lower right: darker backdrop, not part of the alpha.
        shift = np.float32([[1, 0, 0.015 * big_w], [0, 1, 0.01 * big_h]])
        cast = cv2.warpAffine(a, shift, (big_w, big_h))
        cast = cv2.GaussianBlur(cast, (0, 0), 0.015 * big_w)
        bg = bg * (1.0 - 0.3 * cast[..., None])
    composite = a[..., None] * fg + (1.0 - a[..., None]) * bg + rng.normal(0.0, 1.2, (big_h, big_w, 3))
    image = _jpeg_roundtrip(np.asarray(np.clip(composite + 0.5, 0, 255), dtype=np.uint8))
    return Sample(f"{name}:{kind}", kind, image, a.astype(np.float32))


def load_dev(root: Path) -> list[Sample]:
    samples: list[Sample] = []
    images = sorted((root / "images").iterdir())
    for index, path in enumerate(images):
        name = path.stem
        rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8)
        gt = np.asarray(Image.open(root / "gt" / f"{name}.png").convert("L"), dtype=np.uint8)
        if name.startswith("am_"):
            alpha = gt.astype(np.float32) / 255.0
            samples.append(Sample(name, "real-alphamatting", rgb, alpha))
            for offset, kind in enumerate(("studio-white", "studio-grey", "studio-blue")):
                samples.append(studio_variant(name, rgb, alpha, kind, seed=100 * index + offset))
        else:
            alpha = (gt > 192).astype(np.float32)
            ignore = (gt > 64) & (gt < 192)
            samples.append(Sample(name, "real-grabcut", rgb, alpha, ignore))
    return samples


def synthetic_samples(products: Sequence[str] = synthetic.PRODUCTS) -> list[Sample]:
    """Synthetic products on the three studio backdrops and the busy pattern (no dev set needed)."""
    groups = {"white": "studio-white", "grey_sweep": "studio-grey", "blue_paper": "studio-blue", "busy": "busy"}
    samples = []
    for index, product in enumerate(products):
        for backdrop, group in groups.items():
            photo = synthetic.make_photo(product, backdrop, (400, 300), seed=index)  # type: ignore[arg-type]
            samples.append(Sample(f"{product}:{backdrop}", group, photo.rgb, photo.alpha))
    return samples


# --- metrics -------------------------------------------------------------------------------------


def score(pred: NDArray[np.float32], truth: NDArray[np.float32], ignore: NDArray[np.bool_] | None) -> tuple[float, ...]:
    valid = ~ignore if ignore is not None else np.ones(truth.shape, dtype=bool)
    p, t = pred[valid], truth[valid]
    pm, tm = p > 0.5, t > 0.5
    union = float((pm | tm).sum())
    iou = float((pm & tm).sum()) / union if union else 1.0
    diff = np.abs(p - t)
    return iou, float(diff.sum()) / 1000.0, float((diff * diff).mean()) * 1000.0


def evaluate(samples: Sequence[Sample], dump: Path | None = None) -> list[Row]:
    rows = []
    for sample in samples:
        start = time.perf_counter()
        matte = engine.segment(Image.fromarray(sample.rgb))
        seconds = time.perf_counter() - start
        iou, sad, mse = score(matte.alpha, sample.alpha, sample.ignore)
        rows.append(
            Row(
                sample.name,
                sample.group,
                iou,
                sad,
                mse,
                matte.method,
                matte.confidence,
                matte.low_confidence,
                seconds,
                sample.alpha.size / 1e6,
                matte.notes,
            )
        )
        if dump is not None:
            dump.mkdir(parents=True, exist_ok=True)
            sheet = np.concatenate([sample.rgb, _grey(sample.alpha), _grey(matte.alpha)], axis=1)
            Image.fromarray(sheet).save(dump / f"{sample.name.replace(':', '_')}.jpg", quality=85)
    return rows


def _grey(alpha: NDArray[np.float32]) -> NDArray[np.uint8]:
    return np.repeat(np.asarray(np.clip(alpha * 255, 0, 255), dtype=np.uint8)[..., None], 3, axis=2)


def summarise(rows: Sequence[Row]) -> list[dict[str, object]]:
    by_group: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_group[row.group].append(row)
    order = [g for g in (*GROUPS, "busy") if g in by_group]
    table = []
    for group in order:
        members = by_group[group]
        methods = Counter(r.method for r in members)
        table.append(
            {
                "group": group,
                "n": len(members),
                "iou_mean": statistics.fmean(r.iou for r in members),
                "iou_min": min(r.iou for r in members),
                "sad_k": statistics.fmean(r.sad_k for r in members),
                "mse_e3": statistics.fmean(r.mse_e3 for r in members),
                "low_conf": sum(r.low_confidence for r in members),
                "methods": ", ".join(f"{m} x{c}" for m, c in methods.most_common()),
                "s_per_img": statistics.fmean(r.seconds for r in members),
            }
        )
    return table


# --- speed ---------------------------------------------------------------------------------------


def _speed_image(kind: str, megapixels: float, dev: Path | None) -> NDArray[np.uint8]:
    kind = kind.removesuffix("+verify")
    if dev is not None and (dev / "images").is_dir():
        if kind == "scene":
            rgb = np.asarray(Image.open(dev / "images" / "gc_book.png").convert("RGB"), dtype=np.uint8)
        else:
            name = "am_GT06"
            rgb = np.asarray(Image.open(dev / "images" / f"{name}.png").convert("RGB"), dtype=np.uint8)
            gt = np.asarray(Image.open(dev / "gt" / f"{name}.png").convert("L"), dtype=np.float32) / 255.0
            rgb = studio_variant(name, rgb, gt, "studio-white", seed=7).rgb
    else:
        backdrop = "busy" if kind == "scene" else "white"
        rgb = synthetic.make_photo("bottle", backdrop, (800, 600), seed=3).rgb  # type: ignore[arg-type]
    height, width = rgb.shape[:2]
    scale = (megapixels * 1e6 / (height * width)) ** 0.5
    size = (round(width * scale), round(height * scale))
    return np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC), dtype=np.uint8)


def _encode(rgb: NDArray[np.uint8], fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, quality=92)
    return buffer.getvalue()


def peak_rss_mb() -> float:
    """This process's peak resident set size.

    ``VmHWM`` belongs to the current address space; ``ru_maxrss`` on Linux also carries the
    parent's peak across fork+exec, which would charge the evaluator's memory to the worker.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def speed_worker(op: str, kind: str, megapixels: float, repeats: int, dev: Path | None) -> dict[str, object]:
    """Runs inside a fresh process: bytes in, bytes out, as a caller would use the engine.

    ``kind`` ``studio+verify`` is the studio photo with u2netp consulted on every image.
    """
    if kind.endswith("+verify"):
        os.environ[ENV_VERIFY] = "always"
    baseline = peak_rss_mb()
    data = _encode(_speed_image(kind, megapixels, dev))
    reference = _encode(synthetic.make_scene((1024, 768), seed=1))
    calls: dict[str, Callable[[], engine.EngineResult]] = {
        "remove": lambda: engine.remove_background(data),
        "recolor": lambda: engine.recolor(data, (240, 240, 240), drop_shadow=True),
        "replace": lambda: engine.replace_with_reference(data, reference),
        "prompt": lambda: engine.replace_with_prompt(data, "white marble counter"),
    }
    call = calls[op]
    start = time.perf_counter()
    first = call()
    cold = time.perf_counter() - start
    warm = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        warm.append(time.perf_counter() - start)
    median = statistics.median(warm) if warm else cold
    mp = first.width * first.height / 1e6
    return {
        "op": op,
        "input": kind,
        "mp": round(mp, 3),
        "method": first.method,
        "cold_s": round(cold, 3),
        "warm_s": round(median, 3),
        "mp_per_s": round(mp / median, 2),
        "peak_rss_mb": peak_rss_mb(),
        "baseline_rss_mb": baseline,
        "steps": {k: v for k, v in first.timings_s.items()},
    }


def run_speed(
    plan: Sequence[tuple[str, str, float]], repeats: int, dev: Path | None, env: dict[str, str] | None = None
) -> list[dict[str, object]]:
    out = []
    for op, kind, megapixels in plan:
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", op, kind, str(megapixels)]
        command += ["--repeats", str(repeats)]
        if dev is not None:
            command += ["--dev", str(dev)]
        done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
        out.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return out


# --- report --------------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{mem_kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        mem = "RAM unknown"
    try:
        import onnxruntime

        ort = f"onnxruntime {onnxruntime.__version__}"
    except ImportError:
        ort = "no onnxruntime"
    return (
        f"{cpu}, {available_cores()} cores available, {mem}; Python {platform.python_version()}, "
        f"numpy {np.__version__}, OpenCV {cv2.__version__}, {ort}"
    )


def load_average() -> str:
    try:
        one, five = os.getloadavg()[:2]
    except OSError:
        return "unknown"
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


def _quality_table(quality: Sequence[dict[str, object]]) -> list[str]:
    lines = [
        "| group | n | IoU mean | IoU min | SAD (k) | MSE x1e3 | low-conf | s/img | methods |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for q in quality:
        lines.append(
            f"| {q['group']} | {q['n']} | {q['iou_mean']:.4f} | {q['iou_min']:.4f} | {q['sad_k']:.2f} | "
            f"{q['mse_e3']:.2f} | {q['low_conf']} | {q['s_per_img']:.2f} | {q['methods']} |"
        )
    return lines


def with_env(overrides: dict[str, str], run: Callable[[], list[Row]]) -> list[Row]:
    """Run with some engine settings changed (they are read from the environment per call)."""
    saved = {key: os.environ.get(key) for key in overrides}
    os.environ.update(overrides)
    try:
        return run()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def render_markdown(
    command: str,
    quality: list[dict[str, object]],
    rows: Sequence[Row],
    speed: list[dict[str, object]],
    quick: bool,
    load_before: str = "unknown",
    variants: Sequence[tuple[str, list[dict[str, object]]]] = (),
) -> str:
    cores = available_cores()
    data = "synthetic photos only" if quick else "dev set (5 alphamatting + 5 GrabCut) and its studio variants"
    lines = [
        SECTION_START,
        "## Local engine (`airflow_bgreplace.engine`)",
        "",
        f"- Date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {machine()}",
        f"- Load average before the run (shared machine): {load_before}",
        f"- Command: `{command}`",
        f"- Data: {data}",
        f"- Targets: studio IoU >= {TARGETS['studio_iou']} and SAD <= {TARGETS['studio_sad_k']}k; "
        f"real GrabCut IoU >= {TARGETS['grabcut_iou']}; >= {TARGETS['mp_per_s']} MP/s at 1 MP on {cores} cores",
        "",
        "### Matte quality per group (default settings)",
        "",
        *_quality_table(quality),
    ]
    for title, table in variants:
        lines += ["", f"#### {title}", "", *_quality_table(table)]
    lines += [
        "",
        "<details><summary>Per image</summary>",
        "",
        "| image | IoU | SAD (k) | method | conf |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        flag = " (low)" if r.low_confidence else ""
        lines.append(f"| {r.name} | {r.iou:.4f} | {r.sad_k:.2f} | {r.method} | {r.confidence:.2f}{flag} |")
    lines += ["", "</details>", ""]
    if not quick:
        lines += [
            "Notes: studio groups are the five alphamatting foregrounds with their true alpha over synthetic",
            "backdrops (12 % margin, noise, JPEG q92; the grey sweep also has a cast shadow that is not part",
            "of the alpha). In real-grabcut the doll's ground truth marks only the head while every method",
            "returns the whole doll (IoU 0.54), which caps that group's mean. Confidence rules were calibrated",
            "on these same images: they are not a held-out result.",
            "",
        ]
    if speed:
        lines += [
            "### Speed and memory (fresh process per row; bytes in, bytes out, PNG/JPEG encode included)",
            "",
            "Inputs: `studio` = am_GT06 on the white seamless, resized (default settings: the colour key is clean,",
            "u2netp is not consulted); `studio+verify` = the same with `AIRFLOW__BGREPLACE__ENGINE_VERIFY=always`;",
            "`scene` = gc_book (real scene, u2netp path). MP/s = output megapixels / median warm seconds; per core",
            f"= MP/s / {cores}. Peak RSS = the worker process's VmHWM.",
            "",
            "| op | input | MP | method | cold s | warm s | MP/s | MP/s per core | peak RSS MB |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for s in speed:
            per_core = float(s["mp_per_s"]) / cores  # type: ignore[arg-type]
            lines.append(
                f"| {s['op']} | {s['input']} | {s['mp']} | {s['method']} | {s['cold_s']} | {s['warm_s']} | "
                f"{s['mp_per_s']} | {per_core:.2f} | {s['peak_rss_mb']} |"
            )
        lines.append("")
    lines.append(SECTION_END)
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace this script's section of ``path`` (between its markers), or append it."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if SECTION_START in text and SECTION_END in text:
        head, rest = text.split(SECTION_START, 1)
        _, tail = rest.split(SECTION_END, 1)
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dev", nargs="?", type=Path, default=DEFAULT_DEV, help="dev set folder")
    parser.add_argument("--quick", action="store_true", help="synthetic images only, small speed runs")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dump", type=Path, help="write image | truth | prediction sheets here")
    parser.add_argument("--only", help="substring filter on sample names")
    parser.add_argument("--worker", nargs=3, metavar=("OP", "INPUT", "MP"), help=argparse.SUPPRESS)
    parser.add_argument("--dev", dest="dev_flag", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        op, kind, mp = args.worker
        print(json.dumps(speed_worker(op, kind, float(mp), args.repeats, args.dev_flag)))
        return 0

    load_before = load_average()
    dev: Path | None = args.dev if (not args.quick and (args.dev / "manifest.csv").is_file()) else None
    if not args.quick and dev is None:
        print(f"dev set not found at {args.dev}; running synthetic images only", file=sys.stderr)
    if dev is not None:
        samples = load_dev(dev)
    else:
        samples = synthetic_samples(("bottle", "mug") if args.quick else synthetic.PRODUCTS)
    if args.only:
        samples = [s for s in samples if args.only in s.name]
    rows = evaluate(samples, args.dump)
    quality = summarise(rows)
    variants: list[tuple[str, list[dict[str, object]]]] = []
    if dev is not None:
        studio = [s for s in samples if s.group.startswith("studio")]
        forced = with_env({ENV_VERIFY: "always"}, lambda: evaluate(studio))
        variants.append(("u2netp consulted on every studio image (ENGINE_VERIFY=always)", summarise(forced)))
        classical = with_env({ENV_MODEL_PATH: "none"}, lambda: evaluate(samples))
        variants.append(("Classical path only (model disabled)", summarise(classical)))
    for r in rows:
        print(f"{r.name:28s} {r.iou:.4f} sad {r.sad_k:6.2f} {r.method:24s} conf {r.confidence:.2f} {r.seconds:.2f}s")
    for title, table in [("default settings", quality), *variants]:
        print(f"\n{title}")
        for q in table:
            print(
                f"{q['group']:18s} n={q['n']} IoU {q['iou_mean']:.4f} (min {q['iou_min']:.4f}) "
                f"SAD {q['sad_k']:.2f}k MSE {q['mse_e3']:.2f} low-conf {q['low_conf']}"
            )
    speed: list[dict[str, object]] = []
    if not args.no_speed:
        if args.quick:
            plan = [("remove", "studio", 0.1)]
            repeats = 1
        else:
            ops = ("remove", "recolor", "replace", "prompt")
            plan = [(op, "studio", mp) for mp in (1.0, 4.0) for op in ops]
            plan += [("remove", kind, mp) for kind in ("studio+verify", "scene") for mp in (1.0, 4.0)]
            plan += [("recolor", "studio+verify", 1.0), ("replace", "scene", 1.0)]
            repeats = args.repeats
        speed = run_speed(plan, repeats, dev, env=dict(os.environ))
        for s in speed:
            print(json.dumps(s))
    if not args.no_write:
        command = "python bench/engine_eval.py " + " ".join(argv if argv is not None else sys.argv[1:])
        write_section(
            args.results, render_markdown(command.strip(), quality, rows, speed, dev is None, load_before, variants)
        )
        print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
