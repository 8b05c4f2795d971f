"""`ucaas-sync demo`: the main job on embedded defaults, on one machine, with nothing to set up.

It starts a local Kafka-protocol broker, the UCaaS sandbox and a calendar feed server on
loopback, runs the service on SQLite in `.ucaas-sync/demo/` (emptied first, so every
demo starts clean), publishes a scenario of HR, CRM and calendar events, shows progress
until everything is applied, then compares what UCaaS has with what the events asked
for. Exit code 0 when they match. `--serve` keeps everything running until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr
from rich.console import Console

from service.devtools.demo.feed import FeedServer
from service.devtools.demo.run import Demo, admin_built, run
from service.devtools.demo.scenario import build
from service.devtools.local_broker import LocalBroker, with_dead_letters
from service.devtools.local_sandbox import DEFAULT_ADMIN, DEFAULT_API_ID, LocalSandbox
from service.settings import (
    DATA_DIR,
    AdminSettings,
    CalendarSettings,
    DispatcherSettings,
    KafkaSettings,
    ResultsSettings,
    Settings,
)

FOLDER = DATA_DIR / "demo"
PLAINTEXT = {
    "security_protocol": "PLAINTEXT",
    "sasl_mechanism": None,
    "ssl_cafile": None,
    "ssl_certfile": None,
    "ssl_keyfile": None,
    "ssl_keyfile_password": None,
}


def fresh_folder(folder: Path = FOLDER) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def kafka_settings(bootstrap: str | None, *, shared: bool) -> KafkaSettings:
    """Our own broker is empty: the usual names. A broker given by KAFKA_BOOTSTRAP_SERVERS
    may hold earlier demos' events: topics and group of this run only."""
    tag = f".demo-{uuid.uuid4().hex[:8]}" if shared else ""
    return KafkaSettings(
        bootstrap_servers=bootstrap,
        hr_topic=f"hr.events{tag}",
        crm_topic=f"crm.events{tag}",
        calendar_topic=f"calendar.feeds{tag}",
        group_id=f"ucaas-sync{tag}",
    )


def results_settings(*, shared: bool) -> ResultsSettings:
    """Results on, to a topic of this run only on a shared broker."""
    tag = f".demo-{uuid.uuid4().hex[:8]}" if shared else ""
    return ResultsSettings(enabled=True, topic=f"ucaas.results{tag}", poll_s=0.2)


def demo_settings(
    folder: Path, sandbox: LocalSandbox, kafka: KafkaSettings, results: ResultsSettings
) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{folder / 'demo.db'}",
        ucaas_base_url=sandbox.base_url,
        ucaas_api_id=DEFAULT_API_ID,
        ucaas_admin_email=DEFAULT_ADMIN[0],
        ucaas_admin_password=SecretStr(DEFAULT_ADMIN[1]),
        tenant_logins={},
        admin_acts_for_tenants=True,
        kafka=kafka,
        # The feed is served on loopback, and a demo cannot wait five minutes per fetch.
        calendar=CalendarSettings(allow_private_addresses=True, interval_s=2.0, jitter=0.1),
        # A command waiting for its customer or organiser looks again within 2 s.
        dispatch=DispatcherSettings(workers=16, poll_s=0.1, wait_cap_s=2.0, backoff_cap_s=5.0),
        admin=AdminSettings(host="127.0.0.1", port=0),
        results=results,
    )


def quiet_logs(folder: Path) -> None:
    """The screen is for progress and the summary; the service's log goes to a file."""
    handler = logging.FileHandler(folder / "demo.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    for noisy in ("httpx", "aiokafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(serve: bool = False, port: int | None = None) -> int:
    """Run the demo; `port` is the sandbox's (default: a free one)."""
    began = time.monotonic()
    console = Console()
    folder = fresh_folder()
    quiet_logs(folder)
    shared = bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    kafka = kafka_settings(None, shared=shared)
    results = results_settings(shared=shared)
    broker: LocalBroker | None = None
    sandbox: LocalSandbox | None = None
    feed: FeedServer | None = None
    try:
        with console.status("starting the broker, the UCaaS sandbox and a calendar feed…"):
            topics = [*with_dead_letters(kafka.topics, kafka.dlq_suffix), *results.topics()]
            broker = LocalBroker.start(topics, kafka=kafka)
            sandbox = LocalSandbox.start(port)
            feed = FeedServer()
        kafka = kafka.model_copy(update={"bootstrap_servers": broker.bootstrap})
        if broker.security is None:  # our own broker speaks plaintext, whatever is configured
            kafka = kafka.model_copy(update=PLAINTEXT)
        settings = demo_settings(folder, sandbox, kafka, results)
        scenario = build(datetime.now(UTC), feed.url)
        console.rule("ucaas-sync demo")
        console.print(
            f"Kafka ({broker.kind}) at {broker.bootstrap}, UCaaS sandbox at {sandbox.root}, "
            f"calendar feed at {feed.url}, database {folder / 'demo.db'}"
        )
        demo = Demo(
            settings=settings,
            scenario=scenario,
            feed=feed,
            console=console,
            folder=folder,
            sandbox_root=sandbox.root,
            serve_after=serve,
            admin=admin_built(),
            started=began,
        )
        return asyncio.run(run(demo))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return 130
    except Exception as exc:
        # One line on the screen; the traceback goes to the log with the service's lines.
        logging.getLogger("ucaas_sync.demo").exception("the demo failed")
        console.print(
            f"[red]the demo failed:[/] {type(exc).__name__}: {exc} (details in {folder}/demo.log)"
        )
        return 1
    finally:
        with console.status("stopping…"):
            if feed is not None:
                feed.close()
            if sandbox is not None:
                sandbox.stop()
            if broker is not None:
                broker.stop()
