"""ECRM vs checkpointing vs no fault tolerance on the same data, model and failure.

Robust on a noisy shared machine: ``rounds`` rounds, each running the three modes back to back in
a rotating order (so drift in the machine's load hits all modes alike); every figure is reported
as the median over rounds with its min..max spread. Per round, no-fault-tolerance runs the
``fail_at`` steps before the failure point; ECRM and checkpointing run the full length with the
same server killed at ``fail_at``. Their first ``fail_at`` steps are failure-free, so
normal-mode overhead = time to reach ``fail_at`` over no-FT's time, paired within each round.

Definitions (see ``TrainResult``): recovery = kill until training has completed the step it was
about to run (checkpointing: restart + reload + redo; ECRM: detection + degraded reads; both
include that one step); ECRM rebuild = kill until the replacement holds its whole shard.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from redundancy.ecrm.config import TrainConfig
from redundancy.ecrm.train import TrainResult, train
from redundancy.errors import ParameterError

MODES = ("none", "ecrm", "checkpoint")


@dataclass(frozen=True)
class Spread:
    """Median and range of one figure over the rounds."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def fmt(self, spec: str = ".2f", scale: float = 1.0, unit: str = "") -> str:
        v = [x * scale for x in self.values]
        if len(v) == 1:
            return f"{v[0]:{spec}}{unit}"
        return f"{statistics.median(v):{spec}}{unit} ({min(v):{spec}}..{max(v):{spec}})"


@dataclass
class Comparison:
    """The runs of every round and the figures derived from them."""

    rounds: list[dict[str, TrainResult]]
    fail_at: int

    def _each(self, fn: Callable[[dict[str, TrainResult]], float]) -> Spread:
        return Spread(tuple(fn(r) for r in self.rounds))

    def segment_s(self, mode: str) -> Spread:
        """Seconds to train the failure-free first ``fail_at`` steps."""
        return self._each(lambda r: r[mode].time_at(self.fail_at))

    def overhead(self, mode: str) -> Spread:
        """Extra time over no fault tolerance for the first ``fail_at`` steps (0.1 = 10 %)."""
        n = self.fail_at
        return self._each(lambda r: r[mode].time_at(n) / r["none"].time_at(n) - 1.0)

    def recovery(self, mode: str) -> Spread:
        return self._each(lambda r: r[mode].recovery_s)

    def pause(self, mode: str) -> Spread:
        return self._each(lambda r: r[mode].pause_s)

    def rebuild(self) -> Spread:
        return self._each(lambda r: r["ecrm"].rebuild_s)

    def recovery_ratio(self) -> Spread:
        """Checkpoint recovery over ECRM recovery, paired within each round."""
        return self._each(lambda r: r["checkpoint"].recovery_s / r["ecrm"].recovery_s)

    def rebuild_ratio(self) -> Spread:
        """Checkpoint recovery over ECRM's whole background rebuild."""
        return self._each(lambda r: r["checkpoint"].recovery_s / r["ecrm"].rebuild_s)

    def recovery_throughput(self) -> Spread:
        """ECRM new-progress steps/s between kill and end of rebuild, over steps/s before."""

        def rel(r: dict[str, TrainResult]) -> float:
            e = r["ecrm"]
            return e.throughput_between(e.fail_time, e.rebuilt_time) / e.throughput_between(
                0.0, e.fail_time
            )

        return self._each(rel)

    def redone(self) -> Spread:
        return self._each(lambda r: float(r["checkpoint"].redone_steps))

    def table(self) -> list[tuple[str, str, str, str, str, str]]:
        """Rows: mode, seconds for fail_at steps, overhead, recovery s, pause s, rebuild s."""
        out = []
        for mode in MODES:
            faulty = mode != "none"
            out.append(
                (
                    mode,
                    self.segment_s(mode).fmt(),
                    self.overhead(mode).fmt("+.1f", 100, "%") if faulty else "-",
                    self.recovery(mode).fmt() if faulty else "-",
                    self.pause(mode).fmt(".3f") if faulty else "-",
                    self.rebuild().fmt() if mode == "ecrm" else "-",
                )
            )
        return out


def compare(
    cfg: TrainConfig,
    fail_at: int,
    progress: Callable[[str], None] | None = None,
    rounds: int = 3,
) -> Comparison:
    """Run ``rounds`` interleaved rounds of the three modes (cfg's mode/fail_at overridden).

    ``progress`` (if given) is called with a short description after each of the
    ``rounds * len(MODES)`` runs.
    """
    if not 0 < fail_at < cfg.steps:
        raise ParameterError(f"fail_at={fail_at} must lie in 1..{cfg.steps - 1}")
    tiny = cfg.model.model_copy(update={"table_rows": [100] * len(cfg.model.table_rows)})
    train(cfg.model_copy(update={"mode": "none", "fail_at": None, "steps": 5, "model": tiny}))
    out = []
    for rnd in range(rounds):
        runs: dict[str, TrainResult] = {}
        for i in range(len(MODES)):
            mode = MODES[(i + rnd) % len(MODES)]
            if mode == "none":
                update = {"mode": mode, "fail_at": None, "steps": fail_at}
            else:
                update = {"mode": mode, "fail_at": fail_at}
            runs[mode] = train(cfg.model_copy(update=update))
            if progress:
                progress(f"round {rnd + 1}/{rounds}: {mode} done")
        out.append(runs)
    return Comparison(out, fail_at)


def plot_throughput(cmp: Comparison, path: str, window: int) -> None:
    """Throughput over time of the first round's runs with a failure (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for mode in ("ecrm", "checkpoint"):
        res = cmp.rounds[0][mode]
        t, v = res.throughput(window)
        ax.plot(t, v, label=mode)
        color = ax.lines[-1].get_color()
        if res.fail_time is not None:
            ax.axvline(res.fail_time, color="grey", ls=":", lw=1)
        end = res.rebuilt_time if mode == "ecrm" else res.back_time
        if end is not None:
            ax.axvline(end, ls="--", lw=1, color=color)
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("new steps / s")
    ax.set_title("throughput, one server killed (dotted); rebuilt / back at progress (dashed)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
