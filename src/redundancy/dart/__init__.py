"""DART: gradient-boosted trees with dropout (Rashmi & Gilad-Bachrach, AISTATS 2015).

Our own numba histogram tree learner, MART/DART boosting with a per-tree prediction cache,
squared/logistic/softmax/LambdaRank losses, scikit-learn estimators and JSON persistence.
"""

from redundancy.dart.estimators import DARTClassifier, DARTRanker, DARTRegressor
from redundancy.dart.persist import load, save

__all__ = ["DARTClassifier", "DARTRanker", "DARTRegressor", "load", "save"]
