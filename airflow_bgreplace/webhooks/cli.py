"""``bgreplace-webhooks``: the receiver without an api-server, and the store's retention.

::

    bgreplace-webhooks --host 0.0.0.0 --port 8790      # serves /bgreplace/webhooks/{vendor}
    bgreplace-webhooks purge --older-than 30d          # drops deliveries and events older than that

Both use ``[bgreplace] webhook_store_url`` (or ``--store-url``) and read connections the way
Airflow does (metadata DB, secrets backends, ``AIRFLOW_CONN_*``).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from airflow_bgreplace.vendors.webhooks import URL_PREFIX

if TYPE_CHECKING:
    from airflow_bgreplace.webhooks.store import WebhookStore

log = logging.getLogger("airflow_bgreplace.webhooks")

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``3600s``, ``2w`` (a bare number is days)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30d, 12h, 90m)")
    return timedelta(**{_UNITS[match.group(2) or "d"]: float(match.group(1))})


def _store(url: str | None) -> WebhookStore:
    from airflow_bgreplace.webhooks.store import WebhookStore

    return WebhookStore(url) if url else WebhookStore.from_airflow_config()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bgreplace-webhooks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8790, help="port to listen on (default 8790)")
    parser.add_argument("--store-url", help="SQLAlchemy URL of the store (default: [bgreplace] webhook_store_url)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    commands = parser.add_subparsers(dest="command")
    purge = commands.add_parser("purge", help="delete stored deliveries and job events older than a duration")
    purge.add_argument("--older-than", type=parse_duration, required=True, help="e.g. 30d, 12h")
    purge.add_argument("--store-url", default=argparse.SUPPRESS, help="as above")
    return parser


def serve(host: str, port: int, store_url: str | None, log_level: str) -> None:
    # Airflow configures logging when imported: import it now (the first connection lookup would,
    # mid-request), then apply our level. Connections are read through Airflow, so this is not extra.
    import airflow.models  # noqa: F401
    import uvicorn

    from airflow_bgreplace.webhooks.app import create_server_app

    logging.getLogger("airflow_bgreplace").setLevel(log_level.upper())

    root = create_server_app(store=_store(store_url) if store_url else None)
    log.info("bgreplace webhooks on http://%s:%d%s/webhooks/{vendor}", host, port, URL_PREFIX)
    # uvicorn's access log prints query strings, which carry tokens: the app logs each delivery itself.
    uvicorn.run(root, host=host, port=port, access_log=False, log_level=log_level)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "purge":
        store = _store(args.store_url)
        removed = store.purge(args.older_than)
        print(f"purged {removed} row(s) older than {args.older_than} from {store!r}")
        return 0
    serve(args.host, args.port, args.store_url, args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
