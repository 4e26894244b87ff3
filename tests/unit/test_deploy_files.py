"""The deployment files agree with the application: commands, variables, probes, metrics.

docker-compose.yml, .env.example, deploy/kubernetes, the Grafana dashboard and the alert
rules are read as data and checked against what the code actually offers (the ``palisade``
commands, the variables ``Settings`` reads, the metric names) so that none of them can
drift from it unnoticed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from prometheus_client.metrics import MetricWrapperBase
from pydantic import AliasChoices

from app.cli import cli
from app.observability import metrics
from app.settings import Settings
from tavus_simulator.cli import parser as simulator_parser

REPO = Path(__file__).resolve().parents[2]
KUBERNETES = REPO / "deploy" / "kubernetes"
DASHBOARD = REPO / "deploy" / "grafana" / "palisade-dashboard.json"
ALERTS = REPO / "deploy" / "prometheus" / "palisade-alerts.yaml"
SCRAPE_JOB = REPO / "deploy" / "prometheus" / "palisade-scrape.yaml"
POD_MONITOR = REPO / "deploy" / "prometheus" / "palisade-podmonitor.yaml"
OPERATIONS = REPO / "docs" / "operations.md"

# The product contract (DESIGN §5): the six plain names.
DESIGN_VARIABLES = frozenset(
    {
        "DATABASE_URL",
        "TAVUS_API_KEY",
        "TAVUS_BASE_URL",
        "PUBLIC_BASE_URL",
        "ADMIN_TOKEN",
        "SECRET_KEY",
    }
)
SECRET_VARIABLES = frozenset(
    {"DATABASE_URL", "TAVUS_API_KEY", "ADMIN_TOKEN", "SECRET_KEY", "PALISADE_METRICS_TOKEN"}
)
# Read by uvicorn through `palisade serve`, not by Settings.
SERVER_VARIABLES = frozenset({"FORWARDED_ALLOW_IPS"})
# Read by docker compose itself (interpolation), never passed to Palisade.
COMPOSE_ONLY_VARIABLES = frozenset({"POSTGRES_PASSWORD"})

HISTOGRAMS = frozenset(
    {
        "palisade_http_request_duration_seconds",
        "palisade_session_start_duration_seconds",
        "palisade_time_to_face_seconds",
        "palisade_tavus_request_duration_seconds",
        "palisade_webhook_lag_seconds",
        "palisade_reconciler_cycle_duration_seconds",
        "palisade_warm_pool_refill_duration_seconds",
        "palisade_session_billed_seconds",
        "palisade_webhook_attempt_duration_seconds",
    }
)
COUNTERS = frozenset(
    {
        "palisade_sessions_started_total",
        "palisade_tavus_errors_total",
        "palisade_sweep_orphans_found_total",
        "palisade_sweep_orphans_removed_total",
        "palisade_warm_pool_claims_total",
        "palisade_shutdown_claims_total",
        "palisade_tavus_lookups_total",
        "palisade_tavus_events_skipped_total",
        "palisade_interactions_total",
        "palisade_webhook_attempts_total",
    }
)
GAUGES = frozenset(
    {
        "palisade_sessions",
        "palisade_cleanup_backlog",
        "palisade_cleanup_oldest_pending_seconds",
        "palisade_reconciler_last_success_timestamp_seconds",
        "palisade_warm_pool_pals",
        "palisade_webhook_deliveries_pending",
        "palisade_webhook_oldest_pending_seconds",
    }
)
METRICS = HISTOGRAMS | COUNTERS | GAUGES
# The labels of each metric, as dashboards and alert rules may use them.
LABELS: dict[str, frozenset[str]] = {
    "palisade_http_request_duration_seconds": frozenset({"method", "route", "status"}),
    "palisade_sessions_started_total": frozenset({"tenant", "profile", "strategy"}),
    "palisade_session_start_duration_seconds": frozenset({"strategy"}),
    "palisade_time_to_face_seconds": frozenset({"strategy"}),
    "palisade_tavus_request_duration_seconds": frozenset({"operation", "outcome"}),
    "palisade_tavus_errors_total": frozenset({"operation", "error_class"}),
    "palisade_webhook_lag_seconds": frozenset({"event_type"}),
    "palisade_sweep_orphans_found_total": frozenset({"kind"}),
    "palisade_sweep_orphans_removed_total": frozenset({"kind"}),
    "palisade_reconciler_cycle_duration_seconds": frozenset(),
    "palisade_reconciler_last_success_timestamp_seconds": frozenset(),
    "palisade_sessions": frozenset({"status"}),
    "palisade_cleanup_backlog": frozenset(),
    "palisade_cleanup_oldest_pending_seconds": frozenset(),
    "palisade_warm_pool_pals": frozenset({"tenant", "profile", "state"}),
    "palisade_warm_pool_claims_total": frozenset({"tenant", "profile", "outcome"}),
    "palisade_warm_pool_refill_duration_seconds": frozenset(),
    "palisade_shutdown_claims_total": frozenset({"outcome"}),
    "palisade_tavus_lookups_total": frozenset({"object", "outcome"}),
    "palisade_tavus_events_skipped_total": frozenset(),
    "palisade_interactions_total": frozenset({"event_type", "outcome"}),
    "palisade_session_billed_seconds": frozenset({"tenant", "profile", "strategy"}),
    "palisade_webhook_attempts_total": frozenset({"outcome"}),
    "palisade_webhook_attempt_duration_seconds": frozenset(),
    "palisade_webhook_deliveries_pending": frozenset(),
    "palisade_webhook_oldest_pending_seconds": frozenset(),
}
# Attached by Prometheus to every scraped series.
TARGET_LABELS = frozenset({"instance", "job", "namespace", "pod"})
SERIES = (
    COUNTERS
    | GAUGES
    | {f"{name}{suffix}" for name in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
)


def app_variables() -> frozenset[str]:
    """Every environment variable Settings reads (the upper-case name of each alias)."""
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        assert isinstance(alias, AliasChoices), field
        names.update(str(choice) for choice in alias.choices if str(choice).isupper())
    return frozenset(names)


APP_VARIABLES = app_variables()
KNOWN_VARIABLES = APP_VARIABLES | SERVER_VARIABLES


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


# --- the palisade command line ----------------------------------------------------------


def check_palisade_args(args: list[str]) -> None:
    """Parse ``args`` as `palisade` would (options included) without running anything."""
    # The click group typer builds from `app.cli.cli`: its commands and sub-groups.
    command: Any = typer.main.get_command(cli)
    assert args, "no command"
    words = list(args)
    while hasattr(command, "commands"):
        assert words, f"`palisade {' '.join(args)}`: a sub-command is missing"
        assert words[0] in command.commands, f"`palisade {' '.join(args)}`: no such command"
        command = command.commands[words.pop(0)]
    if command.name == "simulator":
        # It hands its arguments to the simulator's own parser.
        try:
            simulator_parser("palisade simulator").parse_args(words)
        except SystemExit:
            raise AssertionError(f"`palisade {' '.join(args)}`: refused") from None
        return
    try:
        command.make_context(command.name, words)
    except Exception as exc:  # typer's click UsageError: unknown option, extra argument...
        raise AssertionError(f"`palisade {' '.join(args)}`: {exc}") from None


class TestCommandCheck:
    def test_accepts_real_commands_and_options(self) -> None:
        check_palisade_args(["serve", "--host", "0.0.0.0", "--port", "8000"])
        check_palisade_args(["sweep", "--dry-run"])
        check_palisade_args(["key", "revoke", "acme", "key_1"])
        check_palisade_args(["simulator", "--host", "0.0.0.0", "--port", "8100"])

    @pytest.mark.parametrize(
        "args",
        [
            ["serverless"],
            ["serve", "--bogus"],
            ["tenant", "delete"],
            ["migrate", "a", "b"],
            ["simulator", "--bogus"],
        ],
    )
    def test_refuses_anything_else(self, args: list[str]) -> None:
        with pytest.raises(AssertionError):
            check_palisade_args(args)


# --- Dockerfile -------------------------------------------------------------------------


def dockerfile_instructions(name: str) -> list[str]:
    """The arguments of each ``name`` instruction of the runtime stage, continuations joined."""
    text = (REPO / "Dockerfile").read_text()
    runtime = text.split(" AS runtime", 1)[1]
    joined = re.sub(r"\\\n\s*", " ", runtime)
    return re.findall(rf"^{name} (.+)$", joined, flags=re.M)


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in dockerfile_instructions("ENV"):
        env.update(re.findall(r"(\w+)=(\S+)", instruction))
    return env


class TestDockerfile:
    def test_the_image_can_never_start_in_dev_mode(self) -> None:
        # It binds every interface; dev mode would serve its well-known admin token there.
        assert dockerfile_env()["PALISADE_MODE"] == "production"
        python = {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}
        assert set(dockerfile_env()) <= KNOWN_VARIABLES | python

    def test_the_default_command_is_a_real_one(self) -> None:
        (command,) = dockerfile_instructions("CMD")
        args = json.loads(command)
        check_palisade_args(args)
        assert args[0] == "serve"


# --- docker-compose.yml -----------------------------------------------------------------


def compose() -> dict[str, Any]:
    data = load_yaml(REPO / "docker-compose.yml")
    assert isinstance(data, dict)
    return data


def services() -> dict[str, Any]:
    found = compose()["services"]
    assert isinstance(found, dict)
    return found


def palisade_services() -> dict[str, Any]:
    """The services that run the Palisade image (everything but the database)."""
    return {name: s for name, s in services().items() if name != "postgres"}


def environment_names(service: dict[str, Any]) -> set[str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return {str(item).split("=", 1)[0] for item in env}
    return {str(key) for key in env}


def depends_on(service: dict[str, Any]) -> dict[str, Any]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: {"condition": "service_started"} for name in deps}
    assert isinstance(deps, dict)
    return deps


class TestCompose:
    def test_the_services_exist_and_only_the_simulator_and_worker_are_optional(self) -> None:
        found = services()
        assert {"postgres", "migrate", "palisade", "simulator"} <= set(found)
        for name in ("postgres", "migrate", "palisade"):
            assert not found[name].get("profiles"), name
        assert found["simulator"]["profiles"] == ["simulator"]
        if "worker" in found:
            assert found["worker"]["profiles"] == ["worker"]

    def test_commands_are_real_palisade_subcommands(self) -> None:
        expected = {"migrate": "migrate", "palisade": "serve", "simulator": "simulator"}
        for name, service in palisade_services().items():
            command = service["command"]
            assert isinstance(command, list), f"{name}: use the exec form"
            check_palisade_args([str(arg) for arg in command])
            if name in expected:
                assert command[0] == expected[name], name
        if "worker" in services():
            assert services()["worker"]["command"][0] == "worker"

    def test_every_variable_set_is_one_palisade_reads(self) -> None:
        for name, service in palisade_services().items():
            unknown = environment_names(service) - KNOWN_VARIABLES
            assert not unknown, f"{name} sets variables Palisade does not read: {unknown}"

    def test_every_variable_palisade_reads_is_passed(self) -> None:
        for name in ("migrate", "palisade"):
            missing = KNOWN_VARIABLES - environment_names(services()[name])
            assert not missing, f"{name} cannot be given {sorted(missing)}"

    def test_production_mode_and_required_secrets(self) -> None:
        env = services()["palisade"]["environment"]
        assert "production" in env["PALISADE_MODE"]
        for secret in ("ADMIN_TOKEN", "SECRET_KEY", "TAVUS_API_KEY"):
            # `${NAME:?message}`: compose refuses to start without it.
            assert env[secret].startswith("${" + secret + ":?"), secret

    def test_healthchecks(self) -> None:
        found = services()
        for name in ("postgres", "palisade", "simulator"):
            check = found[name].get("healthcheck") or {}
            assert check.get("test"), name
            assert not check.get("disable"), name
        assert "pg_isready" in " ".join(found["postgres"]["healthcheck"]["test"])
        assert "/readyz" in " ".join(found["palisade"]["healthcheck"]["test"])
        assert "/_sim/healthz" in " ".join(found["simulator"]["healthcheck"]["test"])

    def test_the_migration_completes_before_serve(self) -> None:
        found = services()
        migrate = found["migrate"]
        assert depends_on(migrate)["postgres"]["condition"] == "service_healthy"
        assert migrate.get("restart") == "no"
        assert depends_on(found["palisade"])["migrate"]["condition"] == (
            "service_completed_successfully"
        )
        if "worker" in found:
            assert depends_on(found["worker"])["migrate"]["condition"] == (
                "service_completed_successfully"
            )

    def test_postgres_keeps_its_data_in_a_volume(self) -> None:
        volumes = services()["postgres"]["volumes"]
        named = {str(v).split(":", 1)[0] for v in volumes}
        assert named & set(compose()["volumes"])

    def test_serve_gets_time_to_drain(self) -> None:
        grace = str(services()["palisade"]["stop_grace_period"])
        assert grace.endswith("s")
        assert int(grace[:-1]) >= 35  # 20 s of in-flight requests, 10 s of reconciler drain


# --- .env.example -----------------------------------------------------------------------


def env_example_names() -> list[str]:
    text = (REPO / ".env.example").read_text()
    return re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.M)


class TestEnvExample:
    def test_lists_every_variable_once(self) -> None:
        names = env_example_names()
        assert len(names) == len(set(names)), "a variable is listed twice"
        missing = KNOWN_VARIABLES - set(names)
        unknown = set(names) - KNOWN_VARIABLES - COMPOSE_ONLY_VARIABLES
        assert not missing, f".env.example lacks {sorted(missing)}"
        assert not unknown, f".env.example lists variables nothing reads: {sorted(unknown)}"

    def test_compose_only_variables_are_used_by_compose(self) -> None:
        text = (REPO / "docker-compose.yml").read_text()
        for name in COMPOSE_ONLY_VARIABLES:
            assert "${" + name in text, name

    def test_the_design_variables_are_settings(self) -> None:
        assert DESIGN_VARIABLES <= APP_VARIABLES

    def test_no_secret_has_a_value(self) -> None:
        text = (REPO / ".env.example").read_text()
        for name in ("ADMIN_TOKEN", "SECRET_KEY", "TAVUS_API_KEY", "PALISADE_METRICS_TOKEN"):
            assert re.search(rf"^{name}=$", text, flags=re.M), name


# --- deploy/kubernetes ------------------------------------------------------------------


def kustomization() -> dict[str, Any]:
    data = load_yaml(KUBERNETES / "kustomization.yaml")
    assert isinstance(data, dict)
    return data


def manifests() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                yield path.name, document


def resource(kind: str, name: str) -> dict[str, Any]:
    for _, document in manifests():
        if document["kind"] == kind and document["metadata"]["name"] == name:
            return document
    raise AssertionError(f"no {kind} {name}")


def pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for _, document in manifests():
        if document["kind"] in ("Deployment", "Job"):
            yield document["metadata"]["name"], document["spec"]["template"]["spec"]


def probe_path(container: dict[str, Any], probe: str) -> str:
    path = container[probe]["httpGet"]["path"]
    assert isinstance(path, str)
    return path


class TestKubernetes:
    def test_the_kustomization_lists_every_manifest_but_the_optional_worker(self) -> None:
        listed = set(kustomization()["resources"])
        present = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
        assert listed <= present
        assert present - listed == {"worker.yaml"}

    def test_no_secret_values_in_the_repository(self) -> None:
        assert all(document["kind"] != "Secret" for _, document in manifests())

    def test_containers_run_real_commands_with_known_variables(self) -> None:
        configmap = resource("ConfigMap", "palisade")["data"]
        assert set(configmap) <= KNOWN_VARIABLES - SECRET_VARIABLES
        for name, spec in pod_specs():
            for container in spec["containers"]:
                assert "command" not in container, f"{name}: keep the image's entrypoint"
                check_palisade_args([str(arg) for arg in container["args"]])
                sources = {
                    (kind, ref["name"])
                    for source in container["envFrom"]
                    for kind, ref in source.items()
                }
                assert sources == {("configMapRef", "palisade"), ("secretRef", "palisade")}
                env = {item["name"] for item in container.get("env", [])}
                assert env <= KNOWN_VARIABLES, name

    def test_pods_are_locked_down(self) -> None:
        for name, spec in pod_specs():
            assert spec["securityContext"]["runAsNonRoot"] is True, name
            assert spec["automountServiceAccountToken"] is False, name
            mounts = set()
            for container in spec["containers"]:
                context = container["securityContext"]
                assert context["readOnlyRootFilesystem"] is True, name
                assert context["allowPrivilegeEscalation"] is False, name
                assert context["capabilities"]["drop"] == ["ALL"], name
                assert {"requests", "limits"} <= set(container["resources"]), name
                mounts |= {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, name

    def test_the_api_deployment(self) -> None:
        deployment = resource("Deployment", "palisade")
        spec = deployment["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        assert container["args"][0] == "serve"
        assert deployment["spec"]["replicas"] >= 2
        assert probe_path(container, "readinessProbe") == "/readyz"
        assert probe_path(container, "livenessProbe") == "/healthz"
        assert probe_path(container, "startupProbe") == "/healthz"
        sleep = container["lifecycle"]["preStop"]["exec"]["command"]
        assert sleep[0] == "sleep"
        # preStop, then 20 s of in-flight requests and 10 s of reconciler drain.
        assert spec["terminationGracePeriodSeconds"] > int(sleep[1]) + 30
        assert {c["topologyKey"] for c in spec["topologySpreadConstraints"]} >= {
            "kubernetes.io/hostname"
        }

    def test_the_migration_job(self) -> None:
        job = resource("Job", "palisade-migrate")
        (container,) = job["spec"]["template"]["spec"]["containers"]
        assert container["args"] == ["migrate"]
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"

    def test_service_autoscaler_and_disruption_budget_target_the_api(self) -> None:
        selector = resource("Deployment", "palisade")["spec"]["selector"]["matchLabels"]
        assert resource("Service", "palisade")["spec"]["selector"] == selector
        pdb = resource("PodDisruptionBudget", "palisade")
        assert pdb["apiVersion"] == "policy/v1"
        assert pdb["spec"]["minAvailable"] == 1
        assert pdb["spec"]["selector"]["matchLabels"] == selector
        hpa = resource("HorizontalPodAutoscaler", "palisade")
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"]["name"] == "palisade"
        assert hpa["spec"]["minReplicas"] >= 2
        assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]

    def test_the_worker_always_runs_the_reconciler(self) -> None:
        (container,) = resource("Deployment", "palisade-worker")["spec"]["template"]["spec"][
            "containers"
        ]
        assert container["args"][0] == "worker"
        # Its /metrics is scraped like the API's, on the port it is told to serve.
        port = container["args"][container["args"].index("--port") + 1]
        assert [p["containerPort"] for p in container["ports"]] == [int(port)]
        assert {"name": "PALISADE_RECONCILER", "value": "true"} in container["env"]

    def test_no_pod_invites_a_scrape_without_the_metrics_token(self) -> None:
        # In production /metrics answers only PALISADE_METRICS_TOKEN; an annotation-driven
        # scrape sends no credentials, so the pods are found by deploy/prometheus instead.
        for _, document in manifests():
            if document["kind"] != "Deployment":
                continue
            annotations = document["spec"]["template"]["metadata"].get("annotations") or {}
            assert not [a for a in annotations if a.startswith("prometheus.io/")]

    def test_the_metrics_token_is_one_of_the_secrets(self) -> None:
        configmap = (KUBERNETES / "configmap.yaml").read_text()
        assert "--from-literal=PALISADE_METRICS_TOKEN=" in configmap
        assert resource("ConfigMap", "palisade")["data"]["PALISADE_MODE"] == "production"


# --- deploy/prometheus: scraping with the metrics token --------------------------------


def metrics_ports() -> set[str]:
    """The named container ports on which Palisade's pods serve /metrics."""
    names = set()
    for name in ("palisade", "palisade-worker"):
        (container,) = resource("Deployment", name)["spec"]["template"]["spec"]["containers"]
        names |= {port["name"] for port in container["ports"]}
    return names


class TestScrapeConfigs:
    def test_the_scrape_job_sends_the_token_from_a_file(self) -> None:
        (job,) = load_yaml(SCRAPE_JOB)["scrape_configs"]
        assert job["metrics_path"] == "/metrics"
        assert job["authorization"]["type"] == "Bearer"
        assert job["authorization"]["credentials_file"].startswith("/")
        assert "credentials" not in job["authorization"]
        (discovery,) = job["kubernetes_sd_configs"]
        assert discovery["role"] == "pod"

    def test_the_scrape_job_keeps_palisade_pods_on_their_metrics_ports(self) -> None:
        (job,) = load_yaml(SCRAPE_JOB)["scrape_configs"]
        keeps = {
            tuple(rule["source_labels"]): rule["regex"]
            for rule in job["relabel_configs"]
            if rule.get("action") == "keep"
        }
        name = keeps[("__meta_kubernetes_pod_label_app_kubernetes_io_name",)]
        assert re.fullmatch(name, "palisade")
        port = keeps[("__meta_kubernetes_pod_container_port_name",)]
        for wanted in metrics_ports():
            assert re.fullmatch(port, wanted), wanted

    def test_the_pod_monitor_reads_the_token_from_a_secret(self) -> None:
        monitor = load_yaml(POD_MONITOR)
        assert monitor["kind"] == "PodMonitor"
        assert monitor["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "palisade"}
        endpoints = monitor["spec"]["podMetricsEndpoints"]
        assert {e["port"] for e in endpoints} == metrics_ports()
        for endpoint in endpoints:
            assert endpoint["path"] == "/metrics"
            authorization = endpoint["authorization"]
            assert authorization["type"] == "Bearer"
            assert set(authorization["credentials"]) == {"name", "key"}


# --- metrics: dashboard, alerts and the application ------------------------------------

_PROMQL_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan"}
)


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (a small tokenizer, not a parser)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][\w:]*", text):
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match.group(0).lower() not in _PROMQL_KEYWORDS:
            names.add(match.group(0))
    return names


def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text())
    assert isinstance(data, dict)
    return data


def panels() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for panel in dashboard()["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return [p for p in found if p["type"] != "row"]


def dashboard_expressions() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel["targets"]]


def alert_rules() -> list[dict[str, Any]]:
    data = load_yaml(ALERTS)
    return [rule for group in data["groups"] for rule in group["rules"]]


def github_anchor(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def operations_anchors() -> set[str]:
    headings = re.findall(r"^#{1,6} (.+)$", OPERATIONS.read_text(), flags=re.M)
    return {github_anchor(h) for h in headings}


class TestPromqlNames:
    def test_finds_selected_metrics_only(self) -> None:
        expr = (
            'histogram_quantile(0.95, sum by (route, le) (rate(x_bucket{status=~"5.."}'
            "[$__rate_interval]))) / ignoring(a) y_total offset 5m > 1e3 and time() - z"
        )
        assert promql_metric_names(expr) == {"x_bucket", "y_total", "z"}

    def test_an_unknown_metric_is_caught(self) -> None:
        assert promql_metric_names("sum(rate(palisade_sesions_total[5m]))") - SERIES


class TestDashboard:
    def test_schema_and_datasource_variable(self) -> None:
        board = dashboard()
        assert board["schemaVersion"] >= 36
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        for panel in panels():
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}", panel["title"]

    def test_expressions_use_only_palisade_metrics(self) -> None:
        for expr in dashboard_expressions():
            names = promql_metric_names(expr)
            assert names, expr
            assert names <= SERIES, f"{expr}: unknown {names - SERIES}"

    def test_every_metric_has_a_panel(self) -> None:
        used = {
            re.sub(r"_(bucket|sum|count)$", "", name) if name not in METRICS else name
            for expr in dashboard_expressions()
            for name in promql_metric_names(expr)
        }
        assert used == METRICS

    def test_http_panels_use_the_route_labels(self) -> None:
        http = [e for e in dashboard_expressions() if "palisade_http_request" in e]
        assert any("route" in e and "method" in e for e in http)
        assert any('status=~"5.."' in e for e in http)


class TestAlerts:
    def test_every_rule_is_complete(self) -> None:
        rules = alert_rules()
        assert len(rules) >= 7
        for rule in rules:
            assert rule["alert"].startswith("Palisade"), rule
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
            annotations = rule["annotations"]
            assert annotations["summary"], rule["alert"]
            assert annotations["description"], rule["alert"]

    def test_runbook_links_resolve_in_operations_md(self) -> None:
        anchors = operations_anchors()
        for rule in alert_rules():
            url = rule["annotations"]["runbook_url"]
            assert url == f"docs/operations.md#{rule['alert'].lower()}", rule["alert"]
            assert url.split("#", 1)[1] in anchors, f"no heading for {url}"

    def test_expressions_use_only_palisade_metrics(self) -> None:
        for rule in alert_rules():
            names = promql_metric_names(rule["expr"])
            assert names, rule["alert"]
            assert names <= SERIES, f"{rule['alert']}: unknown {names - SERIES}"

    def test_the_expected_alerts_exist(self) -> None:
        expressions = {rule["alert"]: rule["expr"] for rule in alert_rules()}
        assert (
            "palisade_cleanup_oldest_pending_seconds"
            in expressions["PalisadeCleanupPendingTooLong"]
        )
        reconciler = expressions["PalisadeReconcilerNotCycling"]
        assert "absent(" in reconciler
        assert "time()" in reconciler
        assert "palisade_cleanup_backlog" in expressions["PalisadeCleanupBacklogGrowing"]
        assert "palisade_tavus_errors_total" in expressions["PalisadeTavusErrorRateHigh"]
        assert "palisade_session_start" in expressions["PalisadeStartLatencyHigh"]
        assert "/sessions" in expressions["PalisadeSessionsFailing"]
        assert 'status="503"' in expressions["PalisadeUpstreamCapacity"]

    def test_links_into_operations_md_resolve(self) -> None:
        anchors = operations_anchors()
        sources = [OPERATIONS, REPO / ".env.example", REPO / "docker-compose.yml", DASHBOARD]
        sources += sorted((REPO / "deploy").rglob("*.yaml"))
        for source in sources:
            links = re.findall(r"(?:operations\.md|\]\()#([\w-]+)", source.read_text())
            for anchor in links:
                assert anchor in anchors, f"{source.name}: #{anchor}"


def declared_metrics() -> dict[str, tuple[str, frozenset[str]]]:
    """Each metric app/observability/metrics.py defines: its type and its label names."""
    declared = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            (family,) = value.describe()
            name = family.name + ("_total" if family.type == "counter" else "")
            # prometheus-client keeps the label names of a metric in `_labelnames`.
            declared[name] = (family.type, frozenset(getattr(value, "_labelnames", ())))
    return declared


class TestApplicationMetrics:
    def test_the_application_exposes_exactly_these_metrics(self) -> None:
        declared = declared_metrics()
        assert set(declared) == METRICS
        for name, (kind, _) in declared.items():
            expected = (
                "histogram" if name in HISTOGRAMS else "counter" if name in COUNTERS else "gauge"
            )
            assert kind == expected, name

    def test_with_these_labels(self) -> None:
        assert {name: labels for name, (_, labels) in declared_metrics().items()} == LABELS


def promql_label_names(expr: str) -> set[str]:
    """Label names an expression matches on or groups by."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    names = set()
    for matchers in re.findall(r"\{([^}]*)\}", text):
        names |= set(re.findall(r"(\w+)\s*[=!]", matchers))
    for grouping in re.findall(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", text
    ):
        names |= {n.strip() for n in grouping.split(",") if n.strip()}
    return names


def check_labels(where: str, expr: str, legend: str = "") -> None:
    series = promql_metric_names(expr)
    available = set(TARGET_LABELS)
    for name in series:
        base = re.sub(r"_(bucket|sum|count)$", "", name) if name not in METRICS else name
        available |= LABELS[base]
        if name.endswith("_bucket"):
            available.add("le")
    used = promql_label_names(expr) | set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
    assert used <= available, f"{where}: {sorted(used - available)} are not labels of {series}"


class TestLabels:
    def test_dashboard_uses_real_labels(self) -> None:
        for panel in panels():
            for target in panel["targets"]:
                check_labels(panel["title"], target["expr"], target.get("legendFormat", ""))

    def test_alerts_use_real_labels(self) -> None:
        for rule in alert_rules():
            check_labels(rule["alert"], rule["expr"])

    def test_a_wrong_label_is_caught(self) -> None:
        with pytest.raises(AssertionError):
            check_labels("x", "sum by (class) (rate(palisade_tavus_errors_total[5m]))")
