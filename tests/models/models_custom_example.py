"""A user's own LightningModule for `model.type: custom`: only __init__ and forward, rscale supplies the rest."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn


class TinyClassifier(pl.LightningModule):
    """Binary classifier over the numeric inputs and the first categorical; `shapes` sizes its layers."""

    def __init__(self, hidden: int, shapes: dict) -> None:
        super().__init__()
        self.embedding = nn.Embedding(shapes["categorical_sizes"][0], 4)
        self.net = nn.Sequential(nn.Linear(shapes["n_numeric"] + 4, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        features = torch.cat([batch["numeric"], self.embedding(batch["categorical"][:, 0])], dim=1)
        return self.net(features).squeeze(1)
