"""Readers for the deployment files (compose, Kubernetes manifests, Dockerfile), and the
names the service accepts, derived from its own models (never a hand-kept list)."""

from __future__ import annotations

import fnmatch
import functools
import json
import re
import shlex
import tomllib
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer.main
import yaml
from pydantic import AliasChoices, BaseModel, SecretStr
from pydantic_settings import BaseSettings

from sandbox.cli import parser as sandbox_parser
from service.cli.main import app
from service.settings import CONFIG_FILE_VARIABLE, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
K8S = ROOT / "deploy" / "k8s"
EXAMPLE_CONFIG = ROOT / "deploy" / "config.example.toml"
PROJECT_IMAGE = "ucaas-sync"
# Images that are not ours must be official ones: Docker Hub's library (no namespace), or
# the Apache Kafka project's own.
OFFICIAL_NAMESPACED = {"apache/kafka"}
# Variables of ours: anything else in a container's environment belongs to its image.
OURS = re.compile(r"^(UCAAS_SYNC_\w+|DATABASE_URL|KAFKA_BOOTSTRAP_SERVERS)$")
OURS_IN_TEXT = re.compile(
    r"\b(UCAAS_SYNC_[A-Z0-9_]*[A-Z0-9]|DATABASE_URL|KAFKA_BOOTSTRAP_SERVERS)\b"
)


def project_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return str(tomllib.load(handle)["project"]["version"])


@functools.cache
def yaml_documents(path: Path) -> list[dict[str, Any]]:
    """Parsed once per run (read-only for the tests)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open() as handle:
        return [doc for doc in yaml.load_all(handle, Loader=loader) if doc is not None]


def compose() -> dict[str, Any]:
    (document,) = yaml_documents(COMPOSE)
    return document


def manifests() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in sorted(K8S.glob("*.yaml")) for doc in yaml_documents(path)]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in manifests() if doc.get("kind") == kind]


def pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in of_kind("Deployment") + of_kind("Job"):
        yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def configmap() -> dict[str, str]:
    (found,) = of_kind("ConfigMap")
    return {k: str(v) for k, v in found["data"].items()}


def secret_example() -> dict[str, str]:
    (found,) = of_kind("Secret")
    return {k: str(v) for k, v in found["stringData"].items()}


_DEFAULTED = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def interpolate(value: object) -> str:
    """Compose's `${NAME:-default}` as `docker compose` resolves it with NAME unset."""

    def default(match: re.Match[str]) -> str:
        if match.group(2) is None:
            raise AssertionError(f"{match.group(0)} has no default: the stack needs it set")
        return match.group(2)

    return _DEFAULTED.sub(default, str(value))


# --- the Dockerfile ------------------------------------------------------------------


@dataclass
class Instruction:
    stage: int
    keyword: str
    rest: str


def dockerfile() -> list[Instruction]:
    """Instructions with continuation lines joined; `stage` counts FROMs (0: before one)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found: list[Instruction] = []
    stage = 0
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        stage += keyword == "FROM"
        found.append(Instruction(stage, keyword, rest.strip()))
    return found


def exec_form(rest: str) -> list[str]:
    value = json.loads(rest)
    assert isinstance(value, list), f"{rest} is not the exec (JSON) form"
    return [str(v) for v in value]


def image_entrypoint() -> tuple[list[str], list[str]]:
    """ENTRYPOINT and CMD of the final stage."""
    steps = dockerfile()
    last = max(i.stage for i in steps)
    final = [i for i in steps if i.stage == last]
    entry = [exec_form(i.rest) for i in final if i.keyword == "ENTRYPOINT"]
    cmd = [exec_form(i.rest) for i in final if i.keyword == "CMD"]
    return (entry[-1] if entry else []), (cmd[-1] if cmd else [])


def shell_words(command: object) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


# --- names the service accepts ---------------------------------------------------------


def _aliases(name: str, field: Any, prefix: str) -> set[str]:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return {c.upper() for c in alias.choices if isinstance(c, str)}
    if isinstance(alias, str):
        return {alias.upper()}
    return {(prefix + name).upper()}


def section_types() -> dict[str, type[BaseSettings]]:
    return {
        name: field.annotation
        for name, field in Settings.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseSettings)
    }


def variable_names() -> set[str]:
    """Every environment variable `Settings` reads: each field under its prefix or its
    aliases, each section's fields under the section's own prefix and as
    UCAAS_SYNC_<SECTION>__<FIELD> (the nested delimiter), and the config file's."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    delimiter = Settings.model_config.get("env_nested_delimiter") or ""
    names = {CONFIG_FILE_VARIABLE}
    sections = section_types()
    for name, field in Settings.model_fields.items():
        if name not in sections:
            names |= _aliases(name, field, prefix)
            continue
        section = sections[name]
        own = str(section.model_config.get("env_prefix", ""))
        for sub, subfield in section.model_fields.items():
            names |= _aliases(sub, subfield, own)
            if delimiter:
                names.add(f"{prefix}{name}{delimiter}{sub}".upper())
    return names


def _holds_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return any(_holds_secret(f.annotation) for f in annotation.model_fields.values())
    return any(_holds_secret(arg) for arg in typing.get_args(annotation))


def secret_variables() -> set[str]:
    """Variables of fields that hold a secret (SecretStr anywhere in their type)."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    sections = section_types()
    found: set[str] = set()
    for name, field in Settings.model_fields.items():
        if name in sections:
            own = str(sections[name].model_config.get("env_prefix", ""))
            for sub, subfield in sections[name].model_fields.items():
                if _holds_secret(subfield.annotation):
                    found |= _aliases(sub, subfield, own)
        elif _holds_secret(field.annotation):
            found |= _aliases(name, field, prefix)
    return found


# --- checks shared by the tests ------------------------------------------------------


def official_and_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    official = "/" not in name or name in OFFICIAL_NAMESPACED
    return bool(name) and official and tag != "latest" and re.search(r"\d", tag) is not None


def compiles(argv: list[str]) -> None:
    """A `python -c CODE` health check must at least be Python (quoting survives)."""
    if argv[:2] == ["python", "-c"]:
        compile(argv[2], "healthcheck", "exec")


def packaged(path: Path, package_data: dict[str, list[str]]) -> bool:
    """Whether setuptools' package-data takes the file: a key names a package ("*": any)
    and its patterns are relative to that package's directory."""
    for parent in path.parents:
        if parent == ROOT:
            break
        if not (parent / "__init__.py").is_file():
            continue  # a plain directory inside a package (data, not a package)
        package = ".".join(parent.relative_to(ROOT).parts)
        relative = path.relative_to(parent).as_posix()
        for key, patterns in package_data.items():
            if fnmatch.fnmatch(package, key) and any(
                fnmatch.fnmatch(relative, p) for p in patterns
            ):
                return True
    return False


ROOT_COMMAND = typer.main.get_command(app)


def check_ucaas_sync(argv: list[str]) -> None:
    """Walk the typer app's command tree to the subcommand and parse its arguments (without
    running it): an unknown command or option fails here as it would in the container.
    Duck-typed: typer may vendor its own click, whose classes are not `click.Group`."""
    assert argv[0] == "ucaas-sync", argv
    command: Any = ROOT_COMMAND
    words = argv[1:]
    path = ["ucaas-sync"]
    while getattr(command, "commands", None) is not None and words:
        sub = command.commands.get(words[0])
        assert sub is not None, f"{' '.join(path)} has no command {words[0]!r}"
        path.append(words[0])
        command, words = sub, words[1:]
    assert getattr(command, "commands", None) is None, f"{' '.join(argv)} names no command"
    command.make_context(" ".join(path), list(words))


def check(argv: list[str]) -> None:
    if argv[0] == "ucaas-sandbox":
        sandbox_parser().parse_args(argv[1:])  # exits on an unknown flag
    else:
        check_ucaas_sync(argv)


def compose_argv(service: dict[str, Any]) -> list[str]:
    entrypoint, cmd = image_entrypoint()
    if "entrypoint" in service:
        entrypoint = shell_words(service["entrypoint"])
        cmd = []  # compose drops the image's CMD when the entrypoint is set
    if "command" in service:
        cmd = shell_words(service["command"])
    return [*entrypoint, *cmd]


def compose_partitions() -> dict[str, int]:
    script = " ".join(shell_words(compose()["services"]["kafka-init"]["command"]))
    (specs,) = re.findall(r"for spec in ([^;]+);", script)
    return {name: int(n) for name, n in (spec.split(":") for spec in specs.split())}


def compose_environment(service: str) -> dict[str, str]:
    given = compose()["services"][service].get("environment", {})
    return {k: interpolate(v) for k, v in given.items()}


def referenced_variables() -> dict[str, set[str]]:
    where: dict[str, set[str]] = {}
    for name, service in compose()["services"].items():
        if "build" in service:
            where[f"compose {name}"] = set(compose_environment(name))
    where["ConfigMap"] = set(configmap())
    where["Secret example"] = set(secret_example())
    for name, pod in pod_specs():
        for container in containers(pod):
            where[f"{name} env"] = {e["name"] for e in container.get("env", [])}
    (scaled,) = of_kind("ScaledObject")
    for trigger in scaled["spec"]["triggers"]:
        where["ScaledObject"] = {v for k, v in trigger["metadata"].items() if k.endswith("FromEnv")}
    where["config.example.toml"] = set(OURS_IN_TEXT.findall(EXAMPLE_CONFIG.read_text()))
    return {k: {n for n in v if OURS.match(n)} for k, v in where.items()}


def documented_keys(text: str) -> dict[str, set[str]]:
    """Keys set or shown commented out (`# key = ...`), by section ("" is the top)."""
    found: dict[str, set[str]] = {"": set()}
    section = ""
    for line in text.splitlines():
        header = re.match(r"^\[(\w+)\]", line)
        if header:
            section = header.group(1)
            found.setdefault(section, set())
            continue
        key = re.match(r"^#?\s*(\w+)\s*=", line) or re.match(r"^#\s*\[(\w+)\.", line)
        if key:
            found[section].add(key.group(1))
    return found


def port_of(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    (named,) = [p["containerPort"] for p in container.get("ports", []) if p["name"] == port]
    return int(named)
