"""Local engine speed per core: megapixels per second for remove / recolour / replace (reference
scene and prompt) at 1 MP and 4 MP, on one pinned core and on two, with peak memory.

Each case runs in a **fresh process** pinned with ``sched_setaffinity`` to its cores before
numpy, OpenCV or onnxruntime load, with every thread pool sized to them: ``OMP_NUM_THREADS`` /
``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS``, ``cv2.setNumThreads``, and onnxruntime's
intra-op threads (``AIRFLOW__BGREPLACE__ENGINE_THREADS``; the u2netp session is made with it and
one inter-op thread). The worker reports the CPU time it used per wall second, so a figure
that is not really per core shows. MP/s = output megapixels / median warm seconds per photo
(bytes in, encoded bytes out: decode and PNG/JPEG encode included); per core = MP/s / cores.
Peak memory = the worker's ``VmHWM`` (whole process: interpreter, libraries, model, inputs;
native numpy/OpenCV/onnxruntime memory included), and its growth over the level reached after
imports and reading the inputs.

Inputs (made by this script, kept in a temporary folder): photos of
``dags_examples/sample_catalog`` (rendered product photos, 640x480) scaled to the case's size
(bicubic) with sensor-like noise (sigma 1.5) and JPEG q92:

* ``studio``: mug-red, bottle-steel, watch-steel, box-kraft (seamless backdrops with soft cast
  shadows: the key has doubts there, so u2netp is consulted);
* ``scene``: sneaker-black-wood, vase-terracotta-wood, can-citrus-pattern (u2netp path);
* ``scene-no-model``: the same scenes with the model disabled (GrabCut path);
* ``dev-studio``: the dev set's am_GT06 (a real photo) on a white seamless, as engine_eval
  builds it (a clean key: u2netp not consulted); only when the dev set is present.

Replace uses ``sample_catalog/scenes/marble-counter.jpg``; prompt uses "on a white marble
counter". Every row says which engine path ran (``EngineResult.method``) on each photo.

    .venv/bin/python bench/engine_speed.py                      # every case, ~5-10 min on 2 quiet cores
    .venv/bin/python bench/engine_speed.py --ops remove --sizes 0.05 --cores 1 --photos 1 --repeats 1 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "dags_examples" / "sample_catalog"
DEV = ROOT.parent / "shared" / "engine" / "dev"
INPUTS = {
    "studio": ("mug-red", "bottle-steel", "watch-steel", "box-kraft"),
    "scene": ("sneaker-black-wood", "vase-terracotta-wood", "can-citrus-pattern"),
    "scene-no-model": ("sneaker-black-wood", "vase-terracotta-wood", "can-citrus-pattern"),
    "dev-studio": ("am_GT06",),
}
OPS = ("remove", "recolor", "replace", "prompt")
PROMPT = "on a white marble counter"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


# --------------------------------------------------------------------------- inputs (parent)


def make_inputs(folder: Path, kind: str, megapixels: float, count: int) -> list[Path]:
    """The case's photos as JPEG files: scaled, noised, re-encoded (deterministic)."""
    import cv2
    import numpy as np
    from PIL import Image

    made = []
    for index, name in enumerate(INPUTS[kind][:count]):
        target = folder / f"{name}@{kind.removesuffix('-no-model')}@{megapixels:g}.jpg"
        made.append(target)
        if target.is_file():
            continue
        if kind == "dev-studio":
            rgb = _dev_studio(name)  # already noised and JPEG-compressed at its own size
        else:
            rgb = np.asarray(Image.open(SAMPLES / "images" / f"{name}.jpg").convert("RGB"), dtype=np.uint8)
        height, width = rgb.shape[:2]
        scale = (megapixels * 1e6 / (height * width)) ** 0.5
        size = (max(16, round(width * scale)), max(16, round(height * scale)))
        big = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC).astype(np.float32)
        if kind != "dev-studio":
            big += np.random.default_rng(index).normal(0.0, 1.5, big.shape).astype(np.float32)
        Image.fromarray(np.clip(big + 0.5, 0, 255).astype(np.uint8)).save(target, "JPEG", quality=92)
    return made


def _dev_studio(name: str) -> Any:
    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(ROOT / "bench"))
    from engine_eval import studio_variant

    rgb = np.asarray(Image.open(DEV / "images" / f"{name}.png").convert("RGB"), dtype=np.uint8)
    alpha = np.asarray(Image.open(DEV / "gt" / f"{name}.png").convert("L"), dtype=np.float32) / 255.0
    return studio_variant(name, rgb, alpha, "studio-white", seed=7).rgb


# --------------------------------------------------------------------------- one case (worker)


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def worker(op: str, cores: list[int], photos: list[str], reference: str, repeats: int) -> dict[str, Any]:
    """Runs in a fresh process; pins itself before the numeric libraries load."""
    os.sched_setaffinity(0, cores)
    import cv2

    cv2.setNumThreads(len(cores))
    from airflow_bgreplace import engine
    from airflow_bgreplace.engine import model

    inputs = [Path(photo).read_bytes() for photo in photos]
    scene = Path(reference).read_bytes()
    calls = {
        "remove": lambda data: engine.remove_background(data),
        "recolor": lambda data: engine.recolor(data, (240, 240, 240), drop_shadow=True),
        "replace": lambda data: engine.replace_with_reference(data, scene),
        "prompt": lambda data: engine.replace_with_prompt(data, PROMPT),
    }
    call = calls[op]
    session, _reason = model.get_session()
    baseline = _status_mb("VmHWM")
    started = time.perf_counter()
    call(inputs[0])  # cold: first use of every code path (the model session is already made)
    cold = time.perf_counter() - started
    rows: list[dict[str, Any]] = []
    for path, data in zip(photos, inputs, strict=True):
        seconds, cpu_seconds = [], []
        for _ in range(repeats):
            begin, begin_cpu = time.perf_counter(), time.process_time()
            result = call(data)
            seconds.append(time.perf_counter() - begin)
            # CPU seconds of every thread of the process: what the call costs when it has its
            # cores to itself, whatever else the machine runs.
            cpu_seconds.append(time.process_time() - begin_cpu)
        rows.append(
            {
                "photo": Path(path).stem,
                "mp": result.width * result.height / 1e6,
                "seconds": statistics.median(seconds),
                "cpu_seconds": statistics.median(cpu_seconds),
                "method": result.method,
                "steps": result.timings_s,
            }
        )
    mp = sum(row["mp"] for row in rows)
    seconds = sum(row["seconds"] for row in rows)
    cpu = sum(row["cpu_seconds"] for row in rows)
    return {
        "affinity": sorted(os.sched_getaffinity(0)),
        "cv2_threads": cv2.getNumThreads(),
        "ort_intra_threads": None if session is None else _intra_threads(session),
        "cold_s": round(cold, 3),
        "mp_per_s": round(mp / seconds, 3),
        "mp_per_cpu_s": round(mp / cpu, 3),
        "cpu_per_wall": round(cpu / seconds, 2),
        "peak_rss_mb": _status_mb("VmHWM"),
        "baseline_rss_mb": baseline,
        "photos": rows,
    }


def _intra_threads(session: Any) -> int | None:
    options = session.get_session_options()
    return int(options.intra_op_num_threads)


def run_case(op: str, kind: str, megapixels: float, cores: list[int], args: argparse.Namespace) -> dict[str, Any]:
    photos = make_inputs(args.inputs, kind, megapixels, args.photos)
    env = dict(os.environ)
    env.update({name: str(len(cores)) for name in THREAD_VARIABLES})
    env["AIRFLOW__BGREPLACE__ENGINE_THREADS"] = str(len(cores))
    if kind == "scene-no-model":
        env["AIRFLOW__BGREPLACE__ENGINE_MODEL_PATH"] = "none"
    spec = json.dumps(
        {"op": op, "cores": cores, "photos": [str(p) for p in photos], "reference": str(args.reference),
         "repeats": args.repeats}
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, __file__, "--worker", spec], capture_output=True, text=True, env=env, check=False, timeout=1800
    )
    if done.returncode != 0:
        raise RuntimeError(f"{op} {kind} {megapixels} MP on {cores}: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result.update({"op": op, "input": kind, "size_mp": megapixels, "cores": len(cores)})
    return result


# --------------------------------------------------------------------------- report


def _methods(result: dict[str, Any]) -> str:
    return ", ".join(f"{row['photo'].split('@')[0]}: {row['method']}" for row in result["photos"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", default=",".join(OPS))
    parser.add_argument("--sizes", default="1,4", help="megapixels, comma separated")
    parser.add_argument("--cores", default="1,2", help="core counts to pin to, comma separated")
    parser.add_argument("--inputs-kinds", default="studio,scene,scene-no-model,dev-studio")
    parser.add_argument("--photos", type=int, default=4, help="photos per case (at most the input's list)")
    parser.add_argument("--repeats", type=int, default=3, help="warm calls per photo (median)")
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch RESULTS.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(args.worker)
        print(json.dumps(worker(spec["op"], spec["cores"], spec["photos"], spec["reference"], spec["repeats"])))
        return 0

    available = sorted(os.sched_getaffinity(0))
    kinds = [kind for kind in args.inputs_kinds.split(",") if kind != "dev-studio" or (DEV / "images").is_dir()]
    cases = []
    for megapixels in (float(size) for size in args.sizes.split(",")):
        for count in (int(c) for c in args.cores.split(",")):
            if count > len(available):
                print(f"skipped {count} cores: only {len(available)} available")
                continue
            cores = available[-count:]  # the last cores: core 0 takes most interrupts
            for kind in kinds:
                ops = args.ops.split(",") if kind == "studio" else [op for op in args.ops.split(",") if op == "remove"]
                cases += [(op, kind, megapixels, cores) for op in ops]
    load_before = os.getloadavg()[0]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-engine-speed-") as tmp:
        args.inputs = Path(tmp)
        args.reference = SAMPLES / "scenes" / "marble-counter.jpg"
        for op, kind, megapixels, cores in cases:
            result = run_case(op, kind, megapixels, cores, args)
            results.append(result)
            print(
                f"{op:8s} {kind:15s} {megapixels:g} MP x{len(cores)} core(s): {result['mp_per_s']:.2f} MP/s, "
                f"cpu/wall {result['cpu_per_wall']}, peak {result['peak_rss_mb']} MB; {_methods(result)}",
                flush=True,
            )
    load_after = os.getloadavg()[0]

    table = [
        "| op | input | MP | cores | **MP per CPU-s** | MP/s wall | MP/s wall per core | cpu/wall | cold s "
        "| peak RSS MB (growth) | path per photo |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        growth = round(r["peak_rss_mb"] - r["baseline_rss_mb"], 1)
        table.append(
            f"| {r['op']} | {r['input']} | {r['size_mp']:g} | {r['cores']} | **{r['mp_per_cpu_s']:.2f}** "
            f"| {r['mp_per_s']:.2f} | {r['mp_per_s'] / r['cores']:.2f} | {r['cpu_per_wall']} | {r['cold_s']} "
            f"| {r['peak_rss_mb']} ({growth:+}) | {_methods(r)} |"
        )
    removal = [r for r in results if r["op"] == "remove" and r["cores"] == 1 and r["input"] == "studio"]
    table += [
        "",
        "- Target: >= 4 MP/s per core for removal. One pinned core, studio photos: "
        + (", ".join(f"{r['size_mp']:g} MP {r['mp_per_cpu_s']:.2f} per CPU-s" for r in removal) or "not run")
        + ".",
        "- MP per CPU-s = output MP / CPU seconds of the worker (all its threads): the per-core speed when the "
        "cores are the case's alone. MP/s wall is what this run saw on a shared machine; cpu/wall near the "
        "core count means the case had its cores.",
        f"- {args.photos} photo(s) per case, median of {args.repeats} warm call(s) each, after one cold call; "
        "photos: sample-catalog renders scaled to the size with noise and JPEG q92 (see the script's docstring).",
        "- Threads per case = cores (affinity, OMP/OpenBLAS/MKL, cv2.setNumThreads, onnxruntime intra-op); "
        "cpu/wall is the worker's CPU seconds per wall second while timed.",
        f"- Load average (1 min): {load_before:.2f} before, {load_after:.2f} after (shared machine).",
    ]
    print("\n".join(table))
    if not args.no_write:
        sys.path.insert(0, str(ROOT / "bench"))
        from results import append_section

        command = (
            f".venv/bin/python bench/engine_speed.py --ops {args.ops} --sizes {args.sizes} --cores {args.cores} "
            f"--photos {args.photos} --repeats {args.repeats}"
        )
        append_section("Local engine speed per core (pinned, fresh process per case)", command, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
