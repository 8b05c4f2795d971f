"""The admin API (FastAPI): health, readiness, metrics, the operator's JSON endpoints, the
OpenAPI and AsyncAPI documents, and the status page.

Everything but `/healthz`, `/readyz` and the page shells (`/`, `/docs`, `/static/*`,
which hold no data) needs `Authorization: Bearer <token>`: a reader's token to read
(every GET), an operator's to act (retry, drop, approve, deny). Without any token
configured the API is open, which the server allows on loopback only. Every answer is
JSON; an error is `{"detail": "..."}`, or for a 422 `{"detail": [{"loc", "msg", "type"}]}`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.convertors import StringConvertor, register_url_convertor
from swagger_ui_bundle import swagger_ui_path

from service.entrypoints.admin_gate import (
    BAD_LENGTH,
    FORBIDDEN,
    TOO_LARGE,
    UNAUTHORIZED,
    AdminGate,
    Keyring,
)
from service.entrypoints.asyncapi import as_json as asyncapi_json
from service.observability import metrics
from service.observability.logs import mask_text
from service.outbox import audit as audit_log
from service.outbox.audit import Actor, AuditView
from service.view_models import (
    Bucket,
    CallCounts,
    CommandView,
    DeadLetterView,
    Failure,
    FeedView,
    History,
    Match,
)

if TYPE_CHECKING:
    from service.entrypoints.admin_host import RunningService

log = logging.getLogger("ucaas_sync.admin")

PAGE = Path(__file__).parent / "status_page"
CHECK_TIMEOUT_S = 3.0
MAX_LIMIT = 1000
MAX_ID = 2**63 - 1  # a BIGINT: a larger id cannot exist, and must not reach the driver
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


# -- auth: done by AdminGate (admin_gate.py) before routing ------------------------------------
# This scheme only documents it: every route behind the token lists it in the OpenAPI.
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="an admin token (UCAAS_SYNC_ADMIN_TOKEN, _READ_TOKEN or _TOKENS); not needed "
    "on loopback when none is set",
)


class Problem(BaseModel):
    """Every error but a 422: what went wrong, in words."""

    detail: str


def _problem(description: str, example: str) -> dict[str, Any]:
    return {
        "model": Problem,
        "description": description,
        "content": {"application/json": {"example": {"detail": example}}},
    }


GUARDED: dict[int | str, dict[str, Any]] = {
    400: _problem("a malformed request (Content-Length)", BAD_LENGTH),
    401: _problem("no token, or not a valid one", UNAUTHORIZED),
    413: _problem("the body is larger than 1 MB", TOO_LARGE),
}
ACTION: dict[int | str, dict[str, Any]] = {
    403: _problem("a reader's token: acting needs an operator's", FORBIDDEN),
    404: _problem("no such command, tenant or feed", "no command 7"),
}


def actor_of(request: Request) -> Actor:
    """Who the gate let in (it sets the actor before any route runs)."""
    actor = getattr(request.state, "actor", None)
    if not isinstance(actor, Actor):
        raise RuntimeError("no actor: the route is not behind AdminGate")
    return actor


# -- paths ---------------------------------------------------------------------------------------
class Anything(StringConvertor):
    """Starlette's `path` with line breaks too: its `.*` stops at one, so an entity with
    a newline (schemathesis sent one) found no route, a 404 the document did not list."""

    regex = "(?s:.*)"


register_url_convertor("anything", Anything())


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
CommandId = Annotated[int, Field(strict=True, ge=1, le=MAX_ID)]  # strict: `true` is no id
# No NUL: PostgreSQL's text cannot hold one (asyncpg raised, a 500 schemathesis found).
NO_NUL = "^[^\\x00]*$"
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key must not decide everything

    command_id: CommandId | None = Field(None, description="one held command")
    tenant: Name | None = Field(None, description="every command held for this tenant")
    feed: Name | None = Field(None, description="every cancel held for this calendar feed")


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
        # the shape of every other 422 (FastAPI's HTTPValidationError), as documented
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ["body"],
                    "msg": "name one of command_id, tenant or feed",
                    "input": None,
                }
            ]
        )
    return chosen


def _decided_target(chosen: Decision) -> str:
    if chosen.command_id is not None:
        return f"command {chosen.command_id}"
    if chosen.tenant is not None:
        return f"tenant {chosen.tenant}"
    return f"feed {chosen.feed}"


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
PathId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="a command's id")]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID, description="one held command")]
QueryName = Annotated[str | None, Query(min_length=1, max_length=200, pattern=NO_NUL)]


# -- the app ---------------------------------------------------------------------------------------
def create_app(running: RunningService) -> FastAPI:
    settings = running.settings
    ops = running.operations
    app = FastAPI(
        title="ucaas-sync admin API",
        version="0.1.0",
        description=__doc__,
        openapi_url=None,  # served below, behind the token
        docs_url=None,
        redoc_url=None,
    )

    async def refused(actor: Actor, method: str, target: str) -> None:
        # a reader tried to act: worth a line in the audit (a 401 has no one to name)
        action = target.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "?"
        try:
            detail = f"{method}: needs an operator token"
            await audit_log.record_alone(ops.engine, actor, action, target, "refused", detail)
        except Exception:  # the refusal stands even when the audit cannot be written
            log.exception("could not audit a refused %s %s", method, target)

    app.add_middleware(
        AdminGate, keyring=Keyring.of(settings.admin.named_tokens()), on_refused=refused
    )

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        # JSON like every other answer; the traceback goes to the log, not to the caller
        return JSONResponse({"detail": "internal error (logged)"}, status_code=500)

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

    # -- behind the token (AdminGate checks it; Security(bearer) documents it) ---------------------
    api = APIRouter(dependencies=[Security(bearer)], responses=GUARDED)

    @api.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @api.get("/asyncapi.json", tags=["documents"])
    async def asyncapi() -> Response:
        """The AsyncAPI document of the topics the service reads and writes."""
        return Response(
            asyncapi_json(settings.kafka, settings.results), media_type="application/json"
        )

    @api.get(
        "/metrics",
        tags=["health"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def prometheus() -> Response:
        """Prometheus text format; the outbox, lag and held gauges are read now."""
        metrics.observe_status(await ops.status())
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @api.get("/api/status", tags=["status"])
    async def status() -> dict[str, Any]:
        """Counts: outbox by status, events by outcome, dead letters, feeds, consumer lag,
        and the result events (`results`: unpublished, the oldest's age, published in the
        last hour)."""
        shown = (await ops.status()).as_json()
        shown["process"] = {
            "parts": dict(running.parts_here),
            "consumers_joined": running.consumers_joined,
        }
        return shown

    @api.get("/api/commands", tags=["commands"])
    async def commands(
        status: QueryName = None, entity: QueryName = None, limit: Limit = 100
    ) -> list[CommandView]:
        """Commands, newest first, by status and/or entity."""
        return await ops.commands(status=status, entity=entity, limit=limit)

    @api.get("/api/dead", tags=["commands"])
    async def dead(limit: Limit = 100) -> list[CommandView]:
        """Dead commands with their last error: retry or drop them."""
        return await ops.commands(status="dead", limit=limit)

    conflict: dict[int | str, dict[str, Any]] = {
        409: _problem("the command is not in a state that allows it", "not dead")
    }

    @api.post("/api/commands/{command_id}/retry", tags=["commands"], responses=ACTION | conflict)
    async def retry(command_id: PathId, request: Request) -> Acted:
        """A dead command runs again with a fresh attempt budget; its followers with it.
        Operator role; audited."""
        found = await ops.store.operator.retry(command_id, actor_of(request))
        if found == "not_found":
            raise HTTPException(404, f"no command {command_id}")
        if found != "ok":
            raise HTTPException(409, f"command {command_id} is not dead")
        running.wake_dispatcher()
        return Acted(id=command_id, status="pending")

    @api.post("/api/commands/{command_id}/drop", tags=["commands"], responses=ACTION | conflict)
    async def drop(command_id: PathId, request: Request) -> Acted:
        """Give up on a command that is not done; the commands it blocked run. Operator
        role; audited."""
        found = await ops.store.operator.drop(command_id, actor_of(request))
        if found == "not_found":
            raise HTTPException(404, f"no command {command_id}")
        if found != "ok":
            raise HTTPException(409, f"command {command_id} is done or dropped already")
        running.wake_dispatcher()
        return Acted(id=command_id, status="dropped")

    @api.get("/api/held", tags=["approvals"])
    async def held() -> list[CommandView]:
        """Held for approval: deprovisioning bursts above the guard's threshold, and the
        cancels of calendar feed versions that would cancel many meetings at once."""
        return await ops.held()

    async def decide(
        action: Literal["approve", "deny"], chosen: Decision, request: Request
    ) -> Decided:
        changed, found = await ops.decide(
            action,
            command_id=chosen.command_id,
            tenant=chosen.tenant,
            feed=chosen.feed,
            actor=actor_of(request),
        )
        if found == "not_found":
            raise HTTPException(404, f"no {_decided_target(chosen)} known")
        return Decided(changed=changed)

    @api.post("/api/held/approve", tags=["approvals"], responses=ACTION)
    async def approve(
        request: Request,
        body: Decision | None = None,
        command_id: QueryId = None,
        tenant: QueryName = None,
        feed: QueryName = None,
    ) -> Decided:
        """Let held commands run: one (`command_id`), a tenant's (`tenant`) or a calendar
        feed's cancels (`feed`), as JSON body or query. 404: no such command, or no row of
        that tenant or feed at all. Operator role; audited."""
        chosen = _decision(body, command_id, tenant, feed)
        decided = await decide("approve", chosen, request)
        running.wake_dispatcher()
        return decided

    @api.post("/api/held/deny", tags=["approvals"], responses=ACTION)
    async def deny(
        request: Request,
        body: Decision | None = None,
        command_id: QueryId = None,
        tenant: QueryName = None,
        feed: QueryName = None,
    ) -> Decided:
        """Drop held commands: the users keep their access, the meetings stay. Operator
        role; audited."""
        return await decide("deny", _decision(body, command_id, tenant, feed), request)

    @api.get("/api/audit", tags=["audit"])
    async def audit(
        since: datetime | None = None,
        actor: Annotated[str | None, Query(min_length=1, max_length=100, pattern=NO_NUL)] = None,
        limit: Limit = 100,
    ) -> list[AuditView]:
        """Operator actions, newest first: who (a token's name, `anonymous` on an open
        loopback API, `cli:<OS user>`), role, action, target, result (`ok`, `not_found`,
        `conflict`, `refused`)."""
        return await ops.audit(since=since, actor=actor, limit=limit)

    api.get("/audit", include_in_schema=False)(audit)  # the short address, same answer

    @api.get("/api/dead-letters", tags=["intake"])
    async def dead_letters(topic: QueryName = None, limit: Limit = 100) -> list[DeadLetterView]:
        """Records sent to a dead-letter topic, newest first, with error and reason."""
        return await ops.dead_letters(topic=topic, limit=limit)

    @api.get("/api/history/{entity:anything}", tags=["entities"])
    async def history(entity: Annotated[str, PathParam(pattern=NO_NUL)]) -> History:
        """One entity's events, commands, UCaaS calls, id mappings and result events
        (`user:T:E`, `customer:C`, `subscriptions:C` (every purchase of C), `meeting:...`);
        `GET /api/find` finds the entity."""
        return await ops.history(entity)

    @api.get("/api/find", tags=["entities"])
    async def find(
        q: Annotated[
            str,
            Query(
                min_length=1,
                max_length=200,
                pattern=NO_NUL,
                description="an e-mail or employee id, a CRM id or company name, a feed "
                "id, iCalendar UID or meeting key (case-insensitive)",
            ),
        ],
    ) -> list[Match]:
        """At most 20 entities the query finds: people by e-mail (or its beginning),
        employee id or number; companies by CRM id (or its beginning) or name; meetings by
        feed id or key (or their beginning), or a UID inside the key. Each entity's story is
        `GET /api/history/{entity}`."""
        return await ops.find(q)

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
