from __future__ import annotations

import subprocess
import sys


def test_the_catalog_package_imports_without_airflow() -> None:
    """Usable from plain Python: Airflow is imported only to open a non-local URI."""
    code = (
        "import sys, airflow_bgreplace.catalog\n"
        "loaded = [m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')]\n"
        "assert not loaded, loaded\n"
    )

    subprocess.run([sys.executable, "-c", code], check=True)
