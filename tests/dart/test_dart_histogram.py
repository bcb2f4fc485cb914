"""The histogram kernels against numpy's ``bincount``: for any node (a subset of rows in any
order), any feature subset and each gradient layout, every feature's bins hold the summed g, h and
w of the node's rows, missing values in bin 255 and the pad channel 0."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from redundancy.dart.histogram import HIST_BINS, HIST_CHANNELS, MISSING_BIN, _hist_features


@st.composite
def nodes(draw):
    n = draw(st.integers(1, 300))
    n_features = draw(st.integers(1, 9))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_bins = rng.integers(1, 256, n_features)
    xb = np.stack([rng.integers(0, nb, n) for nb in n_bins]).astype(np.uint8)
    xb[rng.random(xb.shape) < 0.1] = MISSING_BIN
    rows = rng.permutation(n)[: draw(st.integers(1, n))].astype(np.uint32)
    if draw(st.booleans()):
        rows.sort()
    features = np.flatnonzero(rng.random(n_features) < 0.7)
    if len(features) == 0:
        features = np.array([n_features - 1])
    channels = draw(st.sampled_from([1, 2, 3]))
    ghw = rng.normal(size=(len(rows), channels))
    if channels == 3:
        ghw[:, 2] = rng.uniform(0.0, 3.0, len(rows))
    return xb, n_bins, rows, features, ghw


@settings(max_examples=60, deadline=None)
@given(nodes())
def test_histograms_equal_bincount(node):
    xb, n_bins, rows, features, ghw = node
    n_features = xb.shape[0]
    channels = ghw.shape[1]
    # start at an offset inside the arrays, as a child node does
    pad = 3
    all_rows = np.concatenate([np.zeros(pad, np.uint32), rows])
    all_ghw = np.concatenate([np.zeros((pad, channels)), ghw])
    hist = np.full((n_features, HIST_BINS, HIST_CHANNELS), np.nan)
    _hist_features(xb, all_rows, all_ghw.ravel(), pad, pad + len(rows), features.astype(np.int64),
                   0, len(features), n_bins.astype(np.int64), hist.ravel(), channels)  # fmt: skip
    g = ghw[:, 0]
    h = ghw[:, 1] if channels > 1 else np.ones(len(rows))
    w = ghw[:, 2] if channels > 2 else np.ones(len(rows))
    for f in features:
        bins = xb[f, rows]
        for channel, values in enumerate((g, h, w)):
            expected = np.bincount(bins, weights=values, minlength=HIST_BINS)
            used = np.r_[np.arange(n_bins[f]), MISSING_BIN]
            np.testing.assert_allclose(hist[f, used, channel], expected[used], rtol=1e-12)
        np.testing.assert_array_equal(hist[f, used, 3], 0.0)
    untouched = np.setdiff1d(np.arange(n_features), features)
    assert np.isnan(hist[untouched]).all()
