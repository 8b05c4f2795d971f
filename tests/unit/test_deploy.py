"""The deployment files agree with the code: docker-compose.yml, deploy/Dockerfile,
deploy/k8s/ and deploy/config.example.toml name only settings, commands, options, ports
and images that exist. No Docker engine or cluster is needed: everything is read statically.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from sandbox.cli import parser as sandbox_parser
from service.devtools.local_broker import with_dead_letters
from service.settings import CONFIG_FILE_VARIABLE, AdminSettings, KafkaSettings, Settings
from tests.support import deploy_files as d

ADMIN_PORT = AdminSettings.model_fields["port"].default
SANDBOX_PORT = sandbox_parser().get_default("port")


def test_every_file_parses() -> None:
    assert d.compose()["services"]
    kinds = sorted(doc["kind"] for _, doc in d.manifests())
    assert kinds.count("Deployment") == 3
    for kind in ("Namespace", "ConfigMap", "Secret", "Job", "Service", "ScaledObject"):
        assert kind in kinds
    assert kinds.count("PodDisruptionBudget") == 3
    (kustomization,) = d.of_kind("Kustomization")
    listed = {d.K8S / name for name in kustomization["resources"]}
    on_disk = {path for path, doc in d.manifests() if doc["kind"] != "Kustomization"}
    # Everything but the example Secret is applied (no secret values in git).
    assert on_disk - listed == {d.K8S / "secret.example.yaml"}
    assert listed <= on_disk


# --- images ------------------------------------------------------------------------------


def test_compose_images_are_ours_or_pinned_official() -> None:
    ours = set()
    for name, service in d.compose()["services"].items():
        if "build" in service:
            assert service["build"]["dockerfile"] == "deploy/Dockerfile", name
            assert (d.ROOT / service["build"]["context"] / "deploy/Dockerfile").is_file()
            ours.add(service["image"])
        else:
            assert d.official_and_pinned(service["image"]), f"{name}: {service['image']}"
    assert len(ours) == 1, f"one image of ours, built once: {ours}"


def test_kubernetes_runs_our_image_at_the_project_version() -> None:
    version = d.project_version()
    for name, pod in d.pod_specs():
        for container in d.containers(pod):
            assert container["image"] == f"{d.PROJECT_IMAGE}:{version}", name
    (kustomization,) = d.of_kind("Kustomization")
    (override,) = kustomization["images"]
    assert override["name"] == d.PROJECT_IMAGE
    assert override["newTag"] == version


def test_dockerfile_is_multi_stage_slim_and_non_root() -> None:
    steps = d.dockerfile()
    args = {
        i.rest.split("=", 1)[0]: i.rest.split("=", 1)[1]
        for i in steps
        if i.keyword == "ARG" and "=" in i.rest
    }
    froms = [i for i in steps if i.keyword == "FROM"]
    assert len(froms) >= 2
    for step in froms:
        base = step.rest.split()[0]
        base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
        assert d.official_and_pinned(base), base
        assert base.startswith("python:3.11") and "slim" in base
    last = froms[-1].stage
    final = [i for i in steps if i.stage == last]
    users = [i.rest for i in final if i.keyword == "USER"]
    assert users, "the final stage names a user"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), f"USER {uid}: numeric, so runAsNonRoot can check it"
    assert int(uid) != 0
    run_lines = " ".join(i.rest for i in final if i.keyword == "RUN")
    for tool in ("gcc", "build-essential", "pip install", "apt-get install"):
        assert tool not in run_lines, f"the final stage installs nothing: {tool}"
    assert any(i.keyword == "COPY" and "--from=" in i.rest for i in final)
    (check,) = [i.rest for i in final if i.keyword == "HEALTHCHECK"]
    d.compiles(d.exec_form(check.split(" CMD ", 1)[1]))
    assert f"'{ADMIN_PORT}'" in check and "/healthz" in check
    exposed = {p for i in final if i.keyword == "EXPOSE" for p in i.rest.split()}
    assert {str(ADMIN_PORT), str(SANDBOX_PORT)} <= exposed
    entrypoint, cmd = d.image_entrypoint()
    assert entrypoint == ["ucaas-sync"]
    d.check_ucaas_sync([*entrypoint, *cmd])


def test_dockerignore_lets_in_what_the_dockerfile_copies() -> None:
    patterns = [
        line.strip()
        for line in d.DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "start from nothing, let in what the image needs"
    let_in = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    copied = [
        word
        for i in d.dockerfile()
        if i.keyword == "COPY" and "--from=" not in i.rest
        for word in i.rest.split()[:-1]
    ]
    assert copied
    for source in copied:
        assert source.rstrip("/") in let_in, f"COPY {source} is excluded by .dockerignore"
        assert (d.ROOT / source).exists()


def test_the_wheel_carries_every_data_file_the_packages_have() -> None:
    # The image installs a wheel: a non-Python file the package needs at run time must be
    # package data, or it is missing in the container and only there.
    with (d.ROOT / "pyproject.toml").open("rb") as handle:
        package_data = tomllib.load(handle)["tool"]["setuptools"]["package-data"]
    # Used by `alembic revision` in a checkout only, never by `db upgrade`.
    development_only = {"script.py.mako"}
    checked = 0
    for package in ("service", "connectors", "sandbox"):
        for path in (d.ROOT / package).rglob("*"):
            if path.is_dir() or "__pycache__" in path.parts or path.suffix in {".py", ".pyc"}:
                continue
            if path.name in development_only:
                continue
            checked += 1
            assert d.packaged(path, package_data), (
                f"{path.relative_to(d.ROOT)} is not in [tool.setuptools.package-data]"
            )
    assert checked >= 3  # py.typed of each package, at least


# --- commands and options ----------------------------------------------------------------


def test_every_command_and_option_used_exists() -> None:
    used = []
    for service in d.compose()["services"].values():
        if "build" in service:
            used.append(d.compose_argv(service))
    for _, pod in d.pod_specs():
        for container in d.containers(pod):
            entrypoint, cmd = d.image_entrypoint()
            used.append([*container.get("command", entrypoint), *container.get("args", cmd)])
    assert len(used) >= 7
    for argv in used:
        d.check(argv)


def test_the_roles_run_apart() -> None:
    args = {doc["metadata"]["name"]: doc for doc in d.of_kind("Deployment")}
    expect = {
        "ucaas-sync-consumers": (["run", "--no-dispatcher", "--no-poller"], None),
        "ucaas-sync-dispatchers": (["run", "--no-consumers", "--no-poller"], 2),
        "ucaas-sync-poller": (["run", "--no-consumers", "--no-dispatcher"], 1),
    }
    assert set(args) == set(expect)
    for name, (argv, replicas) in expect.items():
        (container,) = args[name]["spec"]["template"]["spec"]["containers"]
        assert container["args"] == argv
        assert args[name]["spec"].get("replicas") == replicas
    (job,) = d.of_kind("Job")
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    assert migrate["args"] == ["db", "upgrade"]
    services = d.compose()["services"]
    assert services["migrate"]["command"] == ["db", "upgrade"]
    conditions = services["ucaas-sync"]["depends_on"]
    assert conditions["migrate"]["condition"] == "service_completed_successfully"


# --- autoscaling and topics --------------------------------------------------------------


def test_compose_creates_the_topics_the_service_reads_and_their_dead_letters() -> None:
    kafka = KafkaSettings()
    assert set(d.compose_partitions()) == set(with_dead_letters(kafka.topics, kafka.dlq_suffix))
    depends = d.compose()["services"]["ucaas-sync"]["depends_on"]
    assert depends["kafka-init"]["condition"] == "service_completed_successfully"


def test_consumers_scale_on_lag_within_the_partitions() -> None:
    (scaled,) = d.of_kind("ScaledObject")
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == "ucaas-sync-consumers"
    assert spec["minReplicaCount"] == 3
    plan = dict(
        item.split("=")
        for item in scaled["metadata"]["annotations"]["ucaas-sync/partitions"].split(",")
    )
    partitions = {name: int(n) for name, n in plan.items()}
    assert set(partitions) == set(KafkaSettings().topics)
    # More consumers than partitions would sit idle; compose makes the same plan.
    assert spec["maxReplicaCount"] == sum(partitions.values())
    assert {k: v for k, v in d.compose_partitions().items() if k in partitions} == partitions
    (trigger,) = spec["triggers"]
    meta = trigger["metadata"]
    assert trigger["type"] == "kafka"
    assert meta["allowIdleConsumers"] == "false"
    assert "topic" not in meta, "all the group's topics: one subscriber reads all three"
    # KEDA reads the group and the brokers from the consumers' own environment.
    config = d.configmap()
    assert config[meta["consumerGroupFromEnv"]] == KafkaSettings().group_id
    assert meta["bootstrapServersFromEnv"] in config


# --- settings ----------------------------------------------------------------------------


def test_every_variable_referenced_is_a_setting() -> None:
    known = d.variable_names()
    assert "UCAAS_SYNC_DISPATCH_WORKERS" in known and "DATABASE_URL" in known
    assert "UCAAS_SYNC_UCAAS_BASE_URL" in known and "KAFKA_BOOTSTRAP_SERVERS" in known
    seen = 0
    for where, names in d.referenced_variables().items():
        unknown = names - known
        assert not unknown, f"{where}: not settings: {sorted(unknown)}"
        seen += len(names)
    assert seen > 40


def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    known = d.variable_names()
    import os

    for name in list(os.environ):
        if name.upper() in known:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env from the working tree


def test_the_environments_given_are_valid_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _clean_environment(monkeypatch, tmp_path)
    stacks = {
        "compose": d.compose_environment("ucaas-sync"),
        "kubernetes": {**d.configmap(), **d.secret_example()},
    }
    for environment in stacks.values():
        with monkeypatch.context() as scoped:
            for name, value in environment.items():
                scoped.setenv(name, value)
            settings = Settings()
        assert not settings.is_sqlite
        # Listening beyond loopback (probes, ports) needs a token: it is given.
        assert settings.admin.host == "0.0.0.0"  # noqa: S104 - what the files say
        assert settings.admin.token is not None
        assert settings.admin.port == ADMIN_PORT
    Fernet(stacks["compose"]["UCAAS_SYNC_SECRET_KEY"])  # a usable key, or migrate would fail


def test_no_secret_in_the_configmap_or_the_example_config() -> None:
    secrets = d.secret_variables()
    assert {"UCAAS_SYNC_SECRET_KEY", "UCAAS_SYNC_ADMIN_TOKEN"} <= secrets
    assert "UCAAS_SYNC_TENANT_LOGINS" in secrets  # passwords inside a nested model
    assert not secrets & set(d.configmap())
    example = tomllib.loads(d.EXAMPLE_CONFIG.read_text())
    sections = d.section_types()
    given = {f"UCAAS_SYNC_{k}".upper() for k in example if k not in sections} | {
        f"{sections[section].model_config.get('env_prefix', '')}{k}".upper()
        for section, values in example.items()
        if section in sections
        for k in values
    }
    assert "UCAAS_SYNC_DISPATCH_WORKERS" in given
    assert not secrets & given
    for name, value in d.secret_example().items():
        assert name in secrets | {"UCAAS_SYNC_DATABASE_URL"}, name
        assert "CHANGE-ME" in value or value == "{}", f"{name}: a placeholder only"


def test_example_config_documents_every_setting() -> None:
    text = d.EXAMPLE_CONFIG.read_text()
    documented = d.documented_keys(text)
    sections = d.section_types()
    top = set(Settings.model_fields) - set(sections)
    assert top <= documented[""], f"not in the example: {sorted(top - documented[''])}"
    for name, section in sections.items():
        missing = set(section.model_fields) - documented.get(name, set())
        assert not missing, f"[{name}] lacks {sorted(missing)}"
    data = tomllib.loads(text)
    for key, value in data.items():
        if key in sections:
            assert set(value) <= set(sections[key].model_fields), key
        else:
            assert key in top, f"{key} is not a setting"


def test_example_config_loads_through_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _clean_environment(monkeypatch, tmp_path)
    monkeypatch.setenv(CONFIG_FILE_VARIABLE, str(d.EXAMPLE_CONFIG))
    loaded = Settings()
    data = tomllib.loads(d.EXAMPLE_CONFIG.read_text())
    monkeypatch.delenv(CONFIG_FILE_VARIABLE)
    # The same values given in code go through the same validators (drivers, sections).
    assert loaded.model_dump() == Settings(**data).model_dump()
    defaults = Settings()
    assert loaded.ucaas_base_url == data["ucaas_base_url"] != defaults.ucaas_base_url
    assert loaded.kafka.bootstrap_servers == data["kafka"]["bootstrap_servers"]
    assert loaded.database_url.startswith("postgresql+asyncpg://")


# --- ports, probes, security -------------------------------------------------------------


def test_probes_and_the_service_use_the_admin_port() -> None:
    configured = int(d.configmap().get("UCAAS_SYNC_ADMIN_PORT", ADMIN_PORT))
    assert configured == ADMIN_PORT
    for doc in d.of_kind("Deployment"):
        (container,) = doc["spec"]["template"]["spec"]["containers"]
        assert [p["containerPort"] for p in container["ports"]] == [ADMIN_PORT]
        probes = {
            kind: container[kind]["httpGet"]
            for kind in ("startupProbe", "livenessProbe", "readinessProbe")
            if kind in container
        }
        assert probes["livenessProbe"]["path"] == "/healthz"
        assert probes["readinessProbe"]["path"] == "/readyz"
        for probe in probes.values():
            assert d.port_of(container, probe["port"]) == ADMIN_PORT
    (service,) = d.of_kind("Service")
    (port,) = service["spec"]["ports"]
    assert port["port"] == ADMIN_PORT and port["targetPort"] == "admin"
    # Only the Deployments' pods answer there, not the migration Job's.
    selector = service["spec"]["selector"].items()
    for doc in d.of_kind("Deployment"):
        assert selector <= doc["spec"]["template"]["metadata"]["labels"].items()
    (job,) = d.of_kind("Job")
    assert not selector <= job["spec"]["template"]["metadata"]["labels"].items()


def test_compose_healthchecks_and_ports() -> None:
    services = d.compose()["services"]
    expect = {"ucaas-sync": (ADMIN_PORT, "/healthz"), "sandbox": (SANDBOX_PORT, "/_sandbox/health")}
    for name, (port, path) in expect.items():
        d.compiles(services[name]["healthcheck"]["test"][1:])
        check = " ".join(services[name]["healthcheck"]["test"])
        assert re.search(rf"http://127\.0\.0\.1:{port}{re.escape(path)}\b", check), name
        published = [str(p).split(":")[-1] for p in services[name]["ports"]]
        assert published == [str(port)], name
    assert f"{SANDBOX_PORT}" in services["sandbox"]["command"]
    assert int(d.compose_environment("ucaas-sync")["UCAAS_SYNC_ADMIN_PORT"]) == ADMIN_PORT
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "kafka-broker-api-versions" in " ".join(services["kafka"]["healthcheck"]["test"])
    for name, service in services.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on no service {target}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no health check"


def test_pods_are_locked_down() -> None:
    for name, pod in d.pod_specs():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        for container in d.containers(pod):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), name
            # Everything from the ConfigMap and the Secret, by reference only.
            refs = [next(iter(ref.values()))["name"] for ref in container["envFrom"]]
            assert refs == ["ucaas-sync", "ucaas-sync"], name
            assert not [e for e in container.get("env", []) if "value" in e], name
    budgets = {
        b["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]
        for b in d.of_kind("PodDisruptionBudget")
    }
    assert budgets == {"consumers", "dispatchers", "poller"}
