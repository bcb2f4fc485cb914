"""The boosting loop: MART and DART (Rashmi & Gilad-Bachrach, AISTATS 2015).

Each round DART drops every existing round independently with probability ``rate_drop`` (one at
random if none was hit: "binomial-plus-one"), fits the new trees to the loss gradient at the
ensemble without the dropped ones, then normalises: with k dropped, the new round gets weight
``lr / (k + lr)`` and the dropped ones are scaled by ``k / (k + lr)`` ("tree"; lr = 1 is the
paper's 1/(k+1), k/(k+1)), or ``lr / (1 + lr)`` and ``1 / (1 + lr)`` ("forest").
``rate_drop = 0`` is MART. Every tree remembers the node each training (and validation) row
falls in, so removing dropped trees costs one gather per dropped tree instead of a re-walk; that
cache is bounded (``cache_budget_bytes``): rounds beyond the budget are re-walked when dropped.

Each round may grow its trees on a Bernoulli row sample (``subsample``) and a feature sample
(``colsample_bytree``), both from their own seeded stream so the drop sequence does not change.
Sample weights multiply gradients and hessians and count towards the minimum leaf size, so integer
weights fit the same model as duplicated rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
from numba import njit

from redundancy.dart.predict import RawPredictor, predict_trees
from redundancy.dart.tree import Tree, TreeLearner, TreeParams
from redundancy.errors import ParameterError


class Loss(Protocol):
    """What the boosting loop needs from a loss."""

    n_outputs: int

    def base_score(self, y: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray: ...
    def grad_hess(self, y: np.ndarray, F: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
    def value(
        self, y: np.ndarray, F: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> float: ...


# Default bound of the per-round node cache (bytes, training and validation together).
CACHE_BUDGET_BYTES = 512 * 2**20


@dataclass(frozen=True)
class DropParams:
    """Dropout settings; the defaults are the paper's binomial-plus-one with tree normalisation."""

    rate_drop: float = 0.1
    one_drop: bool = True
    skip_drop: float = 0.0
    max_drop: int = 0  # 0 = no cap
    normalize_type: Literal["tree", "forest"] = "tree"


@dataclass
class Ensemble:
    """Base score plus weighted rounds of ``n_outputs`` trees each, and how the weights came to be.

    ``dropped[r]``, ``added_weight[r]`` and ``drop_factor[r]`` record round ``r`` of the fit: the
    rounds it dropped, the weight it was added with and the factor the dropped rounds were scaled
    by. Replaying them gives the weights as they were after any round (``weights_after``).
    """

    base_score: np.ndarray
    trees: list[list[Tree]] = field(default_factory=list)
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0))
    dropped: list[np.ndarray] | None = field(default_factory=list)
    added_weight: np.ndarray | None = field(default_factory=lambda: np.zeros(0))
    drop_factor: np.ndarray | None = field(default_factory=lambda: np.zeros(0))

    @property
    def n_outputs(self) -> int:
        return len(self.base_score)

    def __getstate__(self) -> dict:
        """Pickle without the prediction cache (its key holds ``id()``s of this process)."""
        return {k: v for k, v in self.__dict__.items() if k != "_predictor"}

    @property
    def has_drop_log(self) -> bool:
        """Whether the fit's drop record is known (models saved before format /3 lack it)."""
        return self.dropped is not None and len(self.dropped) == len(self.trees)

    def predict_margin(self, xb: np.ndarray, n_rounds: int | None = None) -> np.ndarray:
        """Margins (n_samples, n_outputs) of the first ``n_rounds`` rounds on binned ``xb``."""
        rounds = self.trees[: len(self.trees) if n_rounds is None else n_rounds]
        flat = [t for r in rounds for t in r]
        w = np.repeat(self.weights[: len(rounds)], self.n_outputs)
        klass = np.tile(np.arange(self.n_outputs), len(rounds))
        return predict_trees(xb, flat, w, klass, self.n_outputs) + self.base_score

    def predictor(self, edges: list[np.ndarray]) -> RawPredictor:
        """Every tree flattened for prediction on raw feature values (bin ``edges`` per feature).

        Built once and reused while the trees, the weights' values and the edges stay the same
        (the weights are compared by value: DART rescales them in place).
        """
        key = (self.weights.tobytes(), len(self.trees), id(edges), len(edges))
        cached = self.__dict__.get("_predictor")
        if cached is None or cached[0] != key:
            flat = [t for r in self.trees for t in r]
            w = np.repeat(self.weights, self.n_outputs)
            klass = np.tile(np.arange(self.n_outputs), len(self.trees))
            cached = (key, RawPredictor(flat, w, klass, edges))
            self.__dict__["_predictor"] = cached
        return cached[1]

    def raw_round_outputs(self, X: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
        """Unweighted output of each round on raw ``X``, (n_samples, n_rounds, n_outputs)."""
        flat = [t for r in self.trees for t in r]
        n_cols = len(self.trees) * self.n_outputs
        cols = np.arange(n_cols)
        out = RawPredictor(flat, np.ones(n_cols), cols, edges).predict(X, n_cols)
        return out.reshape(X.shape[0], len(self.trees), self.n_outputs)

    def weights_after(self, r: int) -> np.ndarray:
        """The weights of rounds 0..r as they were right after round ``r`` was added."""
        if not self.has_drop_log:
            raise ParameterError(
                "this model has no record of its drops (saved before format redundancy.dart/3); "
                "only round_weights='current' is available"
            )
        w: list[float] = []
        for t in range(r + 1):
            for d in self.dropped[t]:
                w[d] *= self.drop_factor[t]
            w.append(float(self.added_weight[t]))
        return np.asarray(w)

    def staged_margins(
        self, X: np.ndarray, edges: list[np.ndarray], round_weights: str = "as_added"
    ) -> Iterator[np.ndarray]:
        """Margins after each round on raw ``X``: with the weights as they were when the round was
        added (``"as_added"``: the model as it stood during the fit) or the final ones
        (``"current"``: the first r rounds of the final model)."""
        outputs = self.raw_round_outputs(X, edges)
        F = np.tile(self.base_score, (X.shape[0], 1))
        if round_weights == "current":
            for r in range(len(self.trees)):
                F = F + self.weights[r] * outputs[:, r]
                yield F
            return
        if not self.has_drop_log:
            self.weights_after(0)  # raises the explanation
        w: list[float] = []
        for t in range(len(self.trees)):
            dropped = self.dropped[t]
            factor = self.drop_factor[t]
            if len(dropped):
                dropped_sum = np.einsum("r,nrk->nk", np.asarray(w)[dropped], outputs[:, dropped])
                F = F + (factor - 1.0) * dropped_sum
            for d in dropped:
                w[d] *= factor
            w.append(float(self.added_weight[t]))
            F = F + w[t] * outputs[:, t]
            yield F

    def round_outputs(self, xb: np.ndarray) -> np.ndarray:
        """Weighted output of each round on each sample, (n_rounds, n_samples, n_outputs)."""
        out = np.empty((len(self.trees), xb.shape[1], self.n_outputs))
        for r, trees in enumerate(self.trees):
            for k, tree in enumerate(trees):
                out[r, :, k] = self.weights[r] * tree.value[tree.apply(xb)]
        return out


@dataclass
class History:
    """Per-round record of a fit."""

    train_loss: list[float] = field(default_factory=list)
    valid_loss: list[float] = field(default_factory=list)
    n_dropped: list[int] = field(default_factory=list)
    best_round: int | None = None


@dataclass
class _Cache:
    """Node index of every row in the trees of each round (while the budget lasts), plus the
    running margin. Rounds past the budget keep ``None`` and are re-walked when dropped."""

    xb: np.ndarray
    F: np.ndarray
    nodes: list[np.ndarray | None] = field(default_factory=list)  # (n_outputs, n) uint16

    def dropped_sum(self, ens: Ensemble, dropped: np.ndarray) -> np.ndarray | None:
        """Summed output of the ``dropped`` rounds on every cached row (``None`` if none)."""
        if len(dropped) == 0:
            return None
        D = np.zeros_like(self.F)
        for d in dropped:
            nodes = self.nodes[d]
            for k, tree in enumerate(ens.trees[d]):
                at = tree.apply(self.xb) if nodes is None else nodes[k]
                D[:, k] += ens.weights[d] * tree.value[at]
        return D


@njit(cache=True, nogil=True)
def _add_leaf_values(F, k, weight, value, node_of_row):
    """``F[:, k] += weight * value[node_of_row]`` in one pass (no temporaries)."""
    column = F[:, k]
    for i in range(len(node_of_row)):
        column[i] += weight * value[np.uint64(node_of_row[i])]


class DropSchedule:
    """Chooses which existing rounds to drop."""

    def __init__(self, params: DropParams, rng: np.random.Generator) -> None:
        self.p = params
        self.rng = rng

    def choose(self, n_rounds: int) -> np.ndarray:
        p = self.p
        if n_rounds == 0 or p.rate_drop <= 0.0:
            return np.zeros(0, dtype=np.int64)
        if p.skip_drop > 0.0 and self.rng.random() < p.skip_drop:
            return np.zeros(0, dtype=np.int64)
        dropped = np.flatnonzero(self.rng.random(n_rounds) < p.rate_drop)
        if len(dropped) == 0 and p.one_drop:
            dropped = np.array([self.rng.integers(n_rounds)])
        if 0 < p.max_drop < len(dropped):
            dropped = np.sort(self.rng.choice(dropped, p.max_drop, replace=False))
        return dropped.astype(np.int64)


def normalisation(k: int, lr: float, kind: str) -> tuple[float, float]:
    """(weight of the new round, factor for the dropped rounds) when ``k`` rounds were dropped."""
    if k == 0:
        return lr, 1.0
    if kind == "forest":
        return lr / (1.0 + lr), 1.0 / (1.0 + lr)
    return lr / (k + lr), k / (k + lr)


@dataclass(frozen=True)
class SampleParams:
    """Per-round sampling: Bernoulli row fraction and feature fraction (1.0 = no sampling)."""

    subsample: float = 1.0
    colsample_bytree: float = 1.0


def boost(
    xb: np.ndarray,
    n_bins: np.ndarray,
    y: np.ndarray,
    loss: Loss,
    *,
    n_estimators: int,
    learning_rate: float,
    tree_params: TreeParams,
    drop: DropParams,
    seed: int,
    valid: tuple[np.ndarray, np.ndarray, Loss] | None = None,
    early_stopping_rounds: int | None = None,
    record_train_loss: bool = False,
    sample_weight: np.ndarray | None = None,
    sampling: SampleParams = SampleParams(),
    cache_budget_bytes: int = CACHE_BUDGET_BYTES,
    valid_weight: np.ndarray | None = None,
) -> tuple[Ensemble, History]:
    """Fit ``n_estimators`` rounds on binned ``xb`` (n_features, n); return the model and history.

    With ``valid`` and ``early_stopping_rounds`` the fit stops after that many rounds without a
    better validation loss and returns the model exactly as it was at the best round: the later
    rounds are cut and the earlier rounds' weights restored from a snapshot (DART rescales them).
    ``valid_weight`` weights the validation rows in its loss (unweighted by default).
    """
    n_features, n = xb.shape
    w = None if sample_weight is None else np.ascontiguousarray(sample_weight, dtype=np.float64)
    ens = Ensemble(base_score=loss.base_score(y, w))
    learner = TreeLearner(xb, n_bins, tree_params)
    schedule = DropSchedule(drop, np.random.default_rng(seed))
    sampler = np.random.default_rng([seed, 1])
    train = _Cache(xb, np.tile(ens.base_score, (n, 1)))
    vcache = None
    if valid is not None:
        vcache = _Cache(valid[0], np.tile(ens.base_score, (valid[0].shape[1], 1)))
    round_bytes = 2 * ens.n_outputs * (n + (0 if valid is None else valid[0].shape[1]))
    cached_rounds = cache_budget_bytes // max(round_bytes, 1)
    n_sampled_features = max(1, round(sampling.colsample_bytree * n_features))
    hist = History()
    weights: list[float] = []
    added: list[float] = []
    factors: list[float] = []
    best, snapshot = np.inf, np.zeros(0)
    for r in range(n_estimators):
        ens.weights = np.asarray(weights)
        dropped = schedule.choose(r)
        D = train.dropped_sum(ens, dropped)
        g, h = loss.grad_hess(y, train.F if D is None else train.F - D)
        if w is not None:
            g, h = g * w[:, None], h * w[:, None]
        rows = features = None
        if sampling.subsample < 1.0:
            rows = np.flatnonzero(sampler.random(n) < sampling.subsample)
        if n_sampled_features < n_features:
            features = np.sort(sampler.choice(n_features, n_sampled_features, replace=False))
        round_trees, round_nodes = [], []
        for k in range(ens.n_outputs):
            tree, nodes = learner.fit(g[:, k], h[:, k], w, rows, features)
            round_trees.append(tree)
            round_nodes.append(nodes)
        new_w, factor = normalisation(len(dropped), learning_rate, drop.normalize_type)
        for cache, Dc, nodes in _caches(train, D, round_nodes, vcache, ens, dropped, round_trees):
            if Dc is None:  # nothing dropped: add the new trees in place
                for k, (tree, at) in enumerate(zip(round_trees, nodes, strict=True)):
                    _add_leaf_values(cache.F, k, new_w, tree.value, at)
            else:
                C = np.stack([t.value[n] for t, n in zip(round_trees, nodes, strict=True)], axis=1)
                cache.F += (factor - 1.0) * Dc + new_w * C
            cache.nodes.append(np.stack(nodes) if r < cached_rounds else None)
        for d in dropped:
            weights[d] *= factor
        weights.append(new_w)
        added.append(new_w)
        factors.append(factor)
        ens.dropped.append(dropped)
        ens.trees.append(round_trees)
        hist.n_dropped.append(len(dropped))
        if record_train_loss:
            hist.train_loss.append(loss.value(y, train.F, w))
        if vcache is not None and valid is not None:
            v = valid[2].value(valid[1], vcache.F, valid_weight)
            hist.valid_loss.append(v)
            if v < best:
                best, hist.best_round, snapshot = v, r, np.asarray(weights)
            elif early_stopping_rounds and r - (hist.best_round or 0) >= early_stopping_rounds:
                break
    ens.weights = np.asarray(weights)
    ens.added_weight = np.asarray(added)
    ens.drop_factor = np.asarray(factors)
    if early_stopping_rounds and hist.best_round is not None:
        keep = hist.best_round + 1
        ens.trees = ens.trees[:keep]
        ens.weights = snapshot
        ens.dropped = ens.dropped[:keep]
        ens.added_weight = ens.added_weight[:keep]
        ens.drop_factor = ens.drop_factor[:keep]
    return ens, hist


def _caches(train, D, nodes, vcache, ens, dropped, trees):
    """(cache, dropped sum, new trees' nodes) for the training cache and the validation cache."""
    yield train, D, nodes
    if vcache is not None:
        yield vcache, vcache.dropped_sum(ens, dropped), [t.apply(vcache.xb) for t in trees]
