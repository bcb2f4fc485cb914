"""scikit-learn estimators: DARTRegressor, DARTClassifier and DARTRanker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numba
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from redundancy.dart.binning import BinMapper
from redundancy.dart.boosting import DropParams, Ensemble, History, SampleParams, boost
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


def _check_n_jobs(n_jobs: int | None) -> int | None:
    """``n_jobs`` as given if it is None, -1 or a positive integer; ParameterError otherwise."""
    ok = n_jobs is None or (
        isinstance(n_jobs, int | np.integer)
        and not isinstance(n_jobs, bool)
        and (n_jobs == -1 or n_jobs >= 1)
    )
    if not ok:
        raise ParameterError(f"n_jobs={n_jobs!r} is not allowed (use None, -1 or an integer >= 1)")
    return None if n_jobs is None else int(n_jobs)


@contextmanager
def _numba_threads(n_jobs: int | None) -> Iterator[None]:
    """Run the block on the thread count ``n_jobs`` asks for; numba's count is restored after.

    None leaves numba's current count; -1 is all of numba's threads (``NUMBA_NUM_THREADS``); a
    positive count is capped at that.
    """
    n_jobs = _check_n_jobs(n_jobs)
    if n_jobs is None:
        yield
        return
    threads = numba.config.NUMBA_NUM_THREADS
    if n_jobs != -1:
        threads = min(n_jobs, threads)
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def _each_step_on_threads(stages: Iterator[np.ndarray], n_jobs: int | None) -> Iterator[np.ndarray]:
    """Advance ``stages`` on ``n_jobs`` threads, giving numba its own count back between steps."""
    while True:
        with _numba_threads(n_jobs):
            stage = next(stages, None)
        if stage is None:
            return
        yield stage


def _group_weights_per_row(
    sample_weight, ptr: np.ndarray, name: str = "sample_weight"
) -> np.ndarray | None:
    """Checked per-group weights repeated for each row of their group (None: unweighted)."""
    if sample_weight is None:
        return None
    n_groups = len(ptr) - 1
    try:
        weights = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{name} must be numbers, one per query group: {exc}") from exc
    if weights.shape != (n_groups,):
        raise ParameterError(
            f"{name} has shape {weights.shape}, but a ranker takes one weight per query "
            f"group: shape ({n_groups},)"
        )
    bad = ~np.isfinite(weights) | (weights < 0)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ParameterError(
            f"{name}[{first}]={float(weights[first])} is not allowed (use finite weights >= 0)"
        )
    if weights.sum() <= 0:
        raise ParameterError(f"{name} is all 0: at least one query group needs weight > 0")
    return np.repeat(weights, np.diff(ptr))


class _DARTBase(BaseEstimator):
    """Shared parameters and fitting; subclasses choose the loss and the output transform.

    The constructor's parameters are documented on each estimator (DARTRegressor, ...).
    """

    def __init__(
        self,
        n_estimators: int = 100,
        learning_rate: float = 0.3,
        max_leaves: int = 31,
        max_depth: int = 0,
        min_samples_leaf: int = 10,
        min_child_weight: float = 1e-3,
        reg_lambda: float = 1.0,
        min_split_gain: float = 0.0,
        max_bins: int = 255,
        rate_drop: float = 0.1,
        one_drop: bool = True,
        skip_drop: float = 0.5,
        max_drop: int = 0,
        normalize_type: str = "tree",
        early_stopping_rounds: int | None = None,
        validation_fraction: float = 0.1,
        random_state: int | None = None,
        subsample: float = 1.0,
        colsample_bytree: float = 1.0,
        grow_policy: str = "lossguide",
        n_jobs: int | None = None,
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
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.grow_policy = grow_policy
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def _settings(self) -> tuple[TreeParams, DropParams, SampleParams]:
        _check_int("n_estimators", self.n_estimators, 1, 100_000)
        _check_float("learning_rate", self.learning_rate, 1e-6, 1.0)
        _check_int("max_bins", self.max_bins, 2, 255)
        _check_float("validation_fraction", self.validation_fraction, 0.01, 0.9)
        _check_n_jobs(self.n_jobs)
        if self.early_stopping_rounds is not None:
            _check_int("early_stopping_rounds", self.early_stopping_rounds, 1)
        if self.normalize_type not in ("tree", "forest"):
            raise ParameterError(
                f"normalize_type={self.normalize_type!r} is not allowed (use 'tree' or 'forest')"
            )
        if self.grow_policy not in ("lossguide", "depthwise"):
            raise ParameterError(
                f"grow_policy={self.grow_policy!r} is not allowed (use 'lossguide' or 'depthwise')"
            )
        sampling = SampleParams(
            subsample=_check_float("subsample", self.subsample, 1e-6, 1.0),
            colsample_bytree=_check_float("colsample_bytree", self.colsample_bytree, 1e-6, 1.0),
        )
        tree = TreeParams(
            max_leaves=_check_int("max_leaves", self.max_leaves, 2, 255),
            max_depth=_check_int("max_depth", self.max_depth, 0, 64),
            min_samples_leaf=_check_int("min_samples_leaf", self.min_samples_leaf, 1),
            min_child_weight=_check_float("min_child_weight", self.min_child_weight, 0.0),
            reg_lambda=_check_float("reg_lambda", self.reg_lambda, 0.0),
            min_split_gain=_check_float("min_split_gain", self.min_split_gain, 0.0),
            depthwise=self.grow_policy == "depthwise",
        )
        drop = DropParams(
            rate_drop=_check_float("rate_drop", self.rate_drop, 0.0, 1.0),
            one_drop=bool(self.one_drop),
            skip_drop=_check_float("skip_drop", self.skip_drop, 0.0, 1.0),
            max_drop=_check_int("max_drop", self.max_drop, 0),
            normalize_type=self.normalize_type,
        )
        return tree, drop, sampling

    def _validate(self, X, y="no_validation", reset: bool = True, **kwargs):
        """sklearn's input validation, with its errors re-raised as ParameterError."""
        try:
            return validate_data(
                self,
                X,
                y,
                reset=reset,
                dtype=np.float64,
                ensure_all_finite="allow-nan",
                **kwargs,
            )
        except ValueError as exc:
            raise ParameterError(str(exc)) from exc

    @staticmethod
    def _weights(sample_weight, X, name: str = "sample_weight") -> np.ndarray | None:
        """Checked sample weights (finite, >= 0, not all 0), or None for unweighted."""
        if sample_weight is None:
            return None
        try:
            w = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        except ValueError as exc:
            raise ParameterError(f"{name}: {exc}") from exc
        if not np.isfinite(w).all() or w.sum() <= 0:
            raise ParameterError(f"{name} must be finite, >= 0 and not all 0")
        return w

    def _fit_ensemble(self, X, y, loss, valid_loss_for, eval_set, stratify=None, weight=None):
        """Bin X, then boost; all of it on the threads ``n_jobs`` asks for. ``eval_set`` is
        (X, y, weights or None)."""
        with _numba_threads(self.n_jobs):
            return self._bin_and_boost(X, y, loss, valid_loss_for, eval_set, stratify, weight)

    def _bin_and_boost(self, X, y, loss, valid_loss_for, eval_set, stratify, weight):
        tree, drop, sampling = self._settings()
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        Xv = yv = wv = None
        if eval_set is not None:
            Xv, yv, wv = eval_set
        elif self.early_stopping_rounds is not None:
            split = (X, y) if weight is None else (X, y, weight)
            parts = train_test_split(
                *split, test_size=self.validation_fraction, random_state=seed, stratify=stratify
            )
            X, Xv, y, yv = parts[:4]
            if weight is not None:  # the held-out rows keep their weights for the loss
                weight, wv = parts[4], parts[5]
        self.binner_ = BinMapper(self.max_bins).fit(X, seed=seed, sample_weight=weight)
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
            sample_weight=weight,
            valid_weight=wv,
            sampling=sampling,
        )
        self.ensemble_: Ensemble = ens
        self.history_: History = hist
        self.n_estimators_ = len(ens.trees)
        return self

    def _margin(self, X) -> np.ndarray:
        check_is_fitted(self, "ensemble_")
        X = self._validate(X, reset=False)
        ens = self.ensemble_
        with _numba_threads(self.n_jobs):
            margin = ens.predictor(self.binner_.edges).predict(X, ens.n_outputs)
        return margin + ens.base_score

    def _staged_margins(self, X, round_weights: str):
        check_is_fitted(self, "ensemble_")
        if round_weights not in ("as_added", "current"):
            raise ParameterError(
                f"round_weights={round_weights!r} is not allowed (use 'as_added' or 'current')"
            )
        X = self._validate(X, reset=False)
        if round_weights == "as_added" and not self.ensemble_.has_drop_log:
            self.ensemble_.weights_after(0)  # raises the explanation before the generator starts
        stages = self.ensemble_.staged_margins(X, self.binner_.edges, round_weights)
        return _each_step_on_threads(stages, self.n_jobs)

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


_STAGED_DOC = """

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples (NaN allowed: it takes each split's learned default direction).
        round_weights : {"as_added", "current"}, default "as_added"
            ``"as_added"``: after round r, the model exactly as it stood during the fit once
            round r was added (DART later rescales dropped rounds). ``"current"``: the first r
            rounds with their final weights (what slicing a finished model gives).

        Returns
        -------
        Iterator of ndarray
            One array per round; the last stage equals ``predict`` up to rounding.

        Raises
        ------
        ParameterError
            ``round_weights`` is neither, or ``"as_added"`` on a model saved without its drop
            record (format redundancy.dart/1 or /2).
        """


class DARTRegressor(RegressorMixin, _DARTBase):
    """Gradient-boosted trees with dropout for squared-error regression.

    Each round drops a random subset of the earlier rounds (``rate_drop``), fits one tree to the
    residual of the rest, and rescales the new and the dropped rounds (``normalize_type``);
    ``rate_drop=0`` is plain MART.

    Parameters
    ----------
    n_estimators : int, default 100
        Boosting rounds (one tree per output each).
    learning_rate : float, default 0.3
        Shrinkage ``lr``; with dropout the new round gets ``lr / (k + lr)`` (``tree``). 0.3 (as
        XGBoost) with ``skip_drop=0.5`` made DART at least as good as MART on most of the sets
        in ``benchmarks/dart_defaults.py`` (see docs/dart.md); with 0.1 and no skipping DART
        lagged MART at 100 rounds.
    max_leaves, max_depth : int, default 31, 0
        Leaf cap and depth cap (0 = none).
    min_samples_leaf : int, default 10
        Minimum training weight per leaf (rows when unweighted).
    min_child_weight, reg_lambda, min_split_gain : float, default 1e-3, 1.0, 0.0
        Minimum hessian per leaf, L2 on leaf values, minimum gain of a split.
    max_bins : int, default 255
        Bins per feature (missing values get a bin of their own).
    rate_drop : float, default 0.1
        Probability that each earlier round is dropped in a round (0 = MART).
    one_drop : bool, default True
        Drop one random round when none was hit (the paper's binomial-plus-one).
    skip_drop : float, default 0.5
        Probability of a round without dropout (XGBoost's ``skip_drop``).
    max_drop : int, default 0
        Cap on the rounds dropped at once (0 = none).
    normalize_type : {"tree", "forest"}, default "tree"
        New and dropped rounds' weights after a drop of k: ``lr/(k+lr)`` and ``k/(k+lr)``,
        or ``lr/(1+lr)`` and ``1/(1+lr)``.
    early_stopping_rounds : int or None, default None
        Stop after that many rounds without a better validation loss; keep the best round.
    validation_fraction : float, default 0.1
        Held-out share for early stopping when no ``eval_set`` is given.
    random_state : int or None
        Seed of the drops, the samples and the bin sample.
    subsample : float, default 1.0
        Fraction of rows (Bernoulli) each round's trees are grown on.
    colsample_bytree : float, default 1.0
        Fraction of features each round's trees may split on.
    grow_policy : {"lossguide", "depthwise"}, default "lossguide"
        Best-gain leaf first (LightGBM) or level by level (XGBoost); ``max_leaves`` caps both.
    n_jobs : int or None, default None
        Threads for fitting and prediction: None keeps numba's current count
        (``numba.get_num_threads()``), -1 uses all of numba's threads
        (``numba.config.NUMBA_NUM_THREADS``), a positive count uses that many, capped at
        ``NUMBA_NUM_THREADS``. Numba's count is restored after each call. The fitted model and
        its predictions do not depend on it.

    Attributes
    ----------
    ensemble_ : Ensemble
        The fitted rounds: their trees, final weights and drop record.
    history_ : History
        Per-round training (and validation) loss, rounds dropped, best round.
    n_estimators_ : int
        Rounds kept (fewer than ``n_estimators`` after early stopping).
    binner_ : BinMapper
        The per-feature bin edges the trees split on.
    feature_importances_ : ndarray of shape (n_features,)
        Total split gain per feature, each round weighted by its final weight; sums to 1.

    Raises
    ------
    ParameterError
        From ``fit``: a parameter out of its range, or malformed ``X``/``y``/``sample_weight``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); y = X[:, 0] + 0.5 * X[:, 1]
    >>> model = DARTRegressor(n_estimators=20, rate_drop=0.1, random_state=0).fit(X, y)
    >>> model.n_estimators_, model.predict(X[:3]).shape
    (20, (3,))
    >>> bool(model.score(X, y) > 0.9)
    True
    """

    def fit(
        self, X, y, sample_weight=None, eval_set: tuple | None = None, eval_sample_weight=None
    ) -> DARTRegressor:
        """Fit the boosted rounds to (X, y).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training samples (NaN allowed: each split learns a default direction for it).
        y : array-like of shape (n_samples,)
            Targets.
        sample_weight : array-like of shape (n_samples,), optional
            Row weights (finite, >= 0, not all 0); an integer weight acts as that many copies.
        eval_set : tuple (X_val, y_val), optional
            Validation data: its loss is recorded in ``history_`` and drives early stopping.
        eval_sample_weight : array-like of shape (n_val_samples,), optional
            Weights of the ``eval_set`` rows in its loss (as ``sample_weight``); unweighted by
            default. Without ``eval_set``, the rows held out for early stopping keep their
            ``sample_weight``.

        Returns
        -------
        DARTRegressor
            The fitted estimator.

        Raises
        ------
        ParameterError
            A parameter is out of range, or X, y, sample_weight or eval_set is malformed.
        """
        X, y = self._validate(X, y, y_numeric=True)
        weight = self._weights(sample_weight, X)
        if eval_set is not None:
            Xv, yv = self._validate(*eval_set, reset=False, y_numeric=True)
            eval_set = (Xv, yv, self._weights(eval_sample_weight, Xv, "eval_sample_weight"))
        elif eval_sample_weight is not None:
            raise ParameterError("eval_sample_weight is given without eval_set")
        return self._fit_ensemble(X, y, SquaredError(), SquaredError(), eval_set, weight=weight)

    def predict(self, X) -> np.ndarray:
        """Predicted targets."""
        return self._margin(X)[:, 0]

    def staged_predict(self, X, round_weights: str = "as_added") -> Iterator[np.ndarray]:
        """Predicted targets after each round."""
        for F in self._staged_margins(X, round_weights):
            yield F[:, 0]

    staged_predict.__doc__ += _STAGED_DOC


class DARTClassifier(ClassifierMixin, _DARTBase):
    """Gradient-boosted trees with dropout: logistic loss for two classes, softmax for more.

    Labels may be any sortable values; with K > 2 classes each round grows K trees (one per
    class) that are dropped together.

    Parameters
    ----------
    n_estimators : int, default 100
        Boosting rounds (one tree per output each).
    learning_rate : float, default 0.3
        Shrinkage ``lr``; with dropout the new round gets ``lr / (k + lr)`` (``tree``). 0.3 (as
        XGBoost) with ``skip_drop=0.5`` made DART at least as good as MART on most of the sets
        in ``benchmarks/dart_defaults.py`` (see docs/dart.md); with 0.1 and no skipping DART
        lagged MART at 100 rounds.
    max_leaves, max_depth : int, default 31, 0
        Leaf cap and depth cap (0 = none).
    min_samples_leaf : int, default 10
        Minimum training weight per leaf (rows when unweighted).
    min_child_weight, reg_lambda, min_split_gain : float, default 1e-3, 1.0, 0.0
        Minimum hessian per leaf, L2 on leaf values, minimum gain of a split.
    max_bins : int, default 255
        Bins per feature (missing values get a bin of their own).
    rate_drop : float, default 0.1
        Probability that each earlier round is dropped in a round (0 = MART).
    one_drop : bool, default True
        Drop one random round when none was hit (the paper's binomial-plus-one).
    skip_drop : float, default 0.5
        Probability of a round without dropout (XGBoost's ``skip_drop``).
    max_drop : int, default 0
        Cap on the rounds dropped at once (0 = none).
    normalize_type : {"tree", "forest"}, default "tree"
        New and dropped rounds' weights after a drop of k: ``lr/(k+lr)`` and ``k/(k+lr)``,
        or ``lr/(1+lr)`` and ``1/(1+lr)``.
    early_stopping_rounds : int or None, default None
        Stop after that many rounds without a better validation loss; keep the best round.
    validation_fraction : float, default 0.1
        Held-out share for early stopping when no ``eval_set`` is given.
    random_state : int or None
        Seed of the drops, the samples and the bin sample.
    subsample : float, default 1.0
        Fraction of rows (Bernoulli) each round's trees are grown on.
    colsample_bytree : float, default 1.0
        Fraction of features each round's trees may split on.
    grow_policy : {"lossguide", "depthwise"}, default "lossguide"
        Best-gain leaf first (LightGBM) or level by level (XGBoost); ``max_leaves`` caps both.
    n_jobs : int or None, default None
        Threads for fitting and prediction: None keeps numba's current count
        (``numba.get_num_threads()``), -1 uses all of numba's threads
        (``numba.config.NUMBA_NUM_THREADS``), a positive count uses that many, capped at
        ``NUMBA_NUM_THREADS``. Numba's count is restored after each call. The fitted model and
        its predictions do not depend on it.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels seen in ``fit``, sorted; ``predict_proba`` columns follow this order.
    ensemble_ : Ensemble
        The fitted rounds: their trees, final weights and drop record.
    history_ : History
        Per-round training (and validation) loss, rounds dropped, best round.
    n_estimators_ : int
        Rounds kept (fewer than ``n_estimators`` after early stopping).
    binner_ : BinMapper
        The per-feature bin edges the trees split on.
    feature_importances_ : ndarray of shape (n_features,)
        Total split gain per feature, each round weighted by its final weight; sums to 1.

    Raises
    ------
    ParameterError
        From ``fit``: a parameter out of its range, malformed input, fewer than two classes,
        or ``eval_set`` classes not seen in ``y``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); y = np.where(X[:, 0] > 0, "yes", "no")
    >>> model = DARTClassifier(n_estimators=10, random_state=0).fit(X, y)
    >>> model.classes_.tolist(), model.predict_proba(X[:2]).shape
    (['no', 'yes'], (2, 2))
    >>> bool(model.score(X, y) > 0.95)
    True
    """

    def fit(
        self, X, y, sample_weight=None, eval_set: tuple | None = None, eval_sample_weight=None
    ) -> DARTClassifier:
        """Fit the boosted rounds to (X, y).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training samples (NaN allowed: each split learns a default direction for it).
        y : array-like of shape (n_samples,)
            Class labels (at least two classes).
        sample_weight : array-like of shape (n_samples,), optional
            Row weights (finite, >= 0, not all 0); an integer weight acts as that many copies.
        eval_set : tuple (X_val, y_val), optional
            Validation data: its loss is recorded in ``history_`` and drives early stopping.
        eval_sample_weight : array-like of shape (n_val_samples,), optional
            Weights of the ``eval_set`` rows in its loss (as ``sample_weight``); unweighted by
            default. Without ``eval_set``, the rows held out for early stopping keep their
            ``sample_weight``.

        Returns
        -------
        DARTClassifier
            The fitted estimator.

        Raises
        ------
        ParameterError
            A parameter is out of range, the input is malformed, ``y`` has one class, or
            ``eval_set`` has classes not seen in ``y``.
        """
        X, y = self._validate(X, y)
        weight = self._weights(sample_weight, X)
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
            wv = self._weights(eval_sample_weight, Xv, "eval_sample_weight")
            eval_set = (Xv, np.searchsorted(self.classes_, yv), wv)
        elif eval_sample_weight is not None:
            raise ParameterError("eval_sample_weight is given without eval_set")
        stratify = yi if np.bincount(yi).min() >= 2 else None
        return self._fit_ensemble(
            X, yi.astype(np.float64), loss, loss, eval_set, stratify, weight=weight
        )

    @staticmethod
    def _proba(F: np.ndarray) -> np.ndarray:
        if F.shape[1] == 1:
            p = 1.0 / (1.0 + np.exp(-F[:, 0]))
            return np.column_stack([1.0 - p, p])
        return softmax(F)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        return self._proba(self._margin(X))

    def predict(self, X) -> np.ndarray:
        """Most probable class."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def staged_predict_proba(self, X, round_weights: str = "as_added") -> Iterator[np.ndarray]:
        """Class probabilities after each round."""
        for F in self._staged_margins(X, round_weights):
            yield self._proba(F)

    def staged_predict(self, X, round_weights: str = "as_added") -> Iterator[np.ndarray]:
        """Most probable class after each round."""
        for F in self._staged_margins(X, round_weights):
            yield self.classes_[np.argmax(self._proba(F), axis=1)]

    staged_predict_proba.__doc__ += _STAGED_DOC
    staged_predict.__doc__ += _STAGED_DOC


class DARTRanker(_DARTBase):
    """LambdaRank (NDCG) with dropout; rows of one query are consecutive, ``group`` gives sizes.

    ``fit(X, y, group)`` takes relevance labels ``y >= 0`` and the query sizes ``group`` (they
    sum to the number of rows); ``predict`` gives scores to sort each query by and ``score`` the
    mean NDCG. Early stopping needs ``eval_set=(X, y, group)``.

    Parameters
    ----------
    n_estimators : int, default 100
        Boosting rounds (one tree per output each).
    learning_rate : float, default 0.3
        Shrinkage ``lr``; with dropout the new round gets ``lr / (k + lr)`` (``tree``). 0.3 (as
        XGBoost) with ``skip_drop=0.5`` made DART at least as good as MART on most of the sets
        in ``benchmarks/dart_defaults.py`` (see docs/dart.md); with 0.1 and no skipping DART
        lagged MART at 100 rounds.
    max_leaves, max_depth : int, default 31, 0
        Leaf cap and depth cap (0 = none).
    min_samples_leaf : int, default 10
        Minimum training weight per leaf (rows when unweighted).
    min_child_weight, reg_lambda, min_split_gain : float, default 1e-3, 1.0, 0.0
        Minimum hessian per leaf, L2 on leaf values, minimum gain of a split.
    max_bins : int, default 255
        Bins per feature (missing values get a bin of their own).
    rate_drop : float, default 0.1
        Probability that each earlier round is dropped in a round (0 = MART).
    one_drop : bool, default True
        Drop one random round when none was hit (the paper's binomial-plus-one).
    skip_drop : float, default 0.5
        Probability of a round without dropout (XGBoost's ``skip_drop``).
    max_drop : int, default 0
        Cap on the rounds dropped at once (0 = none).
    normalize_type : {"tree", "forest"}, default "tree"
        New and dropped rounds' weights after a drop of k: ``lr/(k+lr)`` and ``k/(k+lr)``,
        or ``lr/(1+lr)`` and ``1/(1+lr)``.
    early_stopping_rounds : int or None, default None
        Stop after that many rounds without a better validation loss; keep the best round.
    validation_fraction : float, default 0.1
        Unused: early stopping of a ranker needs ``eval_set=(X, y, group)``.
    random_state : int or None
        Seed of the drops, the samples and the bin sample.
    subsample : float, default 1.0
        Fraction of rows (Bernoulli) each round's trees are grown on.
    colsample_bytree : float, default 1.0
        Fraction of features each round's trees may split on.
    grow_policy : {"lossguide", "depthwise"}, default "lossguide"
        Best-gain leaf first (LightGBM) or level by level (XGBoost); ``max_leaves`` caps both.
    n_jobs : int or None, default None
        Threads for fitting and prediction: None keeps numba's current count
        (``numba.get_num_threads()``), -1 uses all of numba's threads
        (``numba.config.NUMBA_NUM_THREADS``), a positive count uses that many, capped at
        ``NUMBA_NUM_THREADS``. Numba's count is restored after each call. The fitted model and
        its predictions do not depend on it.

    Attributes
    ----------
    ensemble_ : Ensemble
        The fitted rounds: their trees, final weights and drop record.
    history_ : History
        Per-round training (and validation) loss, rounds dropped, best round.
    n_estimators_ : int
        Rounds kept (fewer than ``n_estimators`` after early stopping).
    binner_ : BinMapper
        The per-feature bin edges the trees split on.
    feature_importances_ : ndarray of shape (n_features,)
        Total split gain per feature, each round weighted by its final weight; sums to 1.

    Raises
    ------
    ParameterError
        From ``fit``: a parameter out of its range, malformed input, negative labels, or group
        sizes that do not sum to the number of rows.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); relevance = (X[:, 0] > 0) + (X[:, 0] > 0.5) * 1.0
    >>> groups = [20] * 10
    >>> model = DARTRanker(n_estimators=10, random_state=0).fit(X, relevance, groups)
    >>> model.predict(X[:20]).shape, bool(model.score(X, relevance, groups) > 0.95)
    ((20,), True)
    """

    def fit(
        self,
        X,
        y,
        group,
        sample_weight=None,
        eval_set: tuple | None = None,
        eval_sample_weight=None,
    ) -> DARTRanker:
        """Fit the boosted rounds to (X, relevance y, group sizes).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training samples, the rows of one query consecutive.
        y : array-like of shape (n_samples,)
            Relevance labels (>= 0; higher is more relevant).
        group : array-like of int
            Query sizes in row order; they sum to ``n_samples``.
        sample_weight : array-like of shape (n_groups,), optional
            One weight per query group, in the order of ``group`` (finite, >= 0, not all 0), as
            XGBoost's ranking weights: a group's gradients and hessians are scaled by it and its
            rows count with it towards ``min_samples_leaf``, so an integer weight acts as that
            many copies of the group and a weight of 0 leaves the group out.
        eval_set : tuple (X_val, y_val, group_val), optional
            Validation queries: their NDCG loss is recorded and drives early stopping (which
            needs them).
        eval_sample_weight : array-like of shape (n_val_groups,), optional
            One weight per ``eval_set`` query group: the validation NDCG is their weighted mean
            (unweighted by default).

        Returns
        -------
        DARTRanker
            The fitted estimator.

        Raises
        ------
        ParameterError
            A parameter is out of range, the input is malformed, a label is negative, group
            sizes do not sum to the rows, ``sample_weight`` is not one finite weight >= 0 per
            group (not all 0), or early stopping is asked for without ``eval_set``.
        """
        X, y = self._validate(X, y, y_numeric=True)
        if np.any(y < 0):
            raise ParameterError("relevance labels y must be >= 0")
        loss = LambdaRank(group)
        if loss.ptr[-1] != len(y):
            raise ParameterError(f"group sizes sum to {loss.ptr[-1]}, but y has {len(y)} rows")
        weight = _group_weights_per_row(sample_weight, loss.ptr)
        valid_loss, es = loss, None
        if eval_set is not None:
            Xv, yv = self._validate(eval_set[0], eval_set[1], reset=False, y_numeric=True)
            valid_loss = LambdaRank(eval_set[2])
            if valid_loss.ptr[-1] != len(yv):
                raise ParameterError("eval_set group sizes do not sum to its number of rows")
            eval_weight = _group_weights_per_row(
                eval_sample_weight, valid_loss.ptr, "eval_sample_weight"
            )
            es = (Xv, yv, eval_weight)
        elif eval_sample_weight is not None:
            raise ParameterError("eval_sample_weight is given without eval_set")
        elif self.early_stopping_rounds is not None:
            raise ParameterError("early stopping for DARTRanker needs eval_set=(X, y, group)")
        return self._fit_ensemble(X, y, loss, valid_loss, es, weight=weight)

    def predict(self, X) -> np.ndarray:
        """Ranking scores (higher ranks first)."""
        return self._margin(X)[:, 0]

    def staged_predict(self, X, round_weights: str = "as_added") -> Iterator[np.ndarray]:
        """Ranking scores after each round."""
        for F in self._staged_margins(X, round_weights):
            yield F[:, 0]

    staged_predict.__doc__ += _STAGED_DOC

    def score(self, X, y, group) -> float:
        """Mean NDCG over the query groups."""
        return ndcg(np.asarray(y, dtype=np.float64), self.predict(X), LambdaRank(group).ptr)
