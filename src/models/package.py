"""The model package: one directory that serving, registries and containers all read the same way.

Layout (format version 1):
    manifest.json      name, model_type, task, plan_hash, version, created, frameworks, request_schema,
                       response, metrics (filled by evaluation)
    model_config.json  what rebuilds the torch module: model spec, task, shapes, optimiser settings, metrics
    preprocess.json    vocabularies and normalisation statistics (rscale.models.preprocess.Preprocessor); the
                       request codec (rscale.serving.codec.RequestCodec) is built from it
    weights.pt         the module's state_dict only; never a pickled module, so loading runs no foreign code
"""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rscale.compiler.plan import Plan

PACKAGE_FORMAT = 1
MANIFEST = "manifest.json"
MODEL_CONFIG = "model_config.json"
PREPROCESS = "preprocess.json"
WEIGHTS = "weights.pt"


class RequestError(ValueError):
    """A prediction request that does not match the package's request schema.

    `problems` lists every problem found (each naming its record and field); the message joins them.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems if problems is not None else [message]

    @classmethod
    def listing(cls, problems: list[str], limit: int) -> RequestError:
        """One error for all `problems`; past `limit` the rest are counted, not listed."""
        shown = problems[:limit]
        if len(shown) == 1:
            return cls(shown[0], shown)
        more = f", stopped at {limit}" if len(problems) >= limit else ""
        return cls(f"{len(shown)} problems{more}: " + "; ".join(shown), shown)


def framework_versions() -> dict[str, str]:
    import pyarrow
    import pytorch_lightning
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pytorch_lightning": pytorch_lightning.__version__,
        "pyarrow": pyarrow.__version__,
        "package_format": str(PACKAGE_FORMAT),
    }


def build_module(model_config: dict[str, Any]) -> Any:
    """Construct the (untrained) LightningModule a model_config.json describes, via the model registry."""
    from rscale.compiler.spec.model import MODELS

    implementation = MODELS.load(model_config["model"]["type"])
    return implementation.build(model_config)


class ModelPackage:
    """A loaded package: the module in eval mode on the CPU, its preprocessor, its request codec (request
    checks, encoding and responses), and its manifest."""

    def __init__(
        self, path: Path, manifest: dict[str, Any], model_config: dict[str, Any], preprocessor: Any, module: Any
    ):
        import torch

        self.path = path
        self._manifest = manifest
        self.model_config = model_config
        self.preprocessor = preprocessor
        self.module = module.eval()
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)
        self._torch = torch
        from rscale.serving.codec import RequestCodec

        self.codec = RequestCodec.of(preprocessor)

    # --- reading -----------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, threads: int | None = None) -> ModelPackage:
        """Read a package directory, rebuild the module from its registered implementation and load its weights.

        `threads` sets torch's intra-op threads for this process: 1 suits a one-record endpoint, where
        thread hand-offs cost more than the arithmetic (measured: 8 ms -> 0.25 ms per GRU request).
        """
        import torch

        if threads:
            torch.set_num_threads(threads)

        from rscale.models.preprocess import Preprocessor

        path = Path(path)
        for name in (MANIFEST, MODEL_CONFIG, PREPROCESS, WEIGHTS):
            if not (path / name).is_file():
                from rscale.errors import RscaleError

                raise RscaleError(
                    f"{path} is not a model package: {name} is missing",
                    fix="point at a directory written by `rs run` (train stage) or ModelPackage.save",
                )
        manifest = json.loads((path / MANIFEST).read_text())
        model_config = json.loads((path / MODEL_CONFIG).read_text())
        preprocessor = Preprocessor.load(path / PREPROCESS)
        module = build_module(model_config)
        state = torch.load(path / WEIGHTS, map_location="cpu", weights_only=True)
        module.load_state_dict(state)
        return cls(path, manifest, model_config, preprocessor, module)

    @property
    def manifest(self) -> dict[str, Any]:
        return self._manifest

    @property
    def request_schema(self) -> dict[str, Any]:
        return self._manifest["request_schema"]

    @property
    def version(self) -> str:
        return self._manifest["version"]

    @property
    def task(self) -> str:
        return self._manifest["task"]

    # --- predicting --------------------------------------------------------------------------------
    def validate(self, records: list[dict[str, Any]]) -> None:
        """Raise RequestError naming the field if any record does not match the request schema."""
        self.codec.encode(records)

    def predict(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Validate, encode and score records; one response dict per record (see manifest `response`)."""
        return self.codec.respond(self._score(records))

    def predict_json(self, records: list[dict[str, Any]]) -> list[str]:
        """What `predict` answers, as one compact JSON text per record (the server's path: no dicts built
        to be serialized again). PredictionNotFinite where an output is NaN or infinite."""
        return self.codec.respond_json(self._score(records))

    def _score(self, records: list[dict[str, Any]]) -> Any:
        batch = self.codec.encode(records)
        with self._torch.inference_mode():
            return self.module(batch)

    # --- writing -----------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write this package to another directory (weights as a state_dict)."""
        return write_package(path, self.module, self.preprocessor, self.model_config, manifest=self._manifest)

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        """Merge evaluation metrics into manifest.json, on disk and in memory."""
        self._manifest = update_manifest_metrics(self.path, metrics)


def update_manifest_metrics(path: str | Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """Merge `metrics` into a package's manifest.json without loading the model."""
    manifest_path = Path(path) / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest.setdefault("metrics", {}).update(metrics)
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def write_package(
    path: str | Path,
    module: Any,
    preprocessor: Any,
    model_config: dict[str, Any],
    *,
    name: str | None = None,
    plan_hash: str | None = None,
    manifest: dict[str, Any] | None = None,
) -> Path:
    """Write a package directory. Without `manifest`, a new one is made from `name` and `plan_hash`."""
    import torch

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if manifest is None:
        from rscale.serving.codec import RequestCodec

        codec = RequestCodec.of(preprocessor)
        created = datetime.now(UTC)
        manifest = {
            "name": name or "model",
            "model_type": model_config["model"]["type"],
            "task": model_config["task"],
            "target": preprocessor.task.kind,
            "plan_hash": plan_hash,
            "version": f"{created:%Y%m%d%H%M%S}-{(plan_hash or 'noplan')[:8]}",
            "created": created.isoformat(),
            "format": PACKAGE_FORMAT,
            "frameworks": framework_versions(),
            "request_schema": codec.request_schema(),
            "response": codec.response_description(),
            "metrics": {},
        }
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    torch.save(state, path / WEIGHTS)
    (path / MODEL_CONFIG).write_text(json.dumps(model_config, indent=2, sort_keys=True) + "\n")
    preprocessor.save(path / PREPROCESS)
    (path / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path


def model_config_for(plan: Plan, preprocessor: Any) -> dict[str, Any]:
    """The model_config.json of a plan: everything that rebuilds its module without the plan."""
    return {
        "model": plan.model.model_dump(mode="json"),
        "task": plan.task,
        "shapes": preprocessor.shapes(),
        "optim": {"lr": plan.train.lr, "weight_decay": plan.train.weight_decay},
        "metrics": list(plan.evaluate.metrics),
    }
