"""Property tests of the shared field checks with every vendor schema the sandbox uses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_bgreplace.sandbox import fal, fashn, imagepipeline, runflow
from airflow_bgreplace.sandbox.validation import (
    FieldSpec,
    check_fields,
    plain_message,
    pydantic_v1_error,
    pydantic_v2_error,
)

SCHEMAS: dict[str, dict[str, FieldSpec]] = {
    "runflow-envelope": runflow.ENVELOPE,
    **{f"runflow:{name}": schema for name, schema in runflow.MODELS.items()},
    **{f"fashn:{name}": schema for name, schema in fashn.MODELS.items()},
    "fal": fal.INPUT,
    "imagepipeline-change": imagepipeline.CHANGE,
    "imagepipeline-remove": imagepipeline.REMOVE,
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@pytest.mark.parametrize("schema_name", sorted(SCHEMAS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_json_gives_values_or_issues(schema_name: str, data: st.DataObject) -> None:
    schema = SCHEMAS[schema_name]
    keys = st.sampled_from(sorted(schema)) | st.text(max_size=8)
    body: dict[str, Any] = data.draw(st.dictionaries(keys, json_values, max_size=len(schema) + 2))
    values, issues = check_fields(body, schema)
    for issue in issues:
        json.dumps(pydantic_v2_error(issue))
        json.dumps(pydantic_v1_error(issue))
        assert plain_message(issue)
    if not issues:
        assert {name for name, spec in schema.items() if spec.required} <= set(values)
        assert set(values) <= set(schema)  # unknown keys are dropped, not kept


def test_defaults_are_applied() -> None:
    values, issues = check_fields({"image": "u", "prompt": "p"}, fashn.MODELS["background-change"])
    assert not issues
    assert values == {"image": "u", "prompt": "p", "seed": 42, "output_format": "png", "return_base64": False}


def test_booleans_are_not_integers() -> None:
    _, issues = check_fields({"seed": True}, {"seed": FieldSpec("int")})
    assert [issue.kind for issue in issues] == ["type"]
