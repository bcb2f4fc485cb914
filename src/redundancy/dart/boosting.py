"""The boosting loop: MART and DART (Rashmi & Gilad-Bachrach, AISTATS 2015).

Each round DART drops every existing round independently with probability ``rate_drop`` (one at
random if none was hit: "binomial-plus-one"), fits the new trees to the loss gradient at the
ensemble without the dropped ones, then normalises: with k dropped, the new round gets weight
``lr / (k + lr)`` and the dropped ones are scaled by ``k / (k + lr)`` ("tree"; lr = 1 is the
paper's 1/(k+1), k/(k+1)), or ``lr / (1 + lr)`` and ``1 / (1 + lr)`` ("forest").
``rate_drop = 0`` is MART. Every tree remembers the node each training (and validation) row
falls in, so removing dropped trees costs one gather per dropped tree instead of a re-walk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from redundancy.dart.tree import Tree, TreeLearner, TreeParams, predict_trees


class Loss(Protocol):
    """What the boosting loop needs from a loss."""

    n_outputs: int

    def base_score(self, y: np.ndarray) -> np.ndarray: ...
    def grad_hess(self, y: np.ndarray, F: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
    def value(self, y: np.ndarray, F: np.ndarray) -> float: ...


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
    """Base score plus weighted rounds of ``n_outputs`` trees each."""

    base_score: np.ndarray
    trees: list[list[Tree]] = field(default_factory=list)
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def n_outputs(self) -> int:
        return len(self.base_score)

    def predict_margin(self, xb: np.ndarray, n_rounds: int | None = None) -> np.ndarray:
        """Margins (n_samples, n_outputs) of the first ``n_rounds`` rounds (all by default)."""
        rounds = self.trees[: len(self.trees) if n_rounds is None else n_rounds]
        flat = [t for r in rounds for t in r]
        w = np.repeat(self.weights[: len(rounds)], self.n_outputs)
        klass = np.tile(np.arange(self.n_outputs), len(rounds))
        return predict_trees(xb, flat, w, klass, self.n_outputs) + self.base_score

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
    """Node index of every row in every tree, plus the running margin."""

    xb: np.ndarray
    F: np.ndarray
    nodes: list[np.ndarray] = field(default_factory=list)  # one (n_outputs, n) uint16 per round

    def dropped_sum(self, ens: Ensemble, dropped: np.ndarray) -> np.ndarray:
        D = np.zeros_like(self.F)
        for d in dropped:
            for k, tree in enumerate(ens.trees[d]):
                D[:, k] += ens.weights[d] * tree.value[self.nodes[d][k]]
        return D


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
) -> tuple[Ensemble, History]:
    """Fit ``n_estimators`` rounds on binned ``xb`` (n_features, n); return the model and history.

    With ``valid`` and ``early_stopping_rounds`` the fit stops after that many rounds without a
    better validation loss and returns the model exactly as it was at the best round: the later
    rounds are cut and the earlier rounds' weights restored from a snapshot (DART rescales them).
    """
    ens = Ensemble(base_score=loss.base_score(y))
    learner = TreeLearner(xb, n_bins, tree_params)
    schedule = DropSchedule(drop, np.random.default_rng(seed))
    train = _Cache(xb, np.tile(ens.base_score, (xb.shape[1], 1)))
    vcache = None
    if valid is not None:
        vcache = _Cache(valid[0], np.tile(ens.base_score, (valid[0].shape[1], 1)))
    hist = History()
    weights: list[float] = []
    best, snapshot = np.inf, np.zeros(0)
    for r in range(n_estimators):
        ens.weights = np.asarray(weights)
        dropped = schedule.choose(r)
        D = train.dropped_sum(ens, dropped)
        g, h = loss.grad_hess(y, train.F - D)
        round_trees, round_nodes = [], []
        for k in range(ens.n_outputs):
            tree, nodes = learner.fit(g[:, k], h[:, k])
            round_trees.append(tree)
            round_nodes.append(nodes)
        new_w, factor = normalisation(len(dropped), learning_rate, drop.normalize_type)
        for cache, Dc, nodes in _caches(train, D, round_nodes, vcache, ens, dropped, round_trees):
            C = np.stack([t.value[n] for t, n in zip(round_trees, nodes, strict=True)], axis=1)
            cache.F += (factor - 1.0) * Dc + new_w * C
            cache.nodes.append(np.stack(nodes))
        for d in dropped:
            weights[d] *= factor
        weights.append(new_w)
        ens.trees.append(round_trees)
        hist.n_dropped.append(len(dropped))
        if record_train_loss:
            hist.train_loss.append(loss.value(y, train.F))
        if vcache is not None and valid is not None:
            v = valid[2].value(valid[1], vcache.F)
            hist.valid_loss.append(v)
            if v < best:
                best, hist.best_round, snapshot = v, r, np.asarray(weights)
            elif early_stopping_rounds and r - (hist.best_round or 0) >= early_stopping_rounds:
                break
    ens.weights = np.asarray(weights)
    if early_stopping_rounds and hist.best_round is not None:
        ens.trees = ens.trees[: hist.best_round + 1]
        ens.weights = snapshot
    return ens, hist


def _caches(train, D, nodes, vcache, ens, dropped, trees):
    """(cache, dropped sum, new trees' nodes) for the training cache and the validation cache."""
    yield train, D, nodes
    if vcache is not None:
        yield vcache, vcache.dropped_sum(ens, dropped), [t.apply(vcache.xb) for t in trees]
