"""SNEAK vs the SMT baseline: randomness and communication on random geometric and Erdos-Renyi
graphs as n grows (the paper's headline comparison, at a small scale)."""

from __future__ import annotations

import random
from pathlib import Path

from redundancy.reproduce import Row
from redundancy.secret_sharing.network import generate, propagating_part
from redundancy.secret_sharing.sim import simulate
from redundancy.secret_sharing.smt import smt_cost
from redundancy.secret_sharing.sneak import sneak_randomness

K = 3
GRAPHS = {
    "rgg": {"degree": 20.0},
    "er": {"degree": 16.0, "dealer_degree": 40},
}


def measure(kind: str, n: int, k: int = K, seed: int = 0) -> dict[str, int]:
    """SNEAK (simulated) and SMT costs on the k-propagating part of one generated graph.

    Both are per field symbol of the secret, as the paper counts them: SNEAK shares a 32-byte key
    and its tag as several GF(2^61 - 1) symbols, so its totals are divided by that count.
    """
    net = propagating_part(generate(kind, n, seed=seed, **GRAPHS[kind]), k)
    sneak = simulate(net, k, seed=seed, randbelow=random.Random(seed).randrange)
    smt = smt_cost(net, k)
    if not sneak.check.startswith("ok") or smt.short is not None:
        raise RuntimeError(f"{kind} n={n}: {sneak.check}; SMT short at {smt.short}")
    return {
        "n": net.n,
        "sneak_rand": sneak.randomness // sneak.chunks,
        "smt_rand": smt.randomness,
        "sneak_comm": sneak.symbols // sneak.chunks,
        "smt_comm": smt.communication,
        "dealer_degree": net.graph.degree(net.dealer),
    }


def run(quick: bool, out_dir: Path) -> list[Row]:
    """Rows per (graph kind, n) and a plot of both costs against n."""
    sizes = [50, 100, 200] if quick else [100, 250, 500, 1000]
    results = {kind: [measure(kind, n) for n in sizes] for kind in GRAPHS}
    rows = []
    for kind, series in results.items():
        for m in series:
            rows.append(
                Row(
                    "secret_sharing",
                    f"randomness, {kind} n={m['n']}, k={K}",
                    f"SNEAK k(k+1)/2-1={sneak_randomness(K)}; SMT <= (k-1)(n+1)="
                    f"{(K - 1) * (m['n'] + 1)}",
                    f"SNEAK {m['sneak_rand']}; SMT {m['smt_rand']}",
                )
            )
            rows.append(
                Row(
                    "secret_sharing",
                    f"communication, {kind} n={m['n']}, k={K}",
                    f"SNEAK >= kn={K * m['n']}; SMT |N(D)| + sum of k-path lengths",
                    f"SNEAK {m['sneak_comm']}; SMT {m['smt_comm']} "
                    f"({m['smt_comm'] / m['sneak_comm']:.2f}x)",
                    note=f"|N(D)|={m['dealer_degree']}",
                )
            )
    _plot(results, out_dir / "sneak_vs_smt.png")
    return rows


def _plot(results: dict[str, list[dict[str, int]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for kind, series in results.items():
        ns = [m["n"] for m in series]
        for ax, key in zip(axes, ("rand", "comm"), strict=True):
            ax.plot(ns, [m[f"sneak_{key}"] for m in series], "o-", label=f"SNEAK {kind}")
            ax.plot(ns, [m[f"smt_{key}"] for m in series], "s--", label=f"SMT {kind}")
    axes[0].set(xlabel="participants n", ylabel="random symbols", title=f"Randomness (k={K})")
    axes[1].set(xlabel="participants n", ylabel="symbols sent", title=f"Communication (k={K})")
    for ax in axes:
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
