"""Configuration: environment variables (prefix `UCAAS_SYNC_`), `.env`, and an optional
TOML file named by `UCAAS_SYNC_CONFIG_FILE` (or `ucaas-sync --config FILE`).

Precedence, highest first: arguments in code, environment, `.env`, `<VARIABLE>_FILE`
(the variable's value read from that file: a mounted Kubernetes or Docker secret, for
any setting, e.g. `UCAAS_SYNC_UCAAS_ADMIN_PASSWORD_FILE`, `UCAAS_SYNC_ADMIN_TOKEN_FILE`,
`UCAAS_SYNC_SECRET_KEY_FILE`, `UCAAS_SYNC_TENANT_LOGINS_FILE`, `DATABASE_URL_FILE`), the
TOML file, the embedded defaults. Sections (`[dispatch]`, `[kafka]`, ...) follow the
same order field by field, so one environment variable overrides one key of the file.
Every setting has an embedded default that works on one machine with nothing else running: SQLite in
`./.ucaas-sync/`, the bundled sandbox's credentials. Secrets are `SecretStr` and print
masked; `effective()` is what `ucaas-sync config` prints.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self, cast

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

if TYPE_CHECKING:
    from connectors.events.kafka_security import KafkaConnection

DATA_DIR = Path(".ucaas-sync")
CONFIG_FILE_VARIABLE = "UCAAS_SYNC_CONFIG_FILE"


class ConfigFileError(ValueError):
    """The configuration file named is missing or not TOML: fix the file or the variable."""


def config_file() -> Path | None:
    named = os.environ.get(CONFIG_FILE_VARIABLE)
    if not named:
        return None
    path = Path(named)
    if not path.is_file():
        raise ConfigFileError(f"{CONFIG_FILE_VARIABLE}={named}: no such file")
    return path


class SecretFileError(ConfigFileError):
    """A `<VARIABLE>_FILE` names a file that cannot be read."""


def _variables(settings_cls: type[BaseSettings], name: str, field: Any) -> list[str]:
    """The environment variables a field is read from (its prefixed name, its aliases)."""
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    names = [f"{prefix}{name}".upper()]
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        names += [c.upper() for c in alias.choices if isinstance(c, str)]
    return list(dict.fromkeys(names))


def _read_secret(variable: str, path: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        # the path, never the content: a secret's file name is no secret
        raise SecretFileError(f"{variable}_FILE={path}: {exc.strerror}") from None
    return json.loads(text) if text[:1] in "{[" else text


class SecretFiles(PydanticBaseSettingsSource):
    """`<VARIABLE>_FILE=path`: the setting's value is the file's content (trailing
    newline removed; JSON for a structured setting such as the tenant logins)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # all is done in __call__

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
                continue  # a section reads its own
            for variable in _variables(self.settings_cls, name, field):
                path = os.environ.get(f"{variable}_FILE")
                if path:
                    found[name] = _read_secret(variable, path)
                    break
        return found


class Section(BaseSettings):
    """A section of the settings: environment, `.env`, `<VARIABLE>_FILE`."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        files = SecretFiles(settings_cls)
        return (init_settings, env_settings, dotenv_settings, files, file_secret_settings)


def _section_over_file(section: type[BaseSettings], given: Any) -> Any:
    """A section read from the file (a dict) loses, key by key, to the environment."""
    if not isinstance(given, dict):
        return given
    from_env = section()
    return section(**{**given, **from_env.model_dump(include=from_env.model_fields_set)})


class DispatcherSettings(Section):
    model_config = SettingsConfigDict(env_prefix="UCAAS_SYNC_DISPATCH_", extra="ignore")

    workers: int = Field(16, ge=1, description="commands executed concurrently")
    batch: int = Field(64, ge=1, description="rows claimed per query at most")
    poll_s: float = Field(0.2, gt=0, description="idle wait between claims")
    lease_s: float = Field(60.0, gt=0, description="a claim expires after this long")
    max_attempts: int = Field(10, ge=1, description="failed attempts before a command is dead")
    max_age_s: float = Field(24 * 3600.0, gt=0, description="a command older than this is parked")
    backoff_base_s: float = Field(0.5, gt=0, description="first retry delay (full jitter)")
    backoff_cap_s: float = Field(300.0, gt=0, description="longest retry delay")
    wait_cap_s: float = Field(60.0, gt=0, description="re-check of a missing prerequisite")
    max_wait_s: float = Field(7 * 24 * 3600.0, gt=0, description="prerequisite wait limit")
    outage_failures: int = Field(5, ge=1, description="API failures in a row that pause dispatch")
    probe_every_s: float = Field(2.0, gt=0, description="first probe delay during an outage")
    probe_cap_s: float = Field(30.0, gt=0, description="longest probe delay during an outage")
    shutdown_grace_s: float = Field(
        10.0, ge=0, description="on SIGTERM, time for commands in flight to finish"
    )
    tenant_calls_per_s: float = Field(0.0, ge=0, description="UCaaS calls/s per tenant; 0: none")
    tenant_limits: dict[str, float] = Field({}, description='calls/s of named tenants: {"T1": 5}')
    processes: int = Field(1, ge=1, description="dispatcher processes sharing the tenant limits")


class IntakeSettings(Section):
    model_config = SettingsConfigDict(env_prefix="UCAAS_SYNC_INTAKE_", extra="ignore")

    licence_policy: Path | None = Field(None, description="TOML file; default: vc for all")
    guard_threshold: int = Field(
        20, ge=0, description="people deprovisioned per tenant and window, then approval"
    )
    guard_window_s: float = Field(3600.0, gt=0, description="the guard's counting window")
    close_status: Literal["C", "S"] = Field(
        "C", description="crm.company.closed: C close, S suspend"
    )


class KafkaSettings(Section):
    model_config = SettingsConfigDict(
        env_prefix="UCAAS_SYNC_KAFKA_", extra="ignore", populate_by_name=True
    )

    bootstrap_servers: str | None = Field(
        None,
        validation_alias=AliasChoices(
            "KAFKA_BOOTSTRAP_SERVERS", "UCAAS_SYNC_KAFKA_BOOTSTRAP_SERVERS"
        ),
        description="host:port,...; unset: the local broker (`ucaas-sync broker`)",
    )
    group_id: str = Field("ucaas-sync", description="the consumer group")
    hr_topic: str = Field("hr.events", description="HR events (SCIM users)")
    crm_topic: str = Field("crm.events", description="CRM events (companies, purchases)")
    calendar_topic: str = Field("calendar.feeds", description="feed registrations")
    dlq_suffix: str = Field(".dlq", description="dead-letter topic: <topic><suffix>")
    max_records: int = Field(500, ge=1, description="records taken per batch")
    fetch_max_wait_ms: int = Field(
        100,
        ge=1,
        le=5_000,
        description="longest wait for new records, at the broker and in the client",
    )
    session_timeout_ms: int = Field(
        10_000, ge=6_000, description="a silent consumer leaves the group after this"
    )
    # -- connecting to a managed Kafka: TLS and SASL (README "Connecting to a managed Kafka")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL"
    )
    ssl_cafile: Path | None = Field(
        None,
        description="PEM CA bundle the broker's certificate must chain to (unset: the system's)",
    )
    ssl_certfile: Path | None = Field(
        None, description="PEM client certificate, for mutual TLS (with ssl_keyfile)"
    )
    ssl_keyfile: Path | None = Field(None, description="PEM private key of ssl_certfile")
    ssl_keyfile_password: SecretStr | None = Field(
        None, description="password of ssl_keyfile, if it is encrypted"
    )
    ssl_check_hostname: bool = Field(
        True, description="the broker's certificate must name the host connected to"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = (
        Field(None, description="PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (SASL_* only)")
    )
    sasl_username: str | None = Field(None, description="PLAIN and SCRAM: the user name")
    sasl_password: SecretStr | None = Field(None, description="PLAIN and SCRAM: the password")
    sasl_oauth_token_file: Path | None = Field(
        None, description="OAUTHBEARER: a file holding the token, read again for every token"
    )
    sasl_oauth_token_command: str | None = Field(
        None, description="OAUTHBEARER: a command printing the token (run for every token)"
    )
    connect_timeout_s: float = Field(
        10.0,
        gt=0,
        description="a connection, TLS handshake and SASL exchange not done in this time fail",
    )

    @property
    def topics(self) -> tuple[str, ...]:
        return (self.hr_topic, self.crm_topic, self.calendar_topic)

    def connection(self, bootstrap: str) -> KafkaConnection:
        """`bootstrap` with these TLS and SASL settings, for any Kafka client."""
        from connectors.events.kafka_security import connection  # noqa: PLC0415 - aiokafka: only when connecting

        return connection(self, bootstrap)

    @model_validator(mode="after")
    def _security_fits(self) -> Self:
        """Combinations that cannot connect are refused at start, with what to set, rather
        than found by a broker closing the connection."""
        problems = self.security_problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def security_problems(self) -> list[str]:
        """What is missing or contradictory in the TLS and SASL settings (empty: usable)."""
        protocol = self.security_protocol
        tls = protocol in ("SSL", "SASL_SSL")
        sasl = protocol.startswith("SASL_")
        mechanism = self.sasl_mechanism
        problems: list[str] = []
        if not tls and any(
            (self.ssl_cafile, self.ssl_certfile, self.ssl_keyfile, self.ssl_keyfile_password)
        ):
            problems.append(
                f"ssl_* files are set but security_protocol is {protocol}: use SSL or SASL_SSL"
            )
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            problems.append("mutual TLS needs both ssl_certfile and ssl_keyfile")
        if self.ssl_keyfile_password is not None and self.ssl_keyfile is None:
            problems.append("ssl_keyfile_password is set without ssl_keyfile")
        if sasl and mechanism is None:
            problems.append(f"security_protocol {protocol} needs sasl_mechanism")
        if not sasl and mechanism is not None:
            problems.append(
                f"sasl_mechanism {mechanism} needs security_protocol SASL_SSL or SASL_PLAINTEXT"
            )
        if (
            sasl
            and mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
            and not (self.sasl_username and self.sasl_password is not None)
        ):
            problems.append(f"sasl_mechanism {mechanism} needs sasl_username and sasl_password")
        if sasl and mechanism == "OAUTHBEARER":
            sources = (self.sasl_oauth_token_file, self.sasl_oauth_token_command)
            if all(s is None for s in sources):
                problems.append(
                    "sasl_mechanism OAUTHBEARER needs sasl_oauth_token_file"
                    " or sasl_oauth_token_command"
                )
            elif all(s is not None for s in sources):
                problems.append("set sasl_oauth_token_file or sasl_oauth_token_command, not both")
        return problems


class CalendarSettings(Section):
    model_config = SettingsConfigDict(env_prefix="UCAAS_SYNC_CALENDAR_", extra="ignore")

    feeds_file: Path | None = Field(None, description="TOML: [[feeds]] id, url, organizer, tenant")
    interval_s: float = Field(300.0, gt=0, description="between fetches of a feed")
    jitter: float = Field(0.1, ge=0, le=1, description="share of the interval added at random")
    horizon_days: float = Field(30.0, gt=0, description="meetings scheduled this far ahead")
    concurrency: int = Field(4, ge=1, description="feeds fetched at once")
    timeout_s: float = Field(20.0, gt=0, description="total time for one fetch")
    max_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="largest feed fetched")
    max_redirects: int = Field(5, ge=0, description="redirects followed per fetch")
    max_events: int = Field(20_000, ge=1, description="events in one feed at most")
    max_occurrences: int = Field(10_000, ge=1, description="occurrences within the horizon at most")
    max_rule_steps: int = Field(
        1_000_000,
        ge=1,
        description="instants one RRULE may step through from its DTSTART (more: event skipped)",
    )
    max_parse_s: float = Field(10.0, gt=0, description="CPU time for expanding one feed")
    allow_private_addresses: bool = Field(
        False, description="fetch from loopback/private ranges (tests, trusted intranets)"
    )
    include_all_day: bool = Field(False, description="schedule all-day events as meetings")
    max_participants: int = Field(100, ge=1, description="room size cap from ATTENDEEs")
    max_duration_min: int = Field(240, ge=10, description="longest meeting scheduled")
    retry_cap_s: float = Field(3600.0, gt=0, description="longest wait after failures")
    cancel_guard_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="a feed version cancelling this share of its upcoming meetings ...",
    )
    cancel_guard_min: int = Field(
        3, ge=1, description="... and at least this many: its cancels wait for approval"
    )
    cancel_guard_empty: bool = Field(
        True, description="an emptied feed's cancels wait for approval, however few"
    )


class ResultsSettings(Section):
    model_config = SettingsConfigDict(env_prefix="UCAAS_SYNC_RESULTS_", extra="ignore")

    enabled: bool = Field(True, description="publish what each command came to (result events)")
    topic: str = Field("ucaas.results", description="the results topic")
    per_domain: bool = Field(False, description="<topic>.users|customers|... instead (5 topics)")
    source: str = Field("ucaas-sync", description="the result events' CloudEvents source")
    include_pins: bool = Field(False, description="meeting results carry the meeting PINs")
    batch: int = Field(500, ge=1, description="results published per relay round at most")
    poll_s: float = Field(0.5, gt=0, description="the relay's idle wait between looks")
    retry_cap_s: float = Field(30.0, gt=0, description="longest relay pause, broker away")
    publish_timeout_s: float = Field(15.0, gt=0, description="a round's wait for the acks")

    def topics(self) -> tuple[str, ...]:
        """The topics results go to (to be created before the relay runs)."""
        suffixes = ("users", "customers", "subscriptions", "meetings", "commands")
        return tuple(f"{self.topic}.{s}" for s in suffixes) if self.per_domain else (self.topic,)


class AdminToken(BaseModel):
    """A named admin API token: its name is what the audit log records as the actor."""

    token: SecretStr
    role: Literal["reader", "operator"] = "reader"


class AdminSettings(Section):
    model_config = SettingsConfigDict(env_prefix="UCAAS_SYNC_ADMIN_", extra="ignore")

    host: str = Field("127.0.0.1", description="admin API address; non-loopback needs a token")
    port: int = Field(8080, ge=0, le=65535, description="admin API port (0: a free one)")
    token: SecretStr | None = Field(
        None,
        description='operator bearer token (named "admin") for everything but /healthz, /readyz',
    )
    read_token: SecretStr | None = Field(
        None, description='read-only bearer token (named "reader"): every GET, no action'
    )
    tokens: dict[str, AdminToken] = Field(
        default_factory=dict,
        description='named tokens, JSON: {"ann": {"token": ..., "role": "reader"|"operator"}}',
    )

    def named_tokens(self) -> list[tuple[str, str, str]]:
        """(name, role, secret) of every token set; empty ones are not tokens."""
        given: list[tuple[str, str, SecretStr | None]] = [
            ("admin", "operator", self.token),
            ("reader", "reader", self.read_token),
            *((name, t.role, t.token) for name, t in self.tokens.items()),
        ]
        return [(n, r, s.get_secret_value()) for n, r, s in given if s and s.get_secret_value()]


class TenantLogin(BaseModel):
    username: str
    password: SecretStr


def async_driver_url(url: str) -> str:
    """A postgres(ql):// (or psycopg's) or sqlite:/// URL with the service's async driver."""
    for plain in ("postgres://", "postgresql://", "postgresql+psycopg://"):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url[len(plain) :]
    sqlite = url.startswith("sqlite:///")
    return url.replace("sqlite:", "sqlite+aiosqlite:", 1) if sqlite else url


class Settings(Section):
    model_config = SettingsConfigDict(
        env_prefix="UCAAS_SYNC_",
        env_file=".env",
        extra="ignore",
        env_nested_delimiter="__",
        populate_by_name=True,
    )

    database_url: str = Field(
        f"sqlite+aiosqlite:///{DATA_DIR / 'ucaas-sync.db'}",
        validation_alias=AliasChoices("UCAAS_SYNC_DATABASE_URL", "DATABASE_URL", "database_url"),
        description="sqlite+aiosqlite:///FILE, or postgresql://... (DATABASE_URL works too)",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Fernet key sealing tenant logins and feed URLs at rest (generated for SQLite)",
    )
    # NoDecode: the environment gives the text as it is (a comma-separated list or JSON),
    # read by the validator below, not by pydantic-settings' JSON-only list parsing.
    secret_keys_previous: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="earlier Fernet keys, still read (comma-separated); see `keys rotate`",
    )
    ucaas_base_url: str = Field(
        "http://127.0.0.1:8900/ucaas/v1", description="the UCaaS API (default: the sandbox)"
    )
    ucaas_api_id: str = Field("sandbox-app", description="the API id sent with every call")
    ucaas_admin_email: str = Field("admin@sandbox.test", description="the platform account")
    ucaas_admin_password: SecretStr = Field(
        SecretStr("sandbox-admin"), description="the platform account's password"
    )
    ucaas_auth: Literal["token", "basic"] = Field("token", description="token or basic")
    ucaas_token_lifetime_s: float = Field(
        15 * 60, description="tokens are renewed 60 s before this"
    )
    ucaas_timeout_s: float = Field(10.0, description="one UCaaS call, connect to answer")
    ucaas_max_connections: int = Field(100, description="UCaaS connections kept open")
    tenant_logins: dict[str, TenantLogin] = Field(
        default_factory=dict,
        description='per-tenant UCaaS logins, JSON: {"CRM-1": {"username": ..., "password": ...}}',
    )
    admin_acts_for_tenants: bool = Field(
        True, description="without a tenant's login, act for it as the platform account"
    )
    log_format: Literal["json", "console"] = Field("json", description="log lines on stderr")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="least level logged"
    )
    dispatch: DispatcherSettings = Field(default_factory=DispatcherSettings)
    intake: IntakeSettings = Field(default_factory=IntakeSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    calendar: CalendarSettings = Field(default_factory=CalendarSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    results: ResultsSettings = Field(default_factory=ResultsSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """A section's sources, with the TOML file after the `_FILE` variables."""
        *first, last = super().settings_customise_sources(
            settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
        )
        path = config_file()
        toml = () if path is None else (TomlConfigSettingsSource(settings_cls, toml_file=path),)
        return (*first, *toml, last)

    @field_validator("dispatch", "intake", "kafka", "calendar", "admin", "results", mode="before")
    @classmethod
    def _sections(cls, given: Any, info: Any) -> Any:
        section = cast(type[BaseSettings], cls.model_fields[info.field_name].annotation)
        return _section_over_file(section, given)

    @field_validator("secret_keys_previous", mode="before")
    @classmethod
    def _key_list(cls, given: Any) -> Any:
        """`k1,k2` or `["k1", "k2"]` (Fernet keys hold no comma); blanks dropped."""
        if isinstance(given, str):
            text = given.strip()
            given = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(given, list):
            stripped = (k.strip() if isinstance(k, str) else k for k in given)
            return [k for k in stripped if k]
        return given

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        return async_driver_url(url)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def effective(self) -> dict[str, Any]:
        """The configuration in use, secrets masked and the database password hidden."""
        from sqlalchemy.engine import make_url  # noqa: PLC0415 - SQLAlchemy: only here, CLI start-up time

        shown = self.model_dump(mode="json")
        shown["database_url"] = make_url(self.database_url).render_as_string(hide_password=True)
        shown["config_file"] = os.environ.get(CONFIG_FILE_VARIABLE)
        return shown
