"""scikit-learn estimators: DARTRegressor, DARTClassifier and DARTRanker."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from redundancy.dart.binning import BinMapper
from redundancy.dart.boosting import DropParams, Ensemble, History, boost
from redundancy.dart.losses import LambdaRank, Logistic, Softmax, SquaredError, ndcg, softmax
from redundancy.dart.tree import TreeParams
from redundancy.errors import ParameterError


def _check_float(name: str, value: float, low: float, high: float | None = None) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)
    if not ok or value < low or (high is not None and value > high):
        allowed = f"{low}..{high}" if high is not None else f">= {low}"
        raise ParameterError(f"{name}={value!r} is out of range (allowed: {allowed})")
    return float(value)


def _check_int(name: str, value: int, low: int, high: int | None = None) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool):
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        allowed = f"{low}..{high}" if high is not None else f">= {low}"
        raise ParameterError(f"{name}={value} is out of range (allowed: {allowed})")
    return int(value)


class _DARTBase(BaseEstimator):
    """Shared parameters and fitting; subclasses choose the loss and the output transform."""

    def __init__(
        self,
        n_estimators: int = 100,
        learning_rate: float = 0.1,
        max_leaves: int = 31,
        max_depth: int = 0,
        min_samples_leaf: int = 10,
        min_child_weight: float = 1e-3,
        reg_lambda: float = 1.0,
        min_split_gain: float = 0.0,
        max_bins: int = 255,
        rate_drop: float = 0.1,
        one_drop: bool = True,
        skip_drop: float = 0.0,
        max_drop: int = 0,
        normalize_type: str = "tree",
        early_stopping_rounds: int | None = None,
        validation_fraction: float = 0.1,
        random_state: int | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_leaves = max_leaves
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.min_child_weight = min_child_weight
        self.reg_lambda = reg_lambda
        self.min_split_gain = min_split_gain
        self.max_bins = max_bins
        self.rate_drop = rate_drop
        self.one_drop = one_drop
        self.skip_drop = skip_drop
        self.max_drop = max_drop
        self.normalize_type = normalize_type
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def _settings(self) -> tuple[TreeParams, DropParams]:
        _check_int("n_estimators", self.n_estimators, 1, 100_000)
        _check_float("learning_rate", self.learning_rate, 1e-6, 1.0)
        _check_int("max_bins", self.max_bins, 2, 255)
        _check_float("validation_fraction", self.validation_fraction, 0.01, 0.9)
        if self.early_stopping_rounds is not None:
            _check_int("early_stopping_rounds", self.early_stopping_rounds, 1)
        if self.normalize_type not in ("tree", "forest"):
            raise ParameterError(
                f"normalize_type={self.normalize_type!r} is not allowed (use 'tree' or 'forest')"
            )
        tree = TreeParams(
            max_leaves=_check_int("max_leaves", self.max_leaves, 2, 255),
            max_depth=_check_int("max_depth", self.max_depth, 0, 64),
            min_samples_leaf=_check_int("min_samples_leaf", self.min_samples_leaf, 1),
            min_child_weight=_check_float("min_child_weight", self.min_child_weight, 0.0),
            reg_lambda=_check_float("reg_lambda", self.reg_lambda, 0.0),
            min_split_gain=_check_float("min_split_gain", self.min_split_gain, 0.0),
        )
        drop = DropParams(
            rate_drop=_check_float("rate_drop", self.rate_drop, 0.0, 1.0),
            one_drop=bool(self.one_drop),
            skip_drop=_check_float("skip_drop", self.skip_drop, 0.0, 1.0),
            max_drop=_check_int("max_drop", self.max_drop, 0),
            normalize_type=self.normalize_type,
        )
        return tree, drop

    def _validate(self, X, y="no_validation", reset: bool = True, **kwargs):
        """sklearn's input validation, with its errors re-raised as ParameterError."""
        try:
            return validate_data(self, X, y, reset=reset, dtype=np.float64, **kwargs)
        except ValueError as exc:
            raise ParameterError(str(exc)) from exc

    def _fit_ensemble(self, X, y, loss, valid_loss_for, eval_set, stratify=None):
        tree, drop = self._settings()
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        Xv = yv = None
        if eval_set is not None:
            Xv, yv = eval_set
        elif self.early_stopping_rounds is not None:
            X, Xv, y, yv = train_test_split(
                X, y, test_size=self.validation_fraction, random_state=seed, stratify=stratify
            )
        self.binner_ = BinMapper(self.max_bins).fit(X, seed=seed)
        valid = None
        if Xv is not None:
            valid = (self.binner_.transform(Xv), yv, valid_loss_for)
        ens, hist = boost(
            self.binner_.transform(X),
            self.binner_.n_bins,
            y,
            loss,
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            tree_params=tree,
            drop=drop,
            seed=seed,
            valid=valid,
            early_stopping_rounds=self.early_stopping_rounds,
        )
        self.ensemble_: Ensemble = ens
        self.history_: History = hist
        self.n_estimators_ = len(ens.trees)
        return self

    def _margin(self, X) -> np.ndarray:
        check_is_fitted(self, "ensemble_")
        X = self._validate(X, reset=False)
        return self.ensemble_.predict_margin(self.binner_.transform(X))

    @property
    def feature_importances_(self) -> np.ndarray:
        """Total split gain per feature, each round weighted by its final weight; sums to 1."""
        check_is_fitted(self, "ensemble_")
        imp = np.zeros(self.n_features_in_)
        for w, trees in zip(self.ensemble_.weights, self.ensemble_.trees, strict=True):
            for t in trees:
                inner = t.left != -1
                np.add.at(imp, t.feature[inner], abs(w) * t.gain[inner])
        total = imp.sum()
        return imp / total if total > 0 else imp


class DARTRegressor(RegressorMixin, _DARTBase):
    """Gradient-boosted trees with dropout for squared-error regression."""

    def fit(self, X, y, eval_set: tuple | None = None) -> DARTRegressor:
        """Fit on (X, y); ``eval_set=(X_val, y_val)`` enables validation/early stopping."""
        X, y = self._validate(X, y, y_numeric=True)
        if eval_set is not None:
            eval_set = self._validate(*eval_set, reset=False, y_numeric=True)
        return self._fit_ensemble(X, y, SquaredError(), SquaredError(), eval_set)

    def predict(self, X) -> np.ndarray:
        """Predicted targets."""
        return self._margin(X)[:, 0]


class DARTClassifier(ClassifierMixin, _DARTBase):
    """Gradient-boosted trees with dropout: logistic loss for two classes, softmax for more."""

    def fit(self, X, y, eval_set: tuple | None = None) -> DARTClassifier:
        """Fit on (X, y); ``eval_set=(X_val, y_val)`` enables validation/early stopping."""
        X, y = self._validate(X, y)
        try:
            check_classification_targets(y)
        except ValueError as exc:
            raise ParameterError(str(exc)) from exc
        self.classes_, yi = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ParameterError("y has only one class present; a classifier needs at least 2")
        loss = Logistic() if len(self.classes_) == 2 else Softmax(len(self.classes_))
        if eval_set is not None:
            Xv, yv = self._validate(*eval_set, reset=False)
            unknown = np.setdiff1d(yv, self.classes_)
            if len(unknown):
                raise ParameterError(f"eval_set has classes not seen in y: {unknown[:5]}")
            eval_set = (Xv, np.searchsorted(self.classes_, yv))
        stratify = yi if np.bincount(yi).min() >= 2 else None
        return self._fit_ensemble(X, yi.astype(np.float64), loss, loss, eval_set, stratify)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        F = self._margin(X)
        if F.shape[1] == 1:
            p = 1.0 / (1.0 + np.exp(-F[:, 0]))
            return np.column_stack([1.0 - p, p])
        return softmax(F)

    def predict(self, X) -> np.ndarray:
        """Most probable class."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class DARTRanker(_DARTBase):
    """LambdaRank (NDCG) with dropout; rows of one query are consecutive, ``group`` gives sizes."""

    def fit(self, X, y, group, eval_set: tuple | None = None) -> DARTRanker:
        """Fit on (X, relevance y, group sizes); ``eval_set=(X_val, y_val, group_val)``."""
        X, y = self._validate(X, y, y_numeric=True)
        if np.any(y < 0):
            raise ParameterError("relevance labels y must be >= 0")
        loss = LambdaRank(group)
        if loss.ptr[-1] != len(y):
            raise ParameterError(f"group sizes sum to {loss.ptr[-1]}, but y has {len(y)} rows")
        valid_loss, es = loss, None
        if eval_set is not None:
            Xv, yv = self._validate(eval_set[0], eval_set[1], reset=False, y_numeric=True)
            valid_loss = LambdaRank(eval_set[2])
            if valid_loss.ptr[-1] != len(yv):
                raise ParameterError("eval_set group sizes do not sum to its number of rows")
            es = (Xv, yv)
        elif self.early_stopping_rounds is not None:
            raise ParameterError("early stopping for DARTRanker needs eval_set=(X, y, group)")
        return self._fit_ensemble(X, y, loss, valid_loss, es)

    def predict(self, X) -> np.ndarray:
        """Ranking scores (higher ranks first)."""
        return self._margin(X)[:, 0]

    def score(self, X, y, group) -> float:
        """Mean NDCG over the query groups."""
        return ndcg(np.asarray(y, dtype=np.float64), self.predict(X), LambdaRank(group).ptr)
