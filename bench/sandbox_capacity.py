"""How many requests a second the UCaaS sandbox serves, so it is never a benchmark's bottleneck.

Starts `ucaas-sandbox` (uvicorn, uvloop, httptools) as its own process on a free loopback
port and drives it with a concurrent httpx load from this process:

- cheap route:   GET /users/{user_id}  (token check + a dict lookup)
- typical route: POST /users           (validation, uniqueness, create)

The load is an httpx.AsyncClient on the project's aiohttp-pool transport (what the
service uses); the cheap route is measured once more through httpx's own pool, the
figure that made us switch. The cheap route is also measured with a small and with a
large state, to show that a simple lookup does not slow down as the state grows. Prints
one JSON line of figures last.

    .venv/bin/python bench/sandbox_capacity.py [--seconds 5] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import time
from typing import Any

import httpx

from connectors.ucaas.transport import AiohttpTransport
from service.devtools.local_sandbox import LocalSandbox

ADMIN = ("admin@sandbox.test", "sandbox-admin")
HEADERS = {"X-Api-Id": "sandbox-app"}


async def setup(http: httpx.AsyncClient) -> dict[str, Any]:
    """A customer and its admin token; returns what the load needs."""
    customer = await http.post(
        "/customers",
        auth=ADMIN,
        json={
            "customer_name": "Bench",
            "customer_legal_name": "Bench Ltd",
            "customer_code": "BENCH",
            "contact_name": "Bench",
            "contact_email": "bench@bench.test",
            "office_address": {"address_1": "1 Way", "city": "Oslo", "country": "NO"},
        },
    )
    customer.raise_for_status()
    portal = customer.json()["portal_access"]
    login = await http.post(
        "/login", json={"email": portal["username"], "password": portal["password"]}
    )
    login.raise_for_status()
    return {"auth": {"Authorization": f"Token {login.json()['token']}"}}


async def grow(http: httpx.AsyncClient, auth: dict[str, str], users: int, start: int) -> str:
    """Add users until there are `users` of them; return one user id to look up."""
    sem = asyncio.Semaphore(32)
    last = ""

    async def one(n: int) -> None:
        nonlocal last
        async with sem:
            r = await http.post("/users", headers=auth, json=user_body(n))
            r.raise_for_status()
            last = r.json()["user"]["user_id"]

    await asyncio.gather(*(one(n) for n in range(start, start + users)))
    return last


def user_body(n: int) -> dict[str, Any]:
    return {
        "user_type": "AP",
        "first_name": f"User{n}",
        "last_name": "Bench",
        "email": f"user{n}@bench.test",
        "department": "Bench",
        "password": "bench-password",
    }


async def load(
    http: httpx.AsyncClient, make: Any, seconds: float, concurrency: int
) -> dict[str, float]:
    """Run `make(i)` -> (method, url, json) from `concurrency` workers for `seconds`."""
    counter = itertools.count()
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            method, url, body, headers = make(next(counter))
            t0 = time.perf_counter()
            response = await http.request(method, url, json=body, headers=headers)
            latencies.append(time.perf_counter() - t0)
            if response.status_code != 200:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": round(len(latencies) / elapsed, 1),
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
    }


async def main(seconds: float, concurrency: int, large: int) -> dict[str, Any]:
    sandbox = LocalSandbox.start()
    try:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        base_url = sandbox.base_url
        async with httpx.AsyncClient(
            base_url=base_url,
            headers=HEADERS,
            limits=limits,
            timeout=30,
            transport=AiohttpTransport(limits),
        ) as http:
            ctx = await setup(http)
            auth = ctx["auth"]
            user_id = await grow(http, auth, 100, 0)

            def cheap(_: int) -> tuple[str, str, None, dict[str, str]]:
                return "GET", f"/users/{user_id}", None, auth

            cheap_small = await load(http, cheap, seconds, concurrency)
            async with httpx.AsyncClient(
                base_url=base_url, headers=HEADERS, limits=limits, timeout=30
            ) as plain:
                cheap_httpx_pool = await load(plain, cheap, seconds, concurrency)
            seq = itertools.count(10_000_000)

            def typical(_: int) -> tuple[str, str, dict[str, Any], dict[str, str]]:
                return "POST", "/users", user_body(next(seq)), auth

            typical_small = await load(http, typical, seconds, concurrency)
            grow_started = time.perf_counter()
            user_id = await grow(http, auth, large, 100)
            grow_s = time.perf_counter() - grow_started
            total = int(
                (await http.get("/users", headers=auth, params={"page_length": 1})).json()[
                    "search"
                ]["total"]
            )
            cheap_large = await load(http, cheap, seconds, concurrency)
    finally:
        sandbox.stop()
    return {
        "bench": "sandbox_capacity",
        "seconds_per_run": seconds,
        "concurrency": concurrency,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "cheap_route": "GET /users/{user_id}",
        "cheap_rps": cheap_small["rps"],
        "cheap_p50_ms": cheap_small["p50_ms"],
        "cheap_p99_ms": cheap_small["p99_ms"],
        "cheap_rps_httpx_own_pool": cheap_httpx_pool["rps"],
        "typical_route": "POST /users",
        "typical_rps": typical_small["rps"],
        "typical_p50_ms": typical_small["p50_ms"],
        "typical_p99_ms": typical_small["p99_ms"],
        "users_in_state_large": total,
        "cheap_rps_large_state": cheap_large["rps"],
        "cheap_large_over_small": round(cheap_large["rps"] / cheap_small["rps"], 2),
        "errors": cheap_small["errors"] + typical_small["errors"] + cheap_large["errors"],
        "seed_users_per_s": round(large / grow_s, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--large", type=int, default=20_000, help="users in the large state")
    args = parser.parse_args()
    figures = asyncio.run(main(args.seconds, args.concurrency, args.large))
    print(json.dumps(figures))
