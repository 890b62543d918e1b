"""Pattern (a) of bench/throughput_real.py: one BgReplaceBatchOperator over every item.

The items are a JSONL file (``conf.items_uri``), as the nightly DAG's plan writes them; the
operator keeps the vendor at its limit and defers between windows.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag

from airflow_bgreplace.operators.batch import BgReplaceBatchOperator


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["bgreplace", "bench"],
)
def bench_throughput_batch() -> None:
    BgReplaceBatchOperator(
        task_id="batch",
        vendor="fal",
        items_uri="{{ dag_run.conf['items_uri'] }}",
        output_base="{{ dag_run.conf['output_base'] }}/batch",
        concurrency="{{ dag_run.conf['concurrency'] }}",
        max_in_flight="{{ dag_run.conf.get('max_in_flight') }}",
    )


bench_throughput_batch()
