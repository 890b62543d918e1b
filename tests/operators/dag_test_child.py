"""``python -m tests.operators.dag_test_child <dag_id> <iso date>``: one ``dag.test()`` run in its own process.

The DAG comes from ``$AIRFLOW__CORE__DAGS_FOLDER``. Run and logical date are both the given date,
so a second call runs the same DAG run id again. ``dag.test()`` deletes and re-creates that run,
which drops its task state store: a re-run sees what survives outside Airflow (the provider's
database, the output files). The last line is ``RESULT {json}``.
"""

from __future__ import annotations

import json
import os
import sys


def main(dag_id: str, when_text: str) -> None:
    from datetime import datetime

    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise SystemExit(f"import errors: {bag.import_errors}")
    when = datetime.fromisoformat(when_text)
    run = bag.dags[dag_id].test(logical_date=when, run_after=when)
    print("RESULT " + json.dumps({"state": str(run.state), "run_id": run.run_id}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
