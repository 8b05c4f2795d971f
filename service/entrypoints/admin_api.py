"""The admin API (FastAPI): health, readiness, metrics, the operator's JSON endpoints, the
OpenAPI and AsyncAPI documents, and the status page.

Everything but `/healthz`, `/readyz` and the page shells (`/`, `/docs`, `/static/*`,
which hold no data) needs `Authorization: Bearer <UCAAS_SYNC_ADMIN_TOKEN>`. Without a
token configured the API is open, which the server allows on loopback only.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Security
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, SecretStr
from swagger_ui_bundle import swagger_ui_path

from service.entrypoints.asyncapi import as_json as asyncapi_json
from service.observability import metrics
from service.observability.logs import mask_text
from service.views import (
    Bucket,
    CallCounts,
    CommandView,
    DeadLetterView,
    Failure,
    FeedView,
    History,
)

if TYPE_CHECKING:
    from service.entrypoints.admin_host import RunningService

PAGE = Path(__file__).parent / "status_page"
CHECK_TIMEOUT_S = 3.0
MAX_LIMIT = 1000
# The page and its scripts come from this server only; the data from its API only.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
DOCS_HEADERS = {"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}


# -- auth --------------------------------------------------------------------------------------
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="UCAAS_SYNC_ADMIN_TOKEN (not needed on loopback when none is set)",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]


def token_guard(token: SecretStr | None) -> Callable[[HTTPAuthorizationCredentials | None], None]:
    expected = token.get_secret_value().encode() if token is not None else b""

    def require_token(credentials: Credentials) -> None:
        if not expected:
            return  # no token: the server is bound to loopback (refuse_open_admin)
        given = credentials.credentials.encode() if credentials is not None else b""
        if not secrets.compare_digest(given, expected):
            raise HTTPException(
                status_code=401,
                detail="a valid bearer token is needed (Authorization: Bearer ...)",
                headers={"WWW-Authenticate": 'Bearer realm="ucaas-sync"'},
            )

    return require_token


# -- readiness -----------------------------------------------------------------------------------
class Check(BaseModel):
    ok: bool
    error: str | None = None
    skipped: str | None = None


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, Check]


async def _check(probe: Callable[[], Awaitable[object]]) -> Check:
    try:
        await asyncio.wait_for(probe(), CHECK_TIMEOUT_S)
    except TimeoutError:
        return Check(ok=False, error=f"no answer within {CHECK_TIMEOUT_S:.0f} s")
    except Exception as exc:  # every failure is a "not ready", named
        # Masked and cut: a driver's message may quote a URL; never a body or a header.
        return Check(ok=False, error=mask_text(f"{type(exc).__name__}: {exc}")[:300])
    return Check(ok=True)


UCAAS_CHECK_TTL_S = 10.0  # probes of every replica must not spend the API's rate limit


async def readiness(running: RunningService, cache: dict[str, tuple[float, Check]]) -> Readiness:
    """`cache` keeps the last UCaaS check of this server for UCAAS_CHECK_TTL_S."""

    async def ucaas_cached() -> Check:
        now = time.monotonic()
        cached = cache.get("ucaas")
        if cached is not None and now - cached[0] < UCAAS_CHECK_TTL_S:
            return cached[1]
        checked = await _check(running.check_ucaas)
        cache["ucaas"] = (now, checked)
        return checked

    db_check, ucaas_check = await asyncio.gather(_check(running.check_database), ucaas_cached())
    if not running.parts_here["consumers"]:
        broker = Check(ok=True, skipped="the consumers do not run in this process")
    elif running.consumers_joined:
        broker = Check(ok=True)
    else:
        broker = Check(ok=False, error="the consumers have not joined the group yet")
    checks = {"database": db_check, "broker": broker, "ucaas": ucaas_check}
    return Readiness(ready=all(c.ok for c in checks.values()), checks=checks)


# -- request and answer bodies ---------------------------------------------------------------------
class Decision(BaseModel):
    command_id: int | None = Field(None, description="one held command")
    tenant: str | None = Field(None, description="every command held for this tenant")
    feed: str | None = Field(None, description="every cancel held for this calendar feed")


class Decided(BaseModel):
    changed: int


class Acted(BaseModel):
    id: int
    status: str


def _decision(
    body: Decision | None, command_id: int | None, tenant: str | None, feed: str | None
) -> Decision:
    chosen = Decision(
        command_id=command_id if command_id is not None else (body.command_id if body else None),
        tenant=tenant if tenant is not None else (body.tenant if body else None),
        feed=feed if feed is not None else (body.feed if body else None),
    )
    if [chosen.command_id, chosen.tenant, chosen.feed].count(None) != 2:
        raise HTTPException(status_code=422, detail="name one of command_id, tenant or feed")
    return chosen


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


# -- the app ---------------------------------------------------------------------------------------
def create_app(running: RunningService) -> FastAPI:
    settings = running.settings
    ops = running.operations
    guard = Depends(token_guard(settings.admin.token))
    app = FastAPI(
        title="ucaas-sync admin API",
        version="0.1.0",
        description=__doc__,
        openapi_url=None,  # served below, behind the token
        docs_url=None,
        redoc_url=None,
    )

    # -- open ----------------------------------------------------------------------------------
    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process answers (liveness)."""
        return {"status": "ok"}

    checked: dict[str, tuple[float, Check]] = {}

    @app.get("/readyz", tags=["health"], responses={503: {"model": Readiness}})
    async def readyz() -> JSONResponse:
        """Database, broker (when the consumers run here) and UCaaS all answer."""
        ready = await readiness(running, checked)
        return JSONResponse(ready.model_dump(exclude_none=True), 200 if ready.ready else 503)

    @app.get("/", include_in_schema=False)
    async def status_page() -> FileResponse:
        return FileResponse(PAGE / "index.html", headers=PAGE_HEADERS)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        # Swagger UI from the swagger-ui-bundle package, served here: no CDN, works
        # offline. The page sends the token it is given (see docs.js).
        return FileResponse(PAGE / "docs.html", headers=DOCS_HEADERS)

    app.mount("/static", StaticFiles(directory=PAGE), name="static")
    app.mount("/swagger-ui", StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    # -- behind the token --------------------------------------------------------------------------
    api = APIRouter(dependencies=[guard])

    @api.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @api.get("/asyncapi.json", tags=["documents"])
    async def asyncapi() -> Response:
        """The AsyncAPI document of the topics the service reads and writes."""
        return Response(asyncapi_json(settings.kafka), media_type="application/json")

    @api.get("/metrics", tags=["health"], response_class=Response)
    async def prometheus() -> Response:
        """Prometheus text format; the outbox, lag and held gauges are read now."""
        metrics.observe_status(await ops.status())
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @api.get("/api/status", tags=["status"])
    async def status() -> dict[str, Any]:
        """Counts: outbox by status, events by outcome, dead letters, feeds, consumer lag."""
        shown = (await ops.status()).as_json()
        shown["process"] = {
            "parts": dict(running.parts_here),
            "consumers_joined": running.consumers_joined,
        }
        return shown

    @api.get("/api/commands", tags=["commands"])
    async def commands(
        status: str | None = None, entity: str | None = None, limit: Limit = 100
    ) -> list[CommandView]:
        """Commands, newest first, by status and/or entity."""
        return await ops.commands(status=status, entity=entity, limit=limit)

    @api.get("/api/dead", tags=["commands"])
    async def dead(limit: Limit = 100) -> list[CommandView]:
        """Dead commands with their last error: retry or drop them."""
        return await ops.commands(status="dead", limit=limit)

    @api.post("/api/commands/{command_id}/retry", tags=["commands"], responses={409: {}})
    async def retry(command_id: int) -> Acted:
        """A dead command runs again with a fresh attempt budget; its followers with it."""
        if not await ops.retry(command_id):
            raise HTTPException(409, f"command {command_id} is not dead (or does not exist)")
        running.wake_dispatcher()
        return Acted(id=command_id, status="pending")

    @api.post("/api/commands/{command_id}/drop", tags=["commands"], responses={409: {}})
    async def drop(command_id: int) -> Acted:
        """Give up on a command that is not done; the commands it blocked run."""
        if not await ops.drop(command_id):
            raise HTTPException(409, f"command {command_id} is done or does not exist")
        running.wake_dispatcher()
        return Acted(id=command_id, status="dropped")

    @api.get("/api/held", tags=["approvals"])
    async def held() -> list[CommandView]:
        """Held for approval: deprovisioning bursts above the guard's threshold, and the
        cancels of calendar feed versions that would cancel many meetings at once."""
        return await ops.held()

    @api.post("/api/held/approve", tags=["approvals"])
    async def approve(
        body: Decision | None = None,
        command_id: int | None = None,
        tenant: str | None = None,
        feed: str | None = None,
    ) -> Decided:
        """Let held commands run: one (`command_id`), a tenant's (`tenant`) or a calendar
        feed's cancels (`feed`)."""
        chosen = _decision(body, command_id, tenant, feed)
        changed = await ops.approve(
            command_id=chosen.command_id, tenant=chosen.tenant, feed=chosen.feed
        )
        running.wake_dispatcher()
        return Decided(changed=changed)

    @api.post("/api/held/deny", tags=["approvals"])
    async def deny(
        body: Decision | None = None,
        command_id: int | None = None,
        tenant: str | None = None,
        feed: str | None = None,
    ) -> Decided:
        """Drop held commands: the users keep their access, the meetings stay."""
        chosen = _decision(body, command_id, tenant, feed)
        changed = await ops.deny(
            command_id=chosen.command_id, tenant=chosen.tenant, feed=chosen.feed
        )
        return Decided(changed=changed)

    @api.get("/api/dead-letters", tags=["intake"])
    async def dead_letters(topic: str | None = None, limit: Limit = 100) -> list[DeadLetterView]:
        """Records sent to a dead-letter topic, newest first, with error and reason."""
        return await ops.dead_letters(topic=topic, limit=limit)

    @api.get("/api/history/{entity:path}", tags=["entities"])
    async def history(entity: str) -> History:
        """One entity's events, commands, UCaaS calls and id mappings (`user:T:E`,
        `customer:C`, `subscriptions:C` (every purchase of C), `meeting:...`)."""
        return await ops.history(entity)

    @api.get("/api/feeds", tags=["intake"])
    async def feeds() -> list[FeedView]:
        """Calendar feeds and how their last fetch went."""
        return await ops.feeds()

    @api.get("/api/throughput", tags=["status"])
    async def throughput(minutes: Annotated[int, Query(ge=1, le=24 * 60)] = 60) -> list[Bucket]:
        """Per minute: events taken, commands done, commands failed, UCaaS calls."""
        return await ops.throughput(minutes=minutes)

    @api.get("/api/calls", tags=["status"])
    async def calls(minutes: Annotated[int, Query(ge=1, le=24 * 60)] = 60) -> CallCounts:
        """UCaaS calls of the last `minutes`, by HTTP status."""
        return await ops.calls(minutes=minutes)

    @api.get("/api/failures", tags=["status"])
    async def failures(limit: Annotated[int, Query(ge=1, le=200)] = 20) -> list[Failure]:
        """Dead commands, dead letters and failing feeds, newest first, with reasons."""
        return await ops.recent_failures(limit=limit)

    app.include_router(api)
    return app
