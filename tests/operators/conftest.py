from __future__ import annotations

from tests.airflow_support import airflow_db  # noqa: F401 - fixture
