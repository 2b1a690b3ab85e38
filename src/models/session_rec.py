"""Next-item recommendation: embed the session's last items, encode them (GRU or mean), score every item.

Scores are the session encoding dotted with the same item embeddings (weight tying) plus a learned
per-item bias, which carries popularity, trained with a full softmax over the catalogue.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rscale.models.task_module import TaskModule


class SessionRecModel(TaskModule):
    def __init__(self, model_config: dict[str, Any]) -> None:
        super().__init__(model_config)
        config = model_config["model"]
        dim, n_items = config["dim"], self.shapes["n_items"]
        self.items = nn.Embedding(n_items, dim, padding_idx=0)
        nn.init.normal_(self.items.weight, std=0.05)
        with torch.no_grad():
            self.items.weight[0].zero_()
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        self.encoder = config["encoder"]
        self.gru = nn.GRU(dim, dim, batch_first=True) if self.encoder == "gru" else None
        self.project = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(config["dropout"])

    def encode(self, sequence: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        embedded = self.dropout(self.items(sequence))
        if self.gru is not None:
            states, _ = self.gru(embedded)
            # right-padded: the state after the last real item (an empty session reads the padding state)
            last = (lengths - 1).clamp(min=0)
            hidden = states[torch.arange(len(sequence), device=sequence.device), last]
        else:
            hidden = embedded.sum(dim=1) / lengths.clamp(min=1).unsqueeze(1).to(embedded.dtype)
        return self.project(self.dropout(hidden))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.encode(batch["sequence"], batch["lengths"])
        return hidden @ self.items.weight.T + self.item_bias
