"""Helpers for tests that run real DAGs with ``dag.test()`` against the sandbox."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "dags_examples"


def load_dag(dag_id: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(EXAMPLES))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]


def run_dag(dag_id: str, **run_conf: Any) -> tuple[Any, float]:
    """``dag.test()`` the example DAG; returns (dag run, wall seconds)."""
    dag = load_dag(dag_id)
    started = time.perf_counter()
    run = dag.test(run_conf=run_conf or None)
    return run, time.perf_counter() - started


def task_states(run: Any) -> dict[str, list[str]]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    states: dict[str, list[str]] = {}
    with create_session() as session:
        rows = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id)
        )
        for ti in rows:
            states.setdefault(ti.task_id, []).append(str(ti.state))
    return states


def task_instances(run: Any, task_id: str) -> list[Any]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id, TaskInstance.task_id == task_id
            )
        ).all()
        for ti in rows:
            session.expunge(ti)
        return list(rows)


def xcom_values(run: Any, task_id: str, key: str = "return_value") -> list[Any]:
    """Return values of ``task_id`` (one per map index, in order)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(
            XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id, key=key)
        ).all()
        return [XComModel.deserialize_value(row) for row in sorted(rows, key=lambda r: r.map_index)]


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A fresh, migrated metadata DB (SQLite under the tests' AIRFLOW_HOME)."""
    from airflow.utils import db

    db.resetdb()
