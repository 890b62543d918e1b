"""`make demo`: the example DAGs, end to end, against the local vendor sandbox (no key, no network).

Starts the sandbox on 127.0.0.1, points the default connections at it, runs each example DAG with
``dag.test()`` in an AIRFLOW_HOME inside the project (``airflow_home/``, kept between runs) and
prints where the restaged images are. ``--vendor`` picks one vendor's examples.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOME = ROOT / "airflow_home"
OUTPUT = ROOT / "demo_output"
EXAMPLES = {
    "runflow": ["example_runflow_background_replace", "example_runflow_background_color"],
    "fashn": ["example_fashn_background_change"],
    "fal": ["example_fal_replace_background"],
    "imagepipeline": ["example_imagepipeline_background"],
}


def configure_airflow() -> None:
    os.environ["AIRFLOW_HOME"] = str(HOME)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags_examples")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__BGREPLACE__OUTPUT_BASE"] = f"file://{OUTPUT}"
    if not (HOME / "airflow.db").exists():
        HOME.mkdir(exist_ok=True)
        print("Creating the Airflow metadata database (SQLite) in", HOME)
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)


def serve_staging_folder() -> str:
    """Runflow needs public URLs for local images: a loopback folder plays the public bucket."""
    staged = OUTPUT / "staged"
    staged.mkdir(parents=True, exist_ok=True)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(staged)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vendor", default="all", choices=["all", *EXAMPLES])
    args = parser.parse_args()
    configure_airflow()

    from airflow.dag_processing.dagbag import DagBag

    from airflow_bgreplace.hooks import REMOTE_HOOKS as HOOKS
    from airflow_bgreplace.sandbox import SandboxServer, SandboxSettings

    staging_url = serve_staging_folder()
    with SandboxServer(SandboxSettings(latency_s=1.0, latency_distribution="uniform")) as sandbox:
        print(f"Sandbox: {sandbox.base_url} (every vendor under /<vendor>)")
        for vendor, hook in HOOKS.items():
            extra = (
                {"staging_path": str(OUTPUT / "staged"), "staging_public_url": staging_url}
                if vendor == "runflow"
                else {}
            )
            os.environ[f"AIRFLOW_CONN_{hook.default_conn_name.upper()}"] = json.dumps(
                {
                    "conn_type": hook.conn_type,
                    "host": sandbox.vendor_url(vendor),
                    "password": "demo-key",
                    "extra": extra,
                }
            )
        bag = DagBag(str(ROOT / "dags_examples"))
        vendors = list(EXAMPLES) if args.vendor == "all" else [args.vendor]
        failures = 0
        for vendor in vendors:
            for dag_id in EXAMPLES[vendor]:
                started = time.perf_counter()
                run = bag.dags[dag_id].test()
                state = str(run.state)
                failures += state != "success"
                print(f"{dag_id:<42} {state:<8} {time.perf_counter() - started:5.1f} s")
        stats = sandbox.stats()["vendors"]
        print("Sandbox submits:", {v: stats[v]["submits_accepted"] for v in vendors})
    images = sorted(p for p in OUTPUT.rglob("*") if p.is_file() and "staged" not in p.parts)
    print(f"\n{len(images)} restaged images under {OUTPUT}:")
    for image in images[-12:]:
        print("  ", image.relative_to(ROOT))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
