"""`model`: a discriminated union on `type`, one registered config per model family."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from rscale.compiler.spec.base import Block
from rscale.registry import Registry

MODELS: Registry = Registry("model", key="type")


@MODELS.register("session_rec", impl="rscale.models.session_rec:SessionRecModel")
class SessionRecConfig(Block):
    """Next-item recommendation from a session's item sequence."""

    type: Literal["session_rec"]
    dim: int = Field(64, ge=4, le=4096, description="Item embedding size.")
    encoder: Literal["gru", "sasrec", "mean"] = Field(
        "gru",
        description="How the session is encoded: `gru` (GRU4Rec), `sasrec` (causal self-attention, SASRec) or "
        "`mean` (a bag of the items). Every encoder learns from every position of the session.",
    )
    transitions: bool = Field(
        True,
        description="Add a transition memory (each item's most frequent next items in the training split) and "
        "a neighbourhood memory (the items sharing most training sessions with each item viewed so far), scored "
        "with learned weights: a sequence model, a Markov chain and session-kNN together.",
    )
    layers: int = Field(2, ge=1, le=12, description="Self-attention blocks (`sasrec` only).")
    heads: int = Field(1, ge=1, le=16, description="Attention heads (`sasrec` only); `dim` must divide by it.")
    max_len: int = Field(20, ge=1, le=1024, description="Most recent items kept from each session.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout on the item embeddings and the session encoding.")
    top_k: int = Field(10, ge=1, le=1000, description="How many items the endpoint returns.")


@MODELS.register("tabular", impl="rscale.models.tabular:TabularModel")
class TabularConfig(Block):
    """An MLP over numeric and categorical features, for classification or regression."""

    type: Literal["tabular"]
    hidden: list[int] = Field(default_factory=lambda: [64, 32], description="Hidden layer sizes.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout after each hidden layer.")
    embedding_dim: int = Field(8, ge=1, le=1024, description="Embedding size of each categorical feature.")


@MODELS.register("text", impl="rscale.models.text:TextModel")
class TextConfig(Block):
    """A bag-of-embeddings classifier over hashed tokens of one text feature."""

    type: Literal["text"]
    dim: int = Field(64, ge=4, le=4096, description="Token embedding size.")
    buckets: int = Field(2**18, ge=1024, description="Hash buckets for tokens.")


@MODELS.register("custom", impl="rscale.models.custom:CustomModel")
class CustomModelConfig(Block):
    """Your own LightningModule, imported from `module` ("package.module:Class") with `params` as kwargs."""

    type: Literal["custom"]
    module: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", description="package.module:Class of a LightningModule.")
    task: Literal["classification", "regression", "ranking"] = Field(
        "classification", description="What the module predicts; picks the metrics and baselines that fit."
    )
    params: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for the module's constructor.")
