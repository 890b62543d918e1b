"""``python -m airflow_bgreplace.sandbox``: same as the ``bgreplace-sandbox`` console script."""

from __future__ import annotations

from airflow_bgreplace.sandbox.cli import main

raise SystemExit(main())
