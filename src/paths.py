"""Where rscale keeps state: everything under `.rs/` in the project, never in the user's home.

The project root is the working directory, or RS_PROJECT_DIR. ZenML and MLflow are pointed at `.rs/`
before they are imported (`use_project_state`).
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    return Path(os.environ.get("RS_PROJECT_DIR") or Path.cwd()).resolve()


def state_dir() -> Path:
    path = project_root() / ".rs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_dir(name: str) -> Path:
    return project_root() / "build" / name


def predictions_dir(name: str) -> Path:
    """Append-only prediction logs of one use case (JSON lines), read by the warehouse as a view."""
    path = state_dir() / "predictions" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def serving_dir() -> Path:
    path = state_dir() / "serving"
    path.mkdir(parents=True, exist_ok=True)
    return path


def use_project_state() -> None:
    """Point ZenML, MLflow and friends at `.rs/`. Must run before zenml is imported."""
    state = state_dir()
    zenml = state / "zenml"
    zenml.mkdir(exist_ok=True)
    os.environ.setdefault("ZENML_CONFIG_PATH", str(zenml))
    os.environ.setdefault("ZENML_LOCAL_STORES_PATH", str(zenml / "local_stores"))
    os.environ.setdefault("ZENML_STORE_URL", f"sqlite:///{zenml / 'zenml.db'}")
    os.environ.setdefault("ZENML_STORE_TYPE", "sql")
    os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
    os.environ.setdefault("ZENML_ENABLE_RICH_TRACEBACK", "false")
    os.environ.setdefault("ZENML_LOGGING_VERBOSITY", "WARN")
    os.environ.setdefault("ZENML_DISABLE_STEP_LOGS_STORAGE", "false")
    os.environ.setdefault("AUTO_OPEN_DASHBOARD", "false")
    os.environ.setdefault("ZENML_AUTO_OPEN_DASHBOARD", "false")
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{state / 'mlflow.db'}")
    os.environ.setdefault("NEPTUNE_DATA_DIRECTORY", str(state / ".neptune"))  # `neptune sync` looks for .neptune
    os.environ.setdefault("TORCH_HOME", str(state / "torch"))
    os.environ.setdefault("LIGHTNING_DISABLE_VERSION_CHECK", "1")
