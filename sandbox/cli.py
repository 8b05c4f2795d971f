"""`ucaas-sandbox`: run the UCaaS API emulation on a loopback port.

ucaas-sandbox --host 127.0.0.1 --port 8900 [--state FILE] [fault flags]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import uvicorn

from sandbox.app import create_app
from sandbox.faults import DROP_PHASES, Faults
from sandbox.http import API_PREFIX, Runtime
from sandbox.seed import DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD, DEFAULT_API_ID, fresh_store
from sandbox.state import Store


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ucaas-sandbox", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8900)
    p.add_argument("--state", type=Path, help="keep state in this JSON file across restarts")
    p.add_argument("--api-id", default=DEFAULT_API_ID)
    p.add_argument("--admin-email", default=DEFAULT_ADMIN_EMAIL)
    p.add_argument("--admin-password", default=DEFAULT_ADMIN_PASSWORD)
    p.add_argument("--public-url", help="base URL written into direct and portal links")
    p.add_argument("--log-level", default="warning")
    f = p.add_argument_group("faults (also settable with POST /_sandbox/faults)")
    f.add_argument("--latency-ms", type=float, default=0.0)
    f.add_argument("--jitter-ms", type=float, default=0.0)
    f.add_argument("--error-rate", type=float, default=0.0, help="share of calls that fail, 0..1")
    f.add_argument("--error-status", type=int, default=503)
    f.add_argument("--rate-limit", type=float, default=0.0, help="requests per second; 0 is off")
    f.add_argument("--retry-after-s", type=int, default=None)
    f.add_argument("--drop-rate", type=float, default=0.0, help="share of connections dropped")
    f.add_argument("--drop-phase", choices=DROP_PHASES, default="random")
    f.add_argument("--token-lifetime-s", type=float, default=900.0)
    return p


def build_runtime(args: argparse.Namespace) -> Runtime:
    if args.state and args.state.exists():
        store = Store.load(args.state)
    else:
        store = fresh_store(args.api_id, args.admin_email, args.admin_password)
    faults = Faults()
    bad = faults.update(
        {name: getattr(args, name) for name in Faults.field_names() if name != "only"}
    )
    if bad:
        raise SystemExit(f"invalid fault settings: {', '.join(bad)}")
    public_url = args.public_url or f"http://{args.host}:{args.port}"
    return Runtime(store=store, faults=faults, public_url=public_url, admin_email=args.admin_email)


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    runtime = build_runtime(args)
    app = create_app(runtime, state_path=args.state)
    base = f"http://{args.host}:{args.port}"
    print(
        f"UCaaS sandbox on {base}{API_PREFIX}\n"
        f"  X-Api-Id:      {args.api_id}\n"
        f"  tenant admin:  {args.admin_email} / {args.admin_password}\n"
        f"  state:         {args.state or 'in memory'}\n"
        f"  admin routes:  {base}/_sandbox/state | calls | faults | reset | clock\n"
        f"  try:           curl -s -u {args.admin_email}:{args.admin_password} "
        f"{base}{API_PREFIX}/plans",
        flush=True,
    )
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_keep_alive=30,
    )


if __name__ == "__main__":
    main()
