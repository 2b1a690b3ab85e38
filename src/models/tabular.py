"""An MLP over standardised numeric inputs and embedded categoricals; binary, multiclass or regression."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rscale.models.task_module import TaskModule


class TabularModel(TaskModule):
    def __init__(self, model_config: dict[str, Any]) -> None:
        super().__init__(model_config)
        config = model_config["model"]
        embedding_dim = config["embedding_dim"]
        self.embeddings = nn.ModuleList(
            nn.Embedding(size, embedding_dim, padding_idx=0) for size in self.shapes["categorical_sizes"]
        )
        width = self.shapes["n_numeric"] + embedding_dim * len(self.embeddings)
        layers: list[nn.Module] = []
        for hidden in config["hidden"]:
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(config["dropout"])]
            width = hidden
        layers.append(nn.Linear(width, self.n_outputs))
        self.mlp = nn.Sequential(*layers)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [batch["numeric"]] if "numeric" in batch else []
        if self.embeddings:
            categorical = batch["categorical"]
            parts += [embedding(categorical[:, i]) for i, embedding in enumerate(self.embeddings)]
        output = self.mlp(torch.cat(parts, dim=1))
        return output if self.n_outputs > 1 else output.squeeze(1)
