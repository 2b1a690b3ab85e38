"""A bag-of-embeddings classifier over hashed tokens (fastText-style), plus any numeric inputs."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rscale.models.task_module import TaskModule


class TextModel(TaskModule):
    def __init__(self, model_config: dict[str, Any]) -> None:
        super().__init__(model_config)
        config = model_config["model"]
        self.bag = nn.EmbeddingBag(self.shapes["text_buckets"], config["dim"], mode="mean", padding_idx=0)
        self.head = nn.Linear(config["dim"] + self.shapes["n_numeric"], self.n_outputs)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [self.bag(batch["text"])]
        if self.shapes["n_numeric"]:
            parts.append(batch["numeric"])
        output = self.head(torch.cat(parts, dim=1))
        return output if self.n_outputs > 1 else output.squeeze(1)
