"""ZenML materializers for rscale's artifacts: Arrow tables as Parquet (the loaded table with its split's row
indices beside it, as .npz), model packages as directories.

Without these ZenML pickles both (see DESIGN.md): pickles are neither portable nor inspectable.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from zenml.enums import ArtifactType
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer

from rscale.data.split import PARTS, SplitRows, SplitTable
from rscale.paths import state_dir
from rscale.stages.artifacts import PackageDir


class ArrowTableMaterializer(BaseMaterializer):
    """Stores a pyarrow.Table as one Parquet file; loads it back without pandas (any table output, and the
    train/validation/test tables of runs made before the split was stored as row indices)."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (pa.Table,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA
    FILE = "table.parquet"

    def load(self, data_type: type[Any]) -> pa.Table:
        with self.artifact_store.open(os.path.join(self.uri, self.FILE), "rb") as f:
            return pq.read_table(f)

    def save(self, data: pa.Table) -> None:
        with self.artifact_store.open(os.path.join(self.uri, self.FILE), "wb") as f:
            pq.write_table(data, f, compression="zstd")

    def extract_metadata(self, data: pa.Table) -> dict[str, Any]:
        return {"rows": data.num_rows, "columns": data.column_names, "bytes": data.nbytes}


class SplitTableMaterializer(BaseMaterializer):
    """Stores the loaded table with its split: the table as one Parquet file (as ArrowTableMaterializer), the
    split's row indices as one uncompressed .npz (train, validation, test int64 arrays)."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (SplitTable,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA
    TABLE, ROWS = "table.parquet", "rows.npz"

    def load(self, data_type: type[Any]) -> SplitTable:
        with self.artifact_store.open(os.path.join(self.uri, self.TABLE), "rb") as f:
            table = pq.read_table(f)
        with self.artifact_store.open(os.path.join(self.uri, self.ROWS), "rb") as f:
            arrays = np.load(f, allow_pickle=False)
            rows = SplitRows(*(arrays[name] for name in PARTS))
        return SplitTable(table, rows)

    def save(self, data: SplitTable) -> None:
        with self.artifact_store.open(os.path.join(self.uri, self.TABLE), "wb") as f:
            pq.write_table(data.table, f, compression="zstd")
        with self.artifact_store.open(os.path.join(self.uri, self.ROWS), "wb") as f:
            np.savez(f, **{name: getattr(data.rows, name) for name in PARTS})

    def extract_metadata(self, data: SplitTable) -> dict[str, Any]:
        parts = {f"{name}_rows": rows for name, rows in data.rows.sizes().items()}
        return {"rows": data.table.num_rows, "columns": data.table.column_names, "bytes": data.table.nbytes, **parts}


class PackageDirMaterializer(BaseMaterializer):
    """Stores a model package directory file by file; loads it into a local cache under .rs/packages/."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (PackageDir,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def load(self, data_type: type[Any]) -> PackageDir:
        local = state_dir() / "packages" / hashlib.sha256(self.uri.encode()).hexdigest()[:16]
        if not (local / "manifest.json").exists():
            tmp = local.with_suffix(".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            self._copy_tree(self.uri, str(tmp), download=True)
            os.replace(tmp, local)
        return PackageDir(path=str(local))

    def save(self, data: PackageDir) -> None:
        self._copy_tree(data.path, self.uri, download=False)

    def _copy_tree(self, source: str, target: str, download: bool) -> None:
        walk = fileio.walk if download else os.walk
        for root, _dirs, files in walk(source):
            root = root.decode() if isinstance(root, bytes) else str(root)
            relative = os.path.relpath(root, source)
            destination = os.path.normpath(os.path.join(target, relative))
            (Path(destination).mkdir(parents=True, exist_ok=True) if download else fileio.makedirs(destination))
            for name in files:
                name = name.decode() if isinstance(name, bytes) else str(name)
                fileio.copy(os.path.join(root, name), os.path.join(destination, name), overwrite=True)

    def extract_metadata(self, data: PackageDir) -> dict[str, Any]:
        manifest = data.manifest()
        return {k: manifest[k] for k in ("version", "plan_hash", "model_type", "task") if k in manifest}
