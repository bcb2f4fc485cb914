"""ECRM vs checkpointing vs no fault tolerance on the same data, model and failure.

Five runs: each mode without a failure (normal-mode overhead against no fault tolerance), then
ECRM and checkpointing with the same server killed at the same step (recovery time, pause and
throughput while recovering).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from redundancy.ecrm.config import TrainConfig
from redundancy.ecrm.train import TrainResult, train


@dataclass
class Comparison:
    """The five runs and the figures derived from them."""

    clean: dict[str, TrainResult]
    failed: dict[str, TrainResult]

    def overhead(self, mode: str) -> float:
        """Extra training time over no fault tolerance, as a fraction (0.1 = 10 % slower)."""
        return self.clean[mode].total_s / self.clean["none"].total_s - 1.0

    def recovery_ratio(self) -> float:
        """Checkpoint restore+redo time divided by ECRM's rebuild time."""
        return self.failed["checkpoint"].recovery_s / self.failed["ecrm"].recovery_s

    def recovery_throughput(self) -> float:
        """ECRM steps/s while rebuilding, relative to its steps/s before the failure."""
        r = self.failed["ecrm"]
        during = r.throughput_between(r.fail_time, r.recovered_time)
        before = r.throughput_between(0.0, r.fail_time)
        return during / before

    def table(self) -> list[tuple[str, str, str, str, str, str]]:
        """Rows: mode, clean seconds, overhead, recovery s, pause s, lost (redone) steps."""
        out = []
        for mode in ("none", "ecrm", "checkpoint"):
            f = self.failed.get(mode)
            out.append(
                (
                    mode,
                    f"{self.clean[mode].total_s:.2f}",
                    "-" if mode == "none" else f"{100 * self.overhead(mode):+.1f}%",
                    f"{f.recovery_s:.2f}" if f and f.recovery_s is not None else "-",
                    f"{f.pause_s:.3f}" if f and f.pause_s is not None else "-",
                    str(f.redone_steps) if f else "-",
                )
            )
        return out


def compare(
    cfg: TrainConfig,
    fail_at: int,
    progress: Callable[[str], None] | None = None,
    repeats: int = 2,
) -> Comparison:
    """Run the five trainings of the comparison with ``cfg`` (its mode/fail_at are overridden)."""
    clean, failed = {}, {}
    train(cfg.model_copy(update={"mode": "none", "fail_at": None, "steps": 10}))  # warm-up
    for rnd in range(repeats):  # interleaved rounds; the fastest run of each mode counts
        for mode in ("none", "ecrm", "checkpoint"):
            if progress:
                progress(f"{mode}: no failure (round {rnd + 1}/{repeats})")
            res = train(cfg.model_copy(update={"mode": mode, "fail_at": None}))
            if mode not in clean or res.total_s < clean[mode].total_s:
                clean[mode] = res
    for mode in ("ecrm", "checkpoint"):
        if progress:
            progress(f"{mode}: server {cfg.fail_server} killed at step {fail_at}")
        failed[mode] = train(cfg.model_copy(update={"mode": mode, "fail_at": fail_at}))
    return Comparison(clean, failed)


def plot_throughput(cmp: Comparison, path: str, window: int) -> None:
    """Throughput over time of the runs with a failure (PNG), marking failure and recovery."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for mode, res in cmp.failed.items():
        t, v = res.throughput(window)
        ax.plot(t, v, label=mode)
        if res.fail_time is not None:
            ax.axvline(res.fail_time, color="grey", ls=":", lw=1)
        if res.recovered_time is not None:
            ax.axvline(res.recovered_time, ls="--", lw=1, color=ax.lines[-1].get_color())
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("new steps / s")
    ax.set_title("training throughput with one server killed (dotted), recovered (dashed)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
