"""``bgreplace-sandbox``: serve the vendor sandbox from the command line.

Every :class:`~airflow_bgreplace.sandbox.config.SandboxSettings` field is a flag
(``latency_s`` -> ``--latency-s``); values are JSON or ``vendor=value,...`` for per-vendor options,
booleans are ``--flag``/``--no-flag``. Flags override ``BGREPLACE_SANDBOX_*`` variables::

    bgreplace-sandbox --port 8765 --latency-s 2 --concurrency fal=1 --fault-5xx-rate 0.05
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence
from typing import Any

from airflow_bgreplace.sandbox.config import SandboxSettings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bgreplace-sandbox", description="Offline emulator of the Runflow, FASHN, fal.ai and ImagePipeline APIs."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    for name, info in SandboxSettings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        help_text = info.description or None
        if info.annotation is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            parser.add_argument(flag, dest=name, default=None, metavar="VALUE", help=help_text)
    return parser


def settings_from_args(args: argparse.Namespace) -> SandboxSettings:
    overrides: dict[str, Any] = {}
    for name in SandboxSettings.model_fields:
        value = getattr(args, name)
        overrides[name] = SandboxSettings.parse_field(name, value) if isinstance(value, str) else value
    return SandboxSettings.from_env(**overrides)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        print(f"bgreplace-sandbox: invalid settings: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    from airflow_bgreplace.sandbox.app import create_app

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"bgreplace-sandbox listening on http://{host}:{port}", flush=True)
    config = uvicorn.Config(
        create_app(settings), log_level=settings.log_level, access_log=settings.log_level == "debug"
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
