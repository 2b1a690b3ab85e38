"""`model`: a discriminated union on `type`, one registered config per model family.

Each model declares where it registers what it fits (Ludwig's `register_encoder_config(name, features,
model_types)`): the spec-level tasks it learns and the input types it reads. The cross-field checks and
`task_of` ask these declarations; there is no central table of models.
"""

from typing import Any, ClassVar, Literal

from pydantic import Field

from rscale.compiler.spec.base import Block
from rscale.compiler.spec.tasks import serves
from rscale.registry import Registry

MODELS: Registry = Registry("model", key="type")


class ModelConfig(Block):
    """What every model declares at registration: its tasks, its inputs, and the target it needs."""

    tasks: ClassVar[tuple[str, ...]] = ("classification", "regression", "ranking")  # the first is the default
    input_types: ClassVar[tuple[str, ...] | None] = None  # feature types it reads; None: any
    single_input: ClassVar[bool] = False  # reads exactly one input, of input_types[0]
    input_note: ClassVar[str] = ""  # what that one input is, shown in the error
    input_fix: ClassVar[str] = ""
    target_types: ClassVar[tuple[str, ...] | None] = None  # feature types of the targets it predicts; None: any
    target_note: ClassVar[str] = ""  # why, shown in the error

    def fixed_task(self) -> str | None:
        """The task this model learns whatever the target (a check then names a target that does not fit), or
        None when the target's type decides."""
        return self.tasks[0] if len(self.tasks) == 1 else None

    def task_for(self, target_type: str) -> str:
        """The task this model learns for a target of `target_type`: the first of its tasks that learns such a
        target as itself (a numeric target is regression), else its first."""
        return next((task for task in self.tasks if serves(task, target_type)), self.tasks[0])


@MODELS.register("session_rec", impl="rscale.models.session_rec:SessionRecModel")
class SessionRecConfig(ModelConfig):
    """Next-item recommendation from a session's item sequence."""

    tasks: ClassVar[tuple[str, ...]] = ("ranking",)
    input_types: ClassVar[tuple[str, ...] | None] = ("sequence",)
    single_input: ClassVar[bool] = True
    input_note: ClassVar[str] = " (the session's items)"
    input_fix: ClassVar[str] = "keep one input, e.g. {name: items, type: sequence}"
    target_types: ClassVar[tuple[str, ...] | None] = ("categorical",)
    target_note: ClassVar[str] = "predicts the next item"

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
class TabularConfig(ModelConfig):
    """An MLP over numeric and categorical features, for classification or regression."""

    tasks: ClassVar[tuple[str, ...]] = ("classification", "regression")
    input_types: ClassVar[tuple[str, ...] | None] = ("numeric", "categorical", "binary")

    type: Literal["tabular"]
    hidden: list[int] = Field(default_factory=lambda: [64, 32], description="Hidden layer sizes.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout after each hidden layer.")
    embedding_dim: int = Field(8, ge=1, le=1024, description="Embedding size of each categorical feature.")


@MODELS.register("text", impl="rscale.models.text:TextModel")
class TextConfig(ModelConfig):
    """A bag-of-embeddings classifier over hashed tokens of one text feature."""

    tasks: ClassVar[tuple[str, ...]] = ("classification", "regression")
    input_types: ClassVar[tuple[str, ...] | None] = ("text",)
    single_input: ClassVar[bool] = True
    input_fix: ClassVar[str] = "keep one input of type text"

    type: Literal["text"]
    dim: int = Field(64, ge=4, le=4096, description="Token embedding size.")
    buckets: int = Field(2**18, ge=1024, description="Hash buckets for tokens.")


@MODELS.register("custom", impl="rscale.models.custom:CustomModel")
class CustomModelConfig(ModelConfig):
    """Your own LightningModule, imported from `module` ("package.module:Class") with `params` as kwargs."""

    type: Literal["custom"]
    module: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", description="package.module:Class of a LightningModule.")
    task: Literal["classification", "regression", "ranking"] = Field(
        "classification", description="What the module predicts; picks the metrics and baselines that fit."
    )
    params: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for the module's constructor.")

    def fixed_task(self) -> str | None:
        """The task the spec names (`model.task`): a custom module predicts what its author says."""
        return self.task
