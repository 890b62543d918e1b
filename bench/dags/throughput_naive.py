"""Pattern (c) of bench/throughput_real.py: what users write today without the provider.

A mapped task per image that submits to fal's queue with plain httpx, polls the status with
``time.sleep`` and downloads the result, holding its worker slot the whole time.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pendulum
from airflow.sdk import dag, get_current_context, task

POLL_S = 1.0


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["bench"],
)
def bench_throughput_naive() -> None:
    @task
    def items(items_uri: str) -> list[dict[str, str]]:
        with open(items_uri) as lines:
            rows = [json.loads(line) for line in lines if line.strip()]
        return [{"id": row["id"], "image_url": row["inputs"]["image_url"]} for row in rows]

    @task
    def replace_background(item: dict[str, str]) -> str:
        base = os.environ["FAL_BASE_URL"]
        headers = {"Authorization": f"Key {os.environ['FAL_KEY']}"}
        with httpx.Client(headers=headers, timeout=30) as client:
            submit = client.post(
                f"{base}/bria/replace-background", json={"image_url": item["image_url"], "prompt": "studio backdrop"}
            )
            submit.raise_for_status()
            request = submit.json()
            while True:
                time.sleep(POLL_S)
                status = client.get(request["status_url"])
                status.raise_for_status()
                if status.json()["status"] == "COMPLETED":
                    break
            result = client.get(request["response_url"])
            result.raise_for_status()
            image = client.get(result.json()["image"]["url"])
            image.raise_for_status()
        conf = get_current_context()["dag_run"].conf or {}
        out = Path(conf["output_base"]) / "naive" / f"{item['id']}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(image.content)
        return str(out)

    replace_background.expand(item=items("{{ dag_run.conf['items_uri'] }}"))


bench_throughput_naive()
