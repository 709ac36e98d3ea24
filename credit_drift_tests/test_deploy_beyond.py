"""The deployment files for more than one machine (Dockerfile, deploy/compose.yaml,
deploy/helm/), checked as far as a machine without Docker or Kubernetes allows: they parse, and
what they run and copy exists (deploy/README.md, "Beyond one machine")."""

import importlib
import shlex
import shutil
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
IMAGE_WORKDIR = "/opt/credit-drift"
# Console scripts of the image: pip installs them beside its python, as in this environment.
SCRIPTS = {"credit-drift", "dagster", "dagster-webserver", "dagster-daemon", "celery"}


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _image_services(doc: dict) -> dict[str, dict]:
    return {
        n: s for n, s in doc["services"].items() if s.get("image", "").startswith("credit-drift")
    }


def test_compose_file_parses_and_every_service_runs_an_existing_command():
    doc = _compose()
    services = _image_services(doc)
    expected = {"migrate", "code-location", "celery-worker", "api", "webserver", "daemon"}
    assert set(services) == expected
    for name, service in services.items():
        command = service["command"]
        assert command[0] in SCRIPTS, (name, command)
        # Each of those scripts exists in this environment (the image installs the same extra).
        assert (Path(sys.executable).parent / command[0]).exists() or shutil.which(command[0])
        # The environment names the instance storage and the prediction log.
        env = service["environment"]
        assert env["DAGSTER_PG_URL"].startswith("postgresql+psycopg2://")
        assert env["DATABASE_URL"].startswith("postgresql+psycopg2://")
        assert env["CREDIT_DRIFT_EXECUTOR"] == "celery"
        assert env["CREDIT_DRIFT_CELERY_BROKER"] == "redis://redis:6379/0"
        for i, arg in enumerate(command):
            if arg in ("-m", "-A"):
                importlib.import_module(command[i + 1])  # the module each one loads imports
            if arg == "-w":  # workspace files: paths inside the image are the repository's
                assert (REPO / Path(command[i + 1]).relative_to(IMAGE_WORKDIR)).is_file()
    workers = services["celery-worker"]
    assert workers["deploy"]["replicas"] >= 2
    assert workers["command"][workers["command"].index("-Q") + 1] == "dagster"
    # The worker config module is on the image's PYTHONPATH.
    celery_dir = Path(services["celery-worker"]["environment"]["PYTHONPATH"])
    assert (REPO / celery_dir.relative_to(IMAGE_WORKDIR) / "dagster_celery_config.py").is_file()
    # Mounted folders and init scripts exist.
    for service in doc["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), volume
    compose_workspace = yaml.safe_load((DEPLOY / "compose" / "workspace.yaml").read_text())
    server = compose_workspace["load_from"][0]["grpc_server"]
    code = services["code-location"]["command"]
    assert server["host"] == "code-location" and str(server["port"]) == code[code.index("-p") + 1]
    assert server["location_name"] == code[code.index("--location-name") + 1]


def test_dockerfile_copies_files_that_exist_and_serves_the_code_location():
    text = (REPO / "Dockerfile").read_text()
    lines = [line.strip() for line in text.replace("\\\n", " ").splitlines()]
    copies = [shlex.split(line)[1:-1] for line in lines if line.startswith("COPY ")]
    assert copies
    for sources in copies:
        for source in sources:
            assert (REPO / source).exists(), source
    cmd = next(line for line in lines if line.startswith("CMD "))
    assert "credit_drift.definitions" in cmd and "code-server" in cmd
    assert "deploy/dagster.yaml" in text  # the PostgreSQL instance config becomes DAGSTER_HOME's


def test_helm_values_and_api_manifest():
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"][:2] == ["--module-name", "credit_drift.definitions"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "QueuedRunCoordinator"
    assert coordinator["config"]["queuedRunCoordinator"]["maxConcurrentRuns"] >= 1
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env["CREDIT_DRIFT_IO_BASE"].startswith("s3://")  # every pod reaches it
    docs = list(yaml.safe_load_all((DEPLOY / "helm" / "scoring-api.yaml").read_text()))
    assert [d["kind"] for d in docs] == ["Deployment", "Service"]
    container = docs[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:2] == ["credit-drift", "serve"]


@pytest.mark.parametrize("path", ["compose.yaml", "helm/values.yaml", "dagster.yaml"])
def test_deploy_yaml_files_parse(path):
    assert yaml.safe_load((DEPLOY / path).read_text())
