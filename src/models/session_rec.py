"""Next-item recommendation: encode the session's items, score every item of the catalogue.

Encoders (`model.encoder`):
    gru        a GRU over the items, as GRU4Rec (Hidasi et al., 2016)
    sasrec     causal self-attention with learned positions, as SASRec (Kang and McAuley, 2018)
    mean       the mean of the item embeddings (an order-free bag, for comparison)

Training learns from every position of a session, as both papers do: the history and the next item
together are the session s_1..s_n, and position i predicts s_(i+1) from s_1..s_i, so a session of n
items gives n-1 examples instead of one. Evaluation and serving read the encoding after the last item
of the history, which is the same function of the same prefix. Scores are the encoding dotted with the
item embeddings (weight tying) plus a learned per-item bias that carries popularity. The loss is a full
softmax over the catalogue, or, when positions x items would not fit (large catalogues), a softmax over
the batch's own targets plus a shared sample of popular items, corrected by each item's sampling
probability (the logQ correction of sampled softmax).

A hybrid, as Ludewig et al. ("Empirical analysis of session-based recommendation algorithms", 2021) found
hybrids of neural and neighbourhood methods strongest: besides the encoder, three memories add scores
whose weights the model learns (`model.transitions: false` turns the last two off):
    repeats        each item already viewed, by how many views ago, plus a term from the state
    transitions    each of the last MEMORY_ITEMS items' most frequent next items in the training split
                   (a first-order Markov chain), log(1 + count) times a learned weight
    neighbourhood  every item viewed so far reads its most co-occurring items (the number of training
                   sessions containing both, as session-kNN counts them), log(1 + count) times a learned
                   weight by views ago: the session-kNN signal over the WHOLE session, as an input
Both memories are counted from the training split when training starts and saved with the weights; in
training each example's own session is taken out of the counts it reads, so it learns how much to trust
them on sessions it has not seen.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rscale.models.preprocess import OOV
from rscale.models.task_module import TaskModule

TRANSITIONS = 50  # successors kept per item in the transition memory
MEMORY_ITEMS = 2  # the last this-many items of the session read the transition memory
NEIGHBOURS = 50  # co-occurring items kept per item in the neighbourhood memory
FULL_SOFTMAX_CELLS = 64 * 1024 * 1024  # positions x items above which training samples the softmax
SAMPLED_NEGATIVES = 8192


class SessionRecModel(TaskModule):
    successors: torch.Tensor  # [n_items, TRANSITIONS] buffers of the transition memory
    successor_counts: torch.Tensor
    neighbours: torch.Tensor  # [n_items, NEIGHBOURS] buffers of the neighbourhood (co-occurrence) memory
    neighbour_counts: torch.Tensor

    def __init__(self, model_config: dict[str, Any]) -> None:
        super().__init__(model_config)
        config = model_config["model"]
        dim, n_items = config["dim"], self.shapes["n_items"]
        self.max_len = int(self.shapes.get("max_len") or config["max_len"])
        self.items = nn.Embedding(n_items, dim, padding_idx=0)
        nn.init.normal_(self.items.weight, std=0.05)
        with torch.no_grad():
            self.items.weight[0].zero_()
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        self.encoder = config["encoder"]
        self.dropout = nn.Dropout(config["dropout"])
        self.gru = nn.GRU(dim, dim, batch_first=True) if self.encoder == "gru" else None
        if self.encoder == "sasrec":
            heads = config.get("heads") or 1
            self.positions = nn.Embedding(self.max_len, dim)
            nn.init.normal_(self.positions.weight, std=0.05)
            layer = nn.TransformerEncoderLayer(
                dim, heads, dim_feedforward=2 * dim, dropout=config["dropout"], batch_first=True, norm_first=True
            )
            self.attention = nn.TransformerEncoder(layer, config.get("layers") or 2, enable_nested_tensor=False)
            self.attention_norm = nn.LayerNorm(dim)
        self.project = nn.Linear(dim, dim)
        self.recency = nn.Parameter(torch.zeros(self.max_len))  # repeat score by views ago (0: the last view)
        self.repeat_gate = nn.Linear(dim, 1)
        nn.init.zeros_(self.repeat_gate.weight)
        nn.init.zeros_(self.repeat_gate.bias)
        self.use_transitions = bool(config.get("transitions", True))
        if self.use_transitions:
            width = min(TRANSITIONS, n_items)
            # counted from the training split when training starts; saved with the weights, so serving reads them
            self.register_buffer("successors", torch.zeros(n_items, width, dtype=torch.int64))
            self.register_buffer("successor_counts", torch.zeros(n_items, width))
            self.transition_weight = nn.Parameter(torch.tensor([1.0] + [0.0] * (MEMORY_ITEMS - 1)))
            self.transition_gate = nn.Linear(dim, MEMORY_ITEMS)
            nn.init.zeros_(self.transition_gate.weight)
            nn.init.zeros_(self.transition_gate.bias)
            # the neighbourhood memory: for each item, the items that share most training sessions with it
            # (binary session sets, as session-kNN counts them), read from EVERY item of the session so far
            width = min(NEIGHBOURS, n_items)
            self.register_buffer("neighbours", torch.zeros(n_items, width, dtype=torch.int64))
            self.register_buffer("neighbour_counts", torch.zeros(n_items, width))
            self.neighbour_recency = nn.Parameter(torch.zeros(self.max_len))  # weight by views ago
            self.neighbour_gate = nn.Linear(dim, 1)
            nn.init.zeros_(self.neighbour_gate.weight)
            nn.init.zeros_(self.neighbour_gate.bias)

    # --- encoding ---------------------------------------------------------------------------------
    def encode_positions(self, sequence: torch.Tensor) -> torch.Tensor:
        """The session's state after each position [B, L, dim] (right-padded: later positions are ignored)."""
        embedded = self.items(sequence)
        if self.encoder == "gru":
            states, _ = self.gru(self.dropout(embedded))  # type: ignore[misc]
        elif self.encoder == "sasrec":
            width = sequence.shape[1]
            positions = torch.arange(width, device=sequence.device).clamp(max=self.max_len - 1)
            hidden = self.dropout(embedded * math.sqrt(embedded.shape[-1]) + self.positions(positions))
            causal = torch.triu(torch.ones(width, width, dtype=torch.bool, device=sequence.device), diagonal=1)
            # right padding comes after every real item, so the causal mask alone keeps it out of real positions
            states = self.attention_norm(self.attention(hidden, mask=causal, is_causal=True))
        else:
            mask = (sequence != 0).unsqueeze(-1).to(embedded.dtype)
            sums = (self.dropout(embedded) * mask).cumsum(dim=1)
            states = sums / mask.cumsum(dim=1).clamp(min=1)
        return self.project(self.dropout(states))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        sequence, lengths = batch["sequence"], batch["lengths"]
        states = self.encode_positions(sequence)
        rows = torch.arange(len(sequence), device=sequence.device)
        last = (lengths - 1).clamp(min=0)
        hidden = states[rows, last]
        scores = hidden @ self.items.weight.T + self.item_bias
        items, boost = self._repeats(sequence, lengths, states)
        scores = scores.scatter_add(1, items[rows, last], boost[rows, last].to(scores.dtype))
        if self.use_transitions:
            items, boost = self._transitions(sequence, states)
            scores = scores.scatter_add(1, items[rows, last], boost[rows, last].to(scores.dtype))
            items, boost = self._neighbourhood(sequence, lengths, states, last.unsqueeze(1))
            scores = scores.scatter_add(1, items[:, 0], boost[:, 0].to(scores.dtype))
        return scores

    def _neighbourhood(
        self,
        sequence: torch.Tensor,
        lengths: torch.Tensor,
        states: torch.Tensor,
        at: torch.Tensor,
        session: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """For positions `at` [B, T]: the neighbours of every item viewed up to each position [B, T, L * width]
        and their scores, log(1 + sessions shared) times a learned weight by views ago plus one by state.

        This is the session-kNN signal (Jannach & Ludewig, RecSys 2017) as an input the model learns to weigh:
        an item scores by how many training sessions it shares with each item of the current session, the
        recent ones weighted most. With `session` (training: the whole session's items [B, L + 1]), the
        example's own session is left out of the counts, so training sees what a new session would see.
        """
        batch, width = sequence.shape
        found, counts = self.neighbours[sequence], self.neighbour_counts[sequence]  # [B, L, K]
        if session is not None:
            # the session itself added one to every pair of its distinct items: take it back
            own = (found.unsqueeze(-1) == session[:, None, None, :]).any(-1) & found.ne(sequence.unsqueeze(-1))
            counts = counts - (own & counts.gt(0)).to(counts.dtype)
        evidence = torch.where(sequence.ge(OOV + 1).unsqueeze(-1), torch.log1p(counts), torch.zeros_like(counts))
        position = torch.arange(width, device=sequence.device)
        ago = at.unsqueeze(-1) - position[None, None, :]  # [B, T, L]
        seen = ago.ge(0) & position[None, None, :].lt(lengths[:, None, None])
        state = states.gather(1, at.clamp(min=0).unsqueeze(-1).expand(-1, -1, states.shape[-1]))  # [B, T, dim]
        weight = self.neighbour_recency[ago.clamp(min=0, max=self.max_len - 1)] + self.neighbour_gate(state)
        weight = torch.where(seen, weight, torch.zeros((), dtype=weight.dtype, device=weight.device))
        scores = weight.unsqueeze(-1) * evidence.unsqueeze(1)  # [B, T, L, K]
        items = found.unsqueeze(1).expand(-1, at.shape[1], -1, -1)
        return items.reshape(batch, at.shape[1], -1), scores.reshape(batch, at.shape[1], -1)

    def _transitions(
        self, sequence: torch.Tensor, states: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """For every position t: the successors of the items at t, t-1, ... [B, L, MEMORY_ITEMS * width] and
        their scores, log(1 + count) times a learned weight per recency and state.

        With `labels` (training), the transition from position t to its own label is left out of the counts.
        """
        batch, width = sequence.shape
        parts_items, parts_scores = [], []
        weights = self.transition_weight[None, None, :] + self.transition_gate(states)  # [B, L, MEMORY_ITEMS]
        for back in range(MEMORY_ITEMS):
            source = torch.cat([sequence.new_zeros(batch, back), sequence[:, : width - back]], dim=1)  # item at t-back
            successors, counts = self.successors[source], self.successor_counts[source]  # [B, L, K]
            if labels is not None and back == 0:
                own = successors.eq(labels.unsqueeze(-1)) & counts.gt(0)
                counts = counts - own.to(counts.dtype)
            evidence = torch.where(source.ge(OOV + 1).unsqueeze(-1), torch.log1p(counts), torch.zeros_like(counts))
            parts_items.append(successors)
            parts_scores.append(evidence * weights[..., back : back + 1])
        return torch.cat(parts_items, dim=-1), torch.cat(parts_scores, dim=-1)

    def on_train_tensors(self, tensors: dict[str, torch.Tensor], fresh: bool) -> None:
        """Count the transition memory and the item frequencies from the training rows. A resumed run
        (`fresh` False) counts the same rows again and keeps its trained bias."""
        if "sequence" not in tensors:
            return
        if self.use_transitions:
            self.count_transitions(tensors["sequence"], tensors["lengths"], tensors["target"])
            self.count_neighbours(tensors["sequence"], tensors["lengths"], tensors["target"])
        if fresh:
            self.start_from_popularity(tensors["sequence"], tensors["target"])

    @torch.no_grad()
    def start_from_popularity(self, sequence: torch.Tensor, target: torch.Tensor) -> None:
        """item_bias = log of each item's share of the training views (plus one), padding and OOV excluded."""
        n_items = self.item_bias.shape[0]
        items = torch.cat([sequence.reshape(-1), target.reshape(-1)])
        counts = torch.bincount(items[items.ge(OOV + 1)], minlength=n_items).float() + 1.0
        counts[: OOV + 1] = 1.0
        self.item_bias.copy_((counts / counts.sum()).log().to(self.item_bias.device))

    @staticmethod
    def whole_sessions(sequence: torch.Tensor, lengths: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The history, then the next item: [B, L + 1], right-padded with 0."""
        full = torch.cat([sequence, sequence.new_zeros(len(sequence), 1)], dim=1)
        full[torch.arange(len(full), device=full.device), lengths] = target
        return full

    @torch.no_grad()
    def count_transitions(self, sequence: torch.Tensor, lengths: torch.Tensor, target: torch.Tensor) -> None:
        """Fill the memory: for each item, its TRANSITIONS most frequent next items in whole training sessions."""
        n_items = self.successors.shape[0]
        full = self.whole_sessions(sequence, lengths, target)
        source, following = full[:, :-1].reshape(-1), full[:, 1:].reshape(-1)
        keep = source.ge(OOV + 1) & following.ge(OOV + 1)
        codes, counts = torch.unique(source[keep] * n_items + following[keep], return_counts=True)
        _keep_strongest(self.successors, self.successor_counts, codes // n_items, codes % n_items, counts)

    @torch.no_grad()
    def count_neighbours(self, sequence: torch.Tensor, lengths: torch.Tensor, target: torch.Tensor) -> None:
        """Fill the neighbourhood memory: for each item, the NEIGHBOURS items in most training sessions with it
        (each session a set: a repeat counts once), over whole sessions, pair distance by pair distance."""
        n_items = self.neighbours.shape[0]
        full = self.whole_sessions(sequence, lengths, target)
        rows = torch.arange(len(full)).repeat_interleave(full.shape[1])
        items = full.reshape(-1)
        real = items.ge(OOV + 1)
        codes = torch.unique(rows[real] * n_items + items[real])  # distinct (session, item), sorted by session
        rows, items = codes // n_items, codes % n_items
        rank = torch.arange(len(rows)) - torch.searchsorted(rows, rows)
        sets = full.new_zeros(len(full), int(rank.max()) + 1 if len(rank) else 1)
        sets[rows, rank] = items
        pairs = []
        for distance in range(1, sets.shape[1]):
            a, b = sets[:, :-distance].reshape(-1), sets[:, distance:].reshape(-1)
            keep = a.gt(0) & b.gt(0)
            a, b = a[keep], b[keep]
            pairs.append(torch.unique(torch.cat([a * n_items + b, b * n_items + a]), return_counts=True))
        if not pairs:
            self.neighbours.zero_()
            self.neighbour_counts.zero_()
            return
        codes = torch.cat([c for c, _ in pairs])
        codes, inverse = torch.unique(codes, return_inverse=True)
        counts = torch.zeros(len(codes), dtype=torch.int64).index_add_(0, inverse, torch.cat([n for _, n in pairs]))
        _keep_strongest(self.neighbours, self.neighbour_counts, codes // n_items, codes % n_items, counts)

    def _repeats(
        self, sequence: torch.Tensor, lengths: torch.Tensor, states: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """For every position t: the session's items up to t [B, L, L] and the repeat score each adds.

        Item j adds recency[t - j] + repeat_gate(state_t) when j <= t and j is a real view; 0 otherwise.
        """
        width = sequence.shape[1]
        position = torch.arange(width, device=sequence.device)
        ago = position[:, None] - position[None, :]  # [t, j]
        seen = (ago >= 0)[None] & (position[None, None, :] < lengths[:, None, None])
        seen = seen & sequence.ge(OOV + 1)[:, None, :]
        weight = self.recency[ago.clamp(min=0, max=self.max_len - 1)][None] + self.repeat_gate(states)  # [B, t, j]
        items = sequence[:, None, :].expand(-1, width, -1)
        return items, torch.where(seen, weight, torch.zeros((), dtype=weight.dtype, device=weight.device))

    # --- training: every position -----------------------------------------------------------------
    def training_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean cross-entropy of every next item of the session: history[1:], then the target."""
        sequence, lengths, target = batch["sequence"], batch["lengths"], batch["target"]
        rows = torch.arange(len(sequence), device=sequence.device)
        width = sequence.shape[1]
        labels = torch.cat([sequence[:, 1:], sequence.new_zeros(len(sequence), 1)], dim=1)
        labels[rows, (lengths - 1).clamp(min=0)] = target
        keep = (torch.arange(width, device=sequence.device)[None, :] < lengths[:, None]) & lengths.gt(0)[:, None]
        keep = keep & labels.ge(OOV + 1)  # unknown items (OOV) teach nothing about which item comes next
        all_states = self.encode_positions(sequence)
        items, boost = self._repeats(sequence, lengths, all_states)
        if self.use_transitions:
            successors, scores = self._transitions(sequence, all_states, labels)
            session = self.whole_sessions(sequence, lengths, target)
            at = torch.arange(width, device=sequence.device).expand(len(sequence), -1)
            neighbours, evidence = self._neighbourhood(sequence, lengths, all_states, at, session)
            items = torch.cat([items, successors, neighbours], dim=-1)
            boost = torch.cat([boost, scores, evidence], dim=-1)
        states, items, boost, labels = all_states[keep], items[keep], boost[keep], labels[keep]
        if len(labels) == 0:
            return all_states.sum() * 0.0
        if len(labels) * self.items.num_embeddings <= FULL_SOFTMAX_CELLS:
            scores = states @ self.items.weight.T + self.item_bias
            return F.cross_entropy(scores.scatter_add(1, items, boost.to(scores.dtype)), labels)
        return self._sampled_loss(states, labels, items, boost)

    def _sampled_loss(
        self, states: torch.Tensor, labels: torch.Tensor, items: torch.Tensor, boost: torch.Tensor
    ) -> torch.Tensor:
        """Softmax over the batch's targets and session items plus a shared uniform sample, logQ-corrected."""
        n_items = self.items.num_embeddings
        sample = torch.randint(OOV + 1, n_items, (SAMPLED_NEGATIVES,), device=labels.device)
        candidates = torch.unique(torch.cat([labels, items.reshape(-1), sample]))
        target_index = torch.searchsorted(candidates, labels)
        # a target or session item is in the set for sure; any other item with probability ~ SAMPLED / n
        sure = torch.zeros(len(candidates), dtype=torch.bool, device=labels.device)
        sure[target_index] = True
        sure[torch.searchsorted(candidates, items.reshape(-1))] = True
        log_q = torch.where(
            sure,
            torch.zeros((), device=labels.device),
            torch.full((), math.log(SAMPLED_NEGATIVES / n_items), device=labels.device),
        )
        scores = states @ self.items.weight[candidates].T + self.item_bias[candidates] - log_q
        scores = scores.scatter_add(1, torch.searchsorted(candidates, items), boost.to(scores.dtype))
        return F.cross_entropy(scores, target_index)


def _keep_strongest(
    ids: torch.Tensor, values: torch.Tensor, source: torch.Tensor, other: torch.Tensor, counts: torch.Tensor
) -> None:
    """Fill a memory ([n_items, width] ids and counts) with each source item's `width` strongest others."""
    width = ids.shape[1]
    ids.zero_()
    values.zero_()
    if not len(source):
        return
    # strongest first within each source item, then the first `width` of each
    order = torch.argsort(source.double() * (counts.max() + 1) - counts.double(), stable=True)
    source, other, counts = source[order], other[order], counts[order]
    rank = torch.arange(len(source)) - torch.searchsorted(source, source, right=False)
    inside = rank < width
    device = ids.device
    ids[source[inside].to(device), rank[inside].to(device)] = other[inside].to(device)
    values[source[inside].to(device), rank[inside].to(device)] = counts[inside].float().to(device)
