"""The custom tier's build context: what it holds, and its server entry point run as a process.

No Docker engine runs here, so the image is not built. Instead the context's own copy of rscale is put first
on PYTHONPATH and started the way the image starts it (`serve`, SM_MODEL_DIR, SAGEMAKER_BIND_TO_PORT).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
from sagemaker_moto import aws_plan as conversion_plan
from tiny_package import EXAMPLE, free_port, server_process, trained_package

from rscale.compiler.plan import Plan
from rscale.serving.sagemaker import package_sha256
from rscale.stacks.containers import SERVING_DISTRIBUTIONS, serving_image, write_build_context

CUSTOM = "serving={tier: custom, instance_type: ml.c5.xlarge, build: {base_image: 'python:3.11-slim-bookworm', extra_requirements: ['orjson==3.10.0']}}"


def build(package: Path | None, out: Path, plan: Plan) -> Path:
    """The serving image's context for `plan`, as `rs deploy` writes it."""
    write_build_context(serving_image(plan, package), out)
    return out


@pytest.fixture(scope="module")
def package() -> Path:
    return trained_package()


@pytest.fixture(scope="module")
def context(package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(package, tmp_path_factory.mktemp("ctx") / "container", conversion_plan(CUSTOM))


def context_env(context: Path, port: int) -> dict[str, str]:
    return {
        "PYTHONPATH": str(context / "rscale-src"),
        "SM_MODEL_DIR": str(context / "model"),
        "SAGEMAKER_BIND_TO_PORT": str(port),
    }


def test_dockerfile_speaks_the_serving_contract(context: Path) -> None:
    lines = [line for line in (context / "Dockerfile").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "FROM python:3.11-slim-bookworm"
    assert "COPY model/ /opt/ml/model/" in lines
    assert "EXPOSE 8080" in lines
    assert lines[-1] == 'ENTRYPOINT ["serve"]'
    assert any(line.startswith("ENV ") and "SM_MODEL_DIR=/opt/ml/model" in line for line in lines)
    # requirements are installed before the source, and rscale itself without its heavy dependencies
    assert lines.index("RUN pip install --no-cache-dir -r requirements.txt") < lines.index(
        "RUN pip install --no-cache-dir --no-deps ./rscale-src"
    )


def test_the_package_is_copied_unchanged(context: Path, package: Path) -> None:
    assert package_sha256(context / "model") == package_sha256(package)


def test_requirements_are_pinned_to_what_runs_here(context: Path) -> None:
    import importlib.metadata

    lines = (context / "requirements.txt").read_text().splitlines()
    pins = dict(line.split("==", 1) for line in lines if "==" in line)
    assert set(SERVING_DISTRIBUTIONS) <= set(pins)
    for name in SERVING_DISTRIBUTIONS:
        assert pins[name].split("+")[0] == importlib.metadata.version(name).split("+")[0]
    assert pins["torch"].endswith("+cpu") and "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    assert pins["orjson"] == "3.10.0"  # serving.build.extra_requirements


def test_a_gpu_instance_gets_the_default_torch_wheel(package: Path, tmp_path: Path) -> None:
    plan = conversion_plan("serving={tier: custom, build: {}, instance_type: ml.g4dn.xlarge}")
    out = build(package, tmp_path / "gpu", plan)
    text = (out / "requirements.txt").read_text()
    assert "download.pytorch.org" not in text and "+cpu" not in text


def test_the_generic_serving_image_has_no_model_baked_in(tmp_path: Path) -> None:
    out = build(None, tmp_path / "generic", conversion_plan("serving={tier: serverless}"))
    assert not (out / "model").exists()
    assert "/opt/ml/model/" not in [line.split()[-1] for line in (out / "Dockerfile").read_text().splitlines() if line.startswith("COPY")]
    assert (out / "Dockerfile").read_text().startswith("#") and "FROM python:3.11-slim\n" in (out / "Dockerfile").read_text()


def test_a_package_inside_the_old_context_survives_a_rewrite(context: Path, package: Path, tmp_path: Path) -> None:
    import shutil

    old = shutil.copytree(context, tmp_path / "container")
    out = build(old / "model", old, conversion_plan(CUSTOM))
    assert out == old and package_sha256(out / "model") == package_sha256(package)
    assert not list(tmp_path.glob(".container.*"))


def test_the_source_copy_installs_the_serve_script(context: Path) -> None:
    pyproject = tomllib.loads((context / "rscale-src" / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["serve"] == "rscale.serving.server:serve_main"
    assert (context / "rscale-src" / "rscale" / "serving" / "server.py").is_file()
    assert not list((context / "rscale-src").rglob("__pycache__"))


def test_the_context_server_answers_ping_and_invocations(context: Path, tmp_path: Path) -> None:
    port = free_port()
    env = context_env(context, port)
    which = subprocess.run(
        [sys.executable, "-c", "import rscale.serving.server as s; print(s.__file__)"],
        env={**os.environ, **env}, cwd=tmp_path, capture_output=True, text=True, check=True,
    )
    assert Path(which.stdout.strip()).is_relative_to(context)  # the context's copy runs, not the repo's
    # As SageMaker starts the image: `serve` with the contract's environment (host narrowed to loopback here).
    command = [sys.executable, "-m", "rscale.serving.server", "serve", "--host", "127.0.0.1"]
    url = f"http://127.0.0.1:{port}"
    with server_process(command, url, env=env, log=tmp_path / "server.log"):
        assert httpx.get(f"{url}/ping").status_code == 200
        response = httpx.post(f"{url}/invocations", json=EXAMPLE)
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        manifest = json.loads((context / "model" / "manifest.json").read_text())
        assert body["model_version"] == manifest["version"]
        (prediction,) = body["predictions"]
        assert 0.0 <= prediction["probability"] <= 1.0 and prediction["label"] in (0, 1)


def test_the_pinned_requirements_are_enough_to_serve(context: Path, tmp_path: Path) -> None:
    """The context's rscale loads the package and predicts with nothing importable but the pinned requirements
    (and their dependencies): a stand-in for the image's site-packages, built from this venv's files."""
    roots = [line.split("==")[0] for line in (context / "requirements.txt").read_text().splitlines() if "==" in line]
    site = tmp_path / "site-packages"
    site.mkdir()
    for name in _closure(roots):
        _link_distribution(name, site)
    probe = (
        "import json, sys\n"
        "from rscale.serving.server import create_app\n"
        f"app = create_app({str(context / 'model')!r})\n"
        f"print(json.dumps(app.state.package.predict([{EXAMPLE!r}])))\n"
        "print(json.dumps(sorted(m for m in ('zenml', 'mlflow', 'duckdb', 'sqlglot', 'matplotlib') if m in sys.modules)))\n"
    )
    env = {"PYTHONPATH": f"{context / 'rscale-src'}{os.pathsep}{site}", "PATH": os.environ.get("PATH", "")}
    done = subprocess.run([sys.executable, "-S", "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    predictions, heavy = (json.loads(line) for line in done.stdout.strip().splitlines()[-2:])
    assert 0.0 <= predictions[0]["probability"] <= 1.0
    assert heavy == []


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _closure(roots: list[str]) -> set[str]:
    """Distribution names reachable from `roots` through installed metadata (markers evaluated, extras ignored)."""
    import importlib.metadata

    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = [_canonical(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(_canonical(requirement.name))
    return seen


def _link_distribution(name: str, site: Path) -> None:
    """Symlink an installed distribution's top-level files and folders (code and .dist-info) into `site`."""
    import importlib.metadata

    try:
        distribution = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return
    base = Path(str(distribution.locate_file("")))
    tops = {Path(str(f)).parts[0] for f in distribution.files or [] if not str(f).startswith("..")}
    for top in tops:
        source, target = base / top, site / top
        if source.exists() and not target.exists():
            target.symlink_to(source)
