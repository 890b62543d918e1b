"""`make demo`: the nightly catalog refresh on the sample catalog, offline, with no key.

Runs ``airflow dags test nightly_catalog_refresh`` in an AIRFLOW_HOME inside the project
(``airflow_home/``, SQLite, kept between runs so the catalog state survives: a second run
processes nothing), then prints where the contact sheet and the outputs are, with counts.

``--vendor local`` (default) uses the embedded engine for every item. Any other vendor runs
against the local sandbox, started here on 127.0.0.1: items naming their own vendor keep it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOME = ROOT / "airflow_home"
OUTPUT = ROOT / "demo_output"
DAG_ID = "nightly_catalog_refresh"


def airflow_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(HOME),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags_examples"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__BGREPLACE__OUTPUT_BASE=f"file://{OUTPUT}",
    )
    return env


def airflow(*args: str, env: dict[str, str], quiet: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airflow", *args], env=env, check=False, text=True,
        capture_output=quiet,
    )


def latest_run_folder(vendor: str) -> Path | None:
    runs = sorted((OUTPUT / "catalog" / f"sample-{vendor}").glob("*/output_manifest.jsonl"), key=os.path.getmtime)
    return runs[-1].parent if runs else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vendor", default="local", choices=["local", "runflow", "fashn", "fal", "imagepipeline"])
    args = parser.parse_args()
    env = airflow_env()
    if not (HOME / "airflow.db").exists():
        HOME.mkdir(exist_ok=True)
        print(f"Creating the Airflow metadata database (SQLite) in {HOME} ...")
        if airflow("db", "migrate", env=env, quiet=True).returncode != 0:
            print("airflow db migrate failed", file=sys.stderr)
            return 1
    conf = {"vendor": args.vendor, "force_vendor": args.vendor == "local", "catalog": f"sample-{args.vendor}"}

    sandbox = None
    if args.vendor != "local":
        from airflow_bgreplace.hooks import REMOTE_HOOKS
        from airflow_bgreplace.sandbox import SandboxServer, SandboxSettings

        sandbox = SandboxServer(SandboxSettings(latency_s=1.0)).start()
        print(f"Vendor sandbox on {sandbox.base_url} (no key, nothing leaves this machine)")
        for vendor, hook in REMOTE_HOOKS.items():
            env[f"AIRFLOW_CONN_{hook.default_conn_name.upper()}"] = sandbox.connection_uri(vendor)
    try:
        print(f"Running {DAG_ID} on the sample catalog with vendor={args.vendor} ...")
        done = airflow("dags", "test", DAG_ID, "--conf", json.dumps(conf), env=env, quiet=True)
        log = HOME / "demo_last_run.log"
        log.write_text(done.stdout + done.stderr)
    finally:
        if sandbox is not None:
            sandbox.stop()
    folder = latest_run_folder(args.vendor)
    if done.returncode != 0 or folder is None:
        print(f"The run failed; its log is in {log}", file=sys.stderr)
        return 1

    from airflow_bgreplace.catalog.outputs import format_summary, read_output_manifest, summarise

    rows = read_output_manifest(folder / "output_manifest.jsonl")
    summary = summarise(rows)
    images = sorted(p for p in (folder / "images").rglob("*") if p.is_file()) if (folder / "images").exists() else []
    print()
    print(format_summary(summary))
    print(f"Contact sheet : {folder / 'contact_sheet.html'}")
    print(f"Output images : {len(images)} new under {folder / 'images'}")
    print(f"Output manifest: {folder / 'output_manifest.jsonl'}")
    print(f"Airflow log    : {log}")
    if summary["unchanged"] and not summary["succeeded"]:
        print("Nothing changed since the last run: no job was submitted, nothing was paid.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
