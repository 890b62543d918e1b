"""Fixtures for the catalog tests."""

from __future__ import annotations

import pytest

from airflow_bgreplace.catalog.manifest import ManifestReadResult, read_manifest
from tests.catalog.fakes import SAMPLE_CATALOG


@pytest.fixture(scope="session")
def sample_manifest() -> ManifestReadResult:
    return read_manifest(SAMPLE_CATALOG / "manifest.csv")
