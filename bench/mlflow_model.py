"""The same model package as an MLflow pyfunc model, so `mlflow models serve` can be measured beside rscale.

`save(package_dir, out_dir)` writes an MLflow model folder whose python_model loads the rscale package
from its artifacts and answers `{"dataframe_records": [...]}` with one probability per record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc


class PackageModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        import torch

        from rscale.models.package import ModelPackage

        torch.set_num_threads(1)
        self.package = ModelPackage.load(context.artifacts["package"])

    def predict(self, context: Any, model_input: Any, params: Any = None) -> list[float]:
        records = model_input.to_dict(orient="records")
        return [p["probability"] for p in self.package.predict(records)]


def save(package_dir: Path, out_dir: Path) -> Path:
    mlflow.pyfunc.save_model(
        path=str(out_dir), python_model=PackageModel(), artifacts={"package": str(package_dir)}
    )  # the class is pickled by reference: the server needs the repo on PYTHONPATH
    return out_dir
