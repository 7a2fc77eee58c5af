"""docker-compose.yml, Dockerfile.api, Dockerfile.worker and .env.example, checked without a
Docker engine: the structure the deployment depends on (what `docker compose config` would
not catch as well: healthchecks, the GPU reservation, Redis persistence, the one-shot
services, every variable documented). `docker compose config` itself runs when the client
has the compose plugin."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILES = {
    "Dockerfile.api": ["build", "runtime"],
    "Dockerfile.worker": [
        "analysis-build",
        "analysis",
        "report-build",
        "report",
        "report-cpu-build",
        "report-cpu",
    ],
}
LOCAL = ROOT / "scripts" / "containers" / "compose.local.yml"
LOCKS = ROOT / "scripts" / "containers" / "locks"
# build stage -> the lock it installs
STAGE_LOCK = {
    ("Dockerfile.api", "build"): "api",
    ("Dockerfile.worker", "analysis-build"): "analysis",
    ("Dockerfile.worker", "report-build"): "report",
    ("Dockerfile.worker", "report-cpu-build"): "report",
}
PROJECT_SERVICES = {
    "migrate",
    "api",
    "relay",
    "worker-analysis",
    "worker-report",
    "worker-report-vllm",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    svc: dict[str, Any] = compose["services"]
    return svc


def test_the_services_the_issue_names(services: dict[str, Any]) -> None:
    assert {
        "postgres",
        "redis",
        "minio",
        "minio-init",
        "migrate",
        "api",
        "relay",
        "worker-analysis",
        "worker-report",
        "flower",
        "vllm",
    } <= set(services)


def test_every_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        hc = svc.get("healthcheck")
        assert hc and hc.get("test") and not hc.get("disable"), name
        assert hc["test"][0] in ("CMD", "CMD-SHELL"), name


def test_project_healthchecks_name_known_kinds(services: dict[str, Any]) -> None:
    from scripts import healthcheck

    for name in PROJECT_SERVICES:
        test = services[name]["healthcheck"]["test"]
        assert test[1:4] == ["python", "-m", "scripts.healthcheck"], name
        kind = test[4]
        assert hasattr(healthcheck, f"check_{kind}"), (name, kind)
        if kind == "worker":
            assert test[5] in services[name]["command"], name


def test_gpu_reserved_for_the_report_worker_and_vllm(services: dict[str, Any]) -> None:
    for name in ("worker-report", "vllm"):
        devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert any(
            d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices
        ), name
    for name in ("worker-analysis", "api", "worker-report-vllm"):
        assert "deploy" not in services[name] or "resources" not in services[name]["deploy"]


def test_report_worker_model_cache_and_token(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    rep = services["worker-report"]
    assert "models:/models" in rep["volumes"]
    assert rep["environment"]["HF_HOME"] == "/models"
    assert rep["environment"]["HF_TOKEN"] == "${HF_TOKEN:-}"  # from .env, never a value here
    assert "models" in compose["volumes"]
    assert rep["build"]["target"] == "report"
    assert services["worker-analysis"]["build"]["target"] == "analysis"


def test_redis_is_durable(services: dict[str, Any]) -> None:
    cmd = services["redis"]["command"]
    assert cmd[cmd.index("--appendonly") + 1] == "yes"
    assert cmd[cmd.index("--maxmemory-policy") + 1] == "noeviction"
    assert any(v.endswith(":/data") for v in services["redis"]["volumes"])


def test_bucket_created_and_migrations_run_before_the_service(services: dict[str, Any]) -> None:
    assert "mc mb" in " ".join(services["minio-init"]["command"])
    assert services["migrate"]["command"] == ["medgemma-spatial", "db", "upgrade"]
    for name in ("api", "relay", "worker-analysis", "worker-report", "worker-report-vllm"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["minio-init"]["condition"] == "service_completed_successfully", name


def test_vllm_profile_points_the_report_worker_at_it(services: dict[str, Any]) -> None:
    assert services["vllm"]["profiles"] == ["vllm"]
    w = services["worker-report-vllm"]
    assert w["profiles"] == ["vllm"]
    assert w["environment"]["MGS_REPORT_BACKEND"] == "openai"
    assert w["environment"]["MGS_OPENAI_BASE_URL"] == "http://vllm:8000/v1"
    assert "--dtype" in services["vllm"]["command"]


def _variables(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)(?::?[-?][^}]*)?\}", text))


def test_every_compose_variable_is_in_env_example() -> None:
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    missing = _variables(COMPOSE.read_text()) - documented
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_no_secret_values_in_the_files(services: dict[str, Any]) -> None:
    # env_file hands all of .env to the project's containers: the secrets they don't need are blanked
    for name in ("api", "relay", "migrate", "worker-analysis"):
        env = services[name]["environment"]
        assert env["HF_TOKEN"] == env["POSTGRES_PASSWORD"] == env["MINIO_ROOT_PASSWORD"] == "", name
    env = ENV_EXAMPLE.read_text()
    for var in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "HF_TOKEN", "FLOWER_BASIC_AUTH"):
        assert re.search(rf"^{var}=$", env, re.M), f"{var} must be empty in .env.example"
        assert f"${{{var}:?" in COMPOSE.read_text() or f"${{{var}:-}}" in COMPOSE.read_text(), var
    for name in DOCKERFILES:
        text = (ROOT / name).read_text()
        assert not re.search(r"(?i)^\s*(ENV|ARG)\s+\S*(PASSWORD|SECRET|TOKEN|API_KEY)", text, re.M)


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_multistage_pinned_nonroot_healthcheck(name: str) -> None:
    text = (ROOT / name).read_text()
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, re.M)
    assert stages == DOCKERFILES[name]
    for arg, image in re.findall(r"^ARG\s+(\w+_IMAGE)=(\S+)", text, re.M):
        _repo, _, tag = image.partition(":")
        assert tag and tag != "latest" and re.search(r"\d+\.\d+", tag), (arg, image)
    # each final stage (the ones images are made of) runs as a named non-root user with a healthcheck
    finals = [s for s in DOCKERFILES[name] if not s.endswith("build")]
    for stage in finals:
        body = text.split(f" AS {stage}\n", 1)[1].split("\nFROM ", 1)[0]
        assert re.search(r"^USER\s+(?!root|0\b)\S+", body, re.M), (name, stage)
        assert re.search(r"^HEALTHCHECK\s", body, re.M), (name, stage)


def _stage(text: str, stage: str) -> str:
    return text.split(f" AS {stage}\n", 1)[1].split("\nFROM ", 1)[0]


def test_dockerfiles_install_from_the_locks() -> None:
    """Each image installs its lock (scripts/containers/locks/, resolved from
    scripts/image_requirements.py) and then the project itself with
    `pip install --no-deps -e .`, as CI's editable install."""
    for (name, stage), lock in STAGE_LOCK.items():
        body = _stage((ROOT / name).read_text(), stage)
        assert f"COPY scripts/containers/locks/{lock}.txt /tmp/requirements.txt" in body, stage
        assert (
            "-r /tmp/requirements.txt" in body
            and "pip install --no-deps" not in body.split("-r /tmp/requirements.txt")[0]
        ), stage
        assert "--no-deps -e ." in body, stage
    # the CUDA image never sees the CPU wheelhouse
    worker = (ROOT / "Dockerfile.worker").read_text()
    assert "COPY wheels/report-cuda /wheels" in _stage(worker, "report-build")
    assert "COPY wheels/report-cpu /wheels" in _stage(worker, "report-cpu-build")


def test_every_build_stage_copies_every_package() -> None:
    """The editable install needs the source of each package the project ships (the
    `medgemma-spatial` entry point imports cli.main): a stage that misses one builds, then
    every container of that image dies on start."""
    import tomllib

    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    packages = sorted({p.split(".")[0].rstrip("*") for p in find["find"]["include"]})
    assert "cli" in packages and "core" in packages, packages
    for name, stage in STAGE_LOCK:
        body = _stage((ROOT / name).read_text(), stage)
        for pkg in packages:
            assert f"COPY {pkg} {pkg}" in body, (name, stage, pkg)


def _pins(lock: str) -> dict[str, str]:
    out = {}
    for line in (LOCKS / f"{lock}.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert name and version and " " not in line, line
            out[re.sub(r"[-_.]+", "-", name).lower()] = version
    return out


@pytest.mark.parametrize("target", ["api", "analysis", "report"])
def test_locks_pin_every_requirement_within_pyproject(target: str) -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    from scripts.image_requirements import requirements

    pins = _pins(target)
    for req in map(Requirement, requirements(target)):
        name = canonicalize_name(req.name)
        assert name in pins, f"locks/{target}.txt lacks {name} (python scripts/containers/lock.py)"
        assert req.specifier.contains(pins[name], prereleases=True), (target, str(req), pins[name])
    names = set(pins)
    if target == "api":
        assert not names & {
            "torch",
            "transformers",
            "scipy",
            "anndata",
            "matplotlib",
            "faiss-cpu",
            "igraph",
            "pandas",
            "pyarrow",
        }
    if target == "analysis":
        assert "torch" not in names
    if target == "report":
        assert {"torch", "transformers", "fpdf2"} <= names


def test_local_override_swaps_only_what_a_registry_would_give(services: dict[str, Any]) -> None:
    """compose.local.yml (make stack-smoke) overrides only services of docker-compose.yml and
    only the registry images; the project's own services keep their commands and checks."""
    local = yaml.safe_load(LOCAL.read_text().replace("!reset", "").replace("!override", ""))
    assert set(local["services"]) <= set(services)
    assert set(local["services"]) == {
        "postgres",
        "redis",
        "minio",
        "minio-init",
        "worker-report",
        "flower",
    }
    rep = local["services"]["worker-report"]
    assert rep["build"]["target"] == "report-cpu"
    assert rep["image"].startswith("medgemma-spatial-report-cpu:")
    for name in ("postgres", "redis", "minio"):
        assert local["services"][name]["image"].startswith("localhost/mgs-local-")
    text = LOCAL.read_text()
    assert "ports: !reset []" in text and "deploy: !reset {}" in text
    # podman-compose appends lists it merges: replaced checks and commands say !override
    assert text.count("healthcheck: !override") == 2


def _compose_client() -> list[str] | None:
    if shutil.which("docker"):
        r = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if r.returncode == 0:
            return ["docker", "compose"]
    return None


@pytest.mark.skipif(_compose_client() is None, reason="no `docker compose` client here")
def test_docker_compose_config(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(
        ENV_EXAMPLE.read_text()
        .replace("PASSWORD=\n", "PASSWORD=x\n")
        .replace("FLOWER_BASIC_AUTH=\n", "FLOWER_BASIC_AUTH=a:b\n")
    )
    client = _compose_client()
    assert client
    for profile in ([], ["--profile", "vllm"]):
        r = subprocess.run(
            [*client, "-f", str(COMPOSE), "--env-file", str(env), *profile, "config", "--quiet"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert r.returncode == 0, r.stderr


@pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="no docker-compose (v1) here; Debian's docker-compose package has it",
)
def test_docker_compose_v1_config(tmp_path: Path) -> None:
    """Compose v1 (Debian's docker-compose 1.29) validates the file's schema and interpolation,
    once the two Compose v2 features it predates are taken out: the top-level `name` and
    `env_file` entries with `required: false`."""
    doc = yaml.safe_load(COMPOSE.read_text())
    doc.pop("name")
    for key in [k for k in doc if k.startswith("x-")]:
        doc.pop(key)
    for svc in doc["services"].values():
        if "env_file" in svc:
            svc["env_file"] = [".env"]
    (tmp_path / "docker-compose.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    env = ENV_EXAMPLE.read_text().replace("PASSWORD=\n", "PASSWORD=x\n")
    (tmp_path / ".env").write_text(env.replace("FLOWER_BASIC_AUTH=\n", "FLOWER_BASIC_AUTH=a:b\n"))
    for profiles in ("", "vllm"):
        r = subprocess.run(
            ["docker-compose", "config", "--quiet"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", "COMPOSE_PROFILES": profiles},
        )
        assert r.returncode == 0, r.stderr
    # without the passwords compose refuses to start
    (tmp_path / ".env").write_text(ENV_EXAMPLE.read_text())
    r = subprocess.run(
        ["docker-compose", "config", "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert r.returncode != 0 and "PASSWORD" in r.stderr


def _podman_compose() -> list[str] | None:
    import sys

    exe = Path(sys.executable).with_name("podman-compose")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("podman-compose")
    return [found] if found else None


@pytest.mark.skipif(_podman_compose() is None, reason="podman-compose is not installed (dev extra)")
def test_podman_compose_merges_the_local_override(tmp_path: Path) -> None:
    """podman-compose (what `make stack-smoke` runs) reads docker-compose.yml with the local
    override: the replaced checks and commands are replaced, not appended to."""
    client = _podman_compose()
    assert client
    env = {
        "PATH": "/usr/bin:/bin",
        "POSTGRES_PASSWORD": "x",
        "MINIO_ROOT_PASSWORD": "x",
        "FLOWER_BASIC_AUTH": "a:b",
        "HOME": str(tmp_path),
    }
    r = subprocess.run(
        [*client, "-p", "cfgtest", "-f", str(COMPOSE), "-f", str(LOCAL), "config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    svc = yaml.safe_load(r.stdout)["services"]
    assert "flower" not in svc and "vllm" not in svc
    assert svc["minio"]["healthcheck"]["test"][:2] == ["CMD", "python"]
    assert svc["minio"]["command"][0] == "moto_server" and not svc["minio"].get("ports")
    assert svc["minio-init"]["healthcheck"]["test"] == ["CMD", "true"]
    assert svc["minio-init"]["entrypoint"] == ["python", "-c"]
    rep = svc["worker-report"]
    assert rep["image"].startswith("medgemma-spatial-report-cpu:") and not rep.get("deploy")
    assert rep["environment"]["MGS_REPORT_BACKEND"] == "template"
    assert rep["environment"]["MGS_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert svc["api"]["healthcheck"]["test"] == [
        "CMD",
        "python",
        "-m",
        "scripts.healthcheck",
        "api",
        "8000",
    ]
