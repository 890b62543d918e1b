"""Shared fixtures of the integration tests: real Airflow deployments on a fresh PostgreSQL database.

These tests start every Airflow process (see :class:`~airflow_bgreplace.sandbox.stack.AirflowStack`)
and take minutes; run them one at a time across the machine, e.g.
``flock /tmp/heavy.lock .venv/bin/pytest tests/integration/test_crash_restart.py``.
Without PostgreSQL they are skipped, except under ``CI=true`` where that is a failure.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path

import pytest

from airflow_bgreplace.sandbox.stack import AirflowStack, fresh_postgres_database
from tests.conftest import make_product_photo
from tests.postgres_support import require_postgres

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "dags_examples"
MANIFEST_HEADER = "sku,image,treatment,color,prompt,reference,vendor,output_format"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL server's URL (127.0.0.1:5432 by default, see tests/postgres_support.py)."""
    return require_postgres()


StackFactory = Callable[..., AirflowStack]


@pytest.fixture
def make_stack(tmp_path: Path, postgres_url: str) -> Iterator[StackFactory]:
    """``make_stack(dag_files, **AirflowStack kwargs)``: a stack on a fresh database, stopped and dropped after.

    ``dag_files`` are copied into a DAGs folder of the test's own (so the dag-processor parses only
    them). The stack is created, not started: the test adds its environment, then calls ``start``.
    """
    with ExitStack() as cleanup:

        def factory(dag_files: list[Path], *, env: Mapping[str, str] | None = None, **kwargs: object) -> AirflowStack:
            dags = tmp_path / "dags"
            dags.mkdir(exist_ok=True)
            for dag_file in dag_files:
                shutil.copy(dag_file, dags / dag_file.name)
            database_url = cleanup.enter_context(fresh_postgres_database(postgres_url))
            stack = AirflowStack(tmp_path / "home", dags, database_url, env=env, **kwargs)  # type: ignore[arg-type]
            cleanup.callback(stack.stop)  # runs before the database is dropped
            return stack

        yield factory


def write_catalog(folder: Path, items: Mapping[str, int], *, treatment: str = "scene") -> tuple[Path, dict[str, str]]:
    """A catalog manifest (the sample catalog's CSV format) of distinct product photos.

    ``items`` maps vendor -> number of items. Every photo differs (the sandbox counts equal
    requests as duplicate submits). Returns the manifest's path and sku -> vendor.
    """
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = [MANIFEST_HEADER.split(",")]
    vendors: dict[str, str] = {}
    index = 0
    for vendor, count in items.items():
        for number in range(count):
            sku = f"{vendor.upper()}-{number:04d}"
            image = f"images/{sku}.png"
            colour = (index * 37 % 256, index * 91 % 256, (index // 7) * 53 % 256)
            (folder / image).write_bytes(make_product_photo(colour=colour))
            color = "#F4F1EA" if treatment == "color" else ""
            prompt = "on a marble counter, soft light" if treatment == "scene" else ""
            rows.append([sku, image, treatment, color, prompt, "", vendor, ""])
            vendors[sku] = vendor
            index += 1
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return manifest, vendors
