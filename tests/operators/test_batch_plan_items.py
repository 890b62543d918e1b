"""The batch operator's JSONL plan: every item checked on the first try, only used ones on resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from airflow_bgreplace.operators.batch import BgReplaceBatchOperator


def _plan(tmp_path: Path, lines: list[str]) -> BgReplaceBatchOperator:
    path = tmp_path / "plan.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return BgReplaceBatchOperator(task_id="plan", vendor="fal", items_uri=f"file://{path}")


def _item(item_id: str, **extra: object) -> dict[str, object]:
    return {"id": item_id, "endpoint": "bria/replace-background", "inputs": {"prompt": "p"}, **extra}


def test_ids_are_found_whatever_the_key_order_and_escapes(tmp_path: Path) -> None:
    odd = 'SKU "7" \\ é'
    lines = [
        json.dumps(_item("SKU-1")),
        json.dumps(_item(odd)),  # escaped quotes and backslash in the id
        json.dumps({"inputs": {"prompt": "q"}, "id": "SKU-3"}),  # id not first
        json.dumps(_item("SKU-4"), ensure_ascii=False),
    ]
    operator = _plan(tmp_path, lines)

    items = operator.load_items(validate_all=False)

    assert len(items) == 4 and [item.id for item in items] == ["SKU-1", odd, "SKU-3", "SKU-4"]
    assert operator._by_id[odd] is items[1] and operator._by_id["SKU-3"].inputs == {"prompt": "q"}
    assert [item.id for item in items[2:]] == ["SKU-3", "SKU-4"]


def test_duplicate_ids_are_refused_on_every_load(tmp_path: Path) -> None:
    operator = _plan(tmp_path, [json.dumps(_item("A")), json.dumps(_item("B")), json.dumps(_item("A"))])

    for validate_all in (True, False):
        with pytest.raises(ValueError, match="item ids must be unique"):
            operator.load_items(validate_all=validate_all)


def test_a_bad_item_fails_the_first_load_before_any_submit(tmp_path: Path) -> None:
    operator = _plan(tmp_path, [json.dumps(_item("A")), json.dumps({"id": "B", "inputs": {}, "colour": "red"})])

    with pytest.raises(ValidationError, match="colour"):
        operator.load_items()
    # A resume reads only what it uses: the good item is there, the bad one fails where it is read.
    items = operator.load_items(validate_all=False)
    assert items[0].id == "A"
    with pytest.raises(ValidationError, match="colour"):
        items[1]
