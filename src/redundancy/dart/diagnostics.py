"""The paper's over-specialization analysis: how much each round changes the predictions.

MART's later trees matter less and less (they over-specialise to a few hard examples); dropout
spreads the contribution over the ensemble. We measure, for each round r of a fitted model, the
mean absolute weighted output ``mean_i |w_r f_r(x_i)|`` over a data set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from redundancy.dart.estimators import _DARTBase


def round_contributions(model: _DARTBase, X: np.ndarray) -> np.ndarray:
    """Mean absolute weighted output of each round of ``model`` on ``X`` (length n_rounds)."""
    X = model._validate(X, reset=False)
    outputs = model.ensemble_.round_outputs(model.binner_.transform(X))
    return np.abs(outputs).mean(axis=(1, 2))


def plot_contributions(curves: dict[str, np.ndarray], path: Path, title: str) -> None:
    """Plot one contribution curve per label on a log scale into the PNG ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, curve in curves.items():
        ax.plot(np.arange(1, len(curve) + 1), np.maximum(curve, 1e-12), label=label)
    ax.set_yscale("log")
    ax.set_xlabel("round")
    ax.set_ylabel("mean |weighted tree output|")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
