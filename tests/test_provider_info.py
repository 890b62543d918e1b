"""Airflow discovers the provider: metadata valid, listed by the CLI, four connection types with forms."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_bgreplace import get_provider_info

VENDORS = ("runflow", "fashn", "fal", "imagepipeline")


def test_provider_info_matches_airflows_schema() -> None:
    import airflow
    import jsonschema

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_hook_classes_named_in_provider_info_exist_with_their_connection_type() -> None:
    from airflow.sdk.module_loading import import_string

    for entry in get_provider_info()["connection-types"]:  # type: ignore[attr-defined]
        hook = import_string(entry["hook-class-name"])
        assert hook.conn_type == entry["connection-type"]
        assert hook.default_conn_name == f"{entry['connection-type']}_default"


def _airflow_cli(*args: str, home: Path) -> str:
    env = {**os.environ, "AIRFLOW_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "airflow", *args], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout


def test_airflow_providers_list_shows_the_package(tmp_path: Path) -> None:
    listing = _airflow_cli("providers", "list", "-o", "json", home=tmp_path)
    rows = json.loads(listing[listing.index("[{") :])  # log lines may precede the JSON
    names = {row["package_name"] for row in rows}
    assert "airflow-provider-bgreplace" in names


@pytest.mark.parametrize("vendor", VENDORS)
def test_connection_form_relabels_the_key_and_declares_the_extras(vendor: str) -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    behaviour = manager.field_behaviours[f"bgreplace_{vendor}"]
    assert behaviour["relabeling"]["password"] == "API key"
    assert "login" in behaviour["hidden_fields"]
    widgets = {name for name in manager.connection_form_widgets if name.startswith(f"extra__bgreplace_{vendor}__")}
    assert f"extra__bgreplace_{vendor}__timeout_s" in widgets
    if vendor in ("fashn", "imagepipeline"):
        assert manager.connection_form_widgets[f"extra__bgreplace_{vendor}__webhook_token"].is_sensitive
