"""DLRM training over parameter servers in three modes: ECRM, checkpointing, no fault tolerance.

The driver is the (single) worker: it holds the dense MLPs (replicated state, not on the servers),
pulls the batch's embedding rows, runs forward/backward, and pushes the coalesced row gradients.
A failure can be injected at a step by killing a server (a real process kill on Ray).
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from redundancy.ecrm.cluster import LocalCluster, RayCluster
from redundancy.ecrm.config import TrainConfig
from redundancy.ecrm.coordinator import Coordinator, ServerLost
from redundancy.ecrm.data import CriteoText, SyntheticCriteo
from redundancy.ecrm.layout import StripeLayout
from redundancy.ecrm.model import DLRM
from redundancy.ecrm.shard import ShardSpec
from redundancy.storage_io import atomic_open


def young_interval(checkpoint_s: float, mtbf_s: float) -> float:
    """Compute Young's optimal checkpoint interval sqrt(2 C MTBF), in seconds.

    Parameters
    ----------
    checkpoint_s : float
        Seconds one checkpoint takes (C).
    mtbf_s : float
        Mean time between failures, seconds.

    Returns
    -------
    float
        Seconds between checkpoints.

    Examples
    --------
    >>> young_interval(checkpoint_s=2.0, mtbf_s=900.0)
    60.0
    """
    return math.sqrt(2.0 * checkpoint_s * mtbf_s)


@contextmanager
def ray_session(num_cpus: int = 2) -> Iterator[None]:
    """ray.init for the duration of a block (no dashboard, no log forwarding); always shut down."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


@dataclass
class TrainResult:
    """What a run measured; times are seconds since training started.

    Training starts after the servers were initialised and (checkpoint mode) the step-0
    checkpoint was written, as ECRM's parity is.

    Attributes
    ----------
    mode : str
        ``"ecrm"``, ``"checkpoint"`` or ``"none"``.
    losses : dict of int to float
        Training loss of each step.
    times : list of float
        When each iteration completed (redone ones included).
    progress : list of int
        Steps of progress after each iteration (falls back after a rollback).
    fail_time : float, optional
        When the server was killed.
    back_time : float, optional
        When training completed the step it was about to run at the failure.
    rebuilt_time : float, optional
        ECRM: when the replacement server held its whole shard again.
    checkpoints : int
        Checkpoints written.
    checkpoint_s : float
        Seconds the step-0 checkpoint took.
    interval_steps : int, optional
        Steps between checkpoints.
    redone_steps : int
        Steps redone after a rollback.
    total_s : float
        Seconds of the whole run.

    Examples
    --------
    >>> result = TrainResult("ecrm", times=[0.1, 0.2, 0.3, 0.5], progress=[1, 2, 3, 4])
    >>> result.time_at(3), round(result.step_time(), 3)
    (0.3, 0.1)
    """

    mode: str
    losses: dict[int, float] = field(default_factory=dict)
    times: list[float] = field(default_factory=list)
    progress: list[int] = field(default_factory=list)
    fail_time: float | None = None
    back_time: float | None = None
    rebuilt_time: float | None = None
    checkpoints: int = 0
    checkpoint_s: float = 0.0
    interval_steps: int | None = None
    redone_steps: int = 0
    total_s: float = 0.0

    def time_at(self, steps: int) -> float:
        """When ``steps`` steps of progress were first complete."""
        return self.times[next(i for i, p in enumerate(self.progress) if p >= steps)]

    def step_time(self) -> float:
        """Median seconds per step before any failure."""
        end = next(
            (i for i, t in enumerate(self.times) if self.fail_time and t > self.fail_time), None
        )
        gaps = torch.tensor(self.times[:end]).diff()
        return float(gaps.median()) if len(gaps) else float("nan")

    @property
    def recovery_s(self) -> float | None:
        """Kill until training completed the step it was about to run (progress back past the
        failure point): restart + reload + redo for checkpointing, detection + degraded reads for
        ECRM. Includes that one step."""
        if self.fail_time is None or self.back_time is None:
            return None
        return self.back_time - self.fail_time

    @property
    def pause_s(self) -> float | None:
        """Training time lost to the failure: recovery time beyond one normal step."""
        rec = self.recovery_s
        return None if rec is None else max(0.0, rec - self.step_time())

    @property
    def rebuild_s(self) -> float | None:
        """ECRM: kill until the replacement server held its whole shard again."""
        if self.fail_time is None or self.rebuilt_time is None:
            return None
        return self.rebuilt_time - self.fail_time

    def throughput(self, window: int) -> tuple[list[float], list[float]]:
        """(time, new-progress steps/s) per window of completed steps; redone steps count 0."""
        ts, ps = [0.0, *self.times], [0, *self.progress]
        out_t, out_v = [], []
        for i in range(window, len(ts), window):
            dt = ts[i] - ts[i - window]
            out_t.append(ts[i])
            out_v.append((ps[i] - ps[i - window]) / dt if dt > 0 else 0.0)
        return out_t, out_v

    def throughput_between(self, t0: float, t1: float) -> float:
        """New-progress steps per second between two times (from the steps completed in it)."""
        ts, ps = torch.tensor([0.0, *self.times]), torch.tensor([0, *self.progress])
        i0 = max(int(torch.searchsorted(ts, torch.tensor(t0))) - 1, 0)
        i1 = max(i0, int(torch.searchsorted(ts, torch.tensor(t1), right=True)) - 1)
        dt = float(ts[i1] - ts[i0])
        return float(ps[i1] - ps[i0]) / dt if dt > 0 else float("nan")


class Trainer:
    """One training run described by a TrainConfig (in-process or on Ray actors).

    Building one starts the servers; :meth:`run` trains and injects the configured failure;
    :meth:`close` releases the servers (:func:`train` does all three).

    Parameters
    ----------
    cfg : TrainConfig
        The run. Note that building a Trainer sets torch's thread count and seed from it.

    Raises
    ------
    ConfigError
        If ``cfg.data.path`` names a Criteo file that cannot be read.

    Examples
    --------
    >>> from redundancy.ecrm.config import make_config
    >>> from redundancy.ecrm.verify import parity_residual
    >>> threads = torch.get_num_threads()
    >>> cfg = make_config(
    ...     steps=6, fail_at=3, model={"table_rows": [100] * 4, "dim": 4}, data={"batch_size": 16}
    ... )
    >>> trainer = Trainer(cfg)
    >>> result = trainer.run()  # server 0 is killed at step 3 and rebuilt from parity
    >>> len(result.losses), result.fail_time is not None
    (6, True)
    >>> parity_residual(trainer.layout, trainer.shard_states()) < 1e-6
    True
    >>> trainer.close()
    >>> torch.set_num_threads(threads)
    """

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        m, s = cfg.model, cfg.servers
        torch.set_num_threads(cfg.torch_threads)
        torch.manual_seed(cfg.torch_seed)
        self.model = DLRM(m)
        self.opt = torch.optim.Adagrad(self.model.parameters(), lr=cfg.dense_lr)
        offsets = torch.tensor([0, *m.table_rows[:-1]]).cumsum(0)
        self.offsets = offsets
        parity = cfg.mode == "ecrm"
        self.layout = StripeLayout(sum(m.table_rows), s.k, s.num_servers, parity=parity)
        range_stripes = -(-self.layout.periods * s.num_servers // s.rebuild_ranges)
        self.spec = ShardSpec(
            self.layout, m.dim, s.optimizer, s.lr, s.eps, s.dtype, s.init_std,
            cfg.data.seed, range_stripes,
        )  # fmt: skip
        if cfg.data.path:
            self.data = CriteoText(Path(cfg.data.path), m.table_rows, cfg.data.batch_size)
        else:
            self.data = SyntheticCriteo(m.table_rows, m.dense_features, cfg.data)
        if cfg.use_ray:
            self.cluster = RayCluster(self.spec, s.num_servers, s.call_timeout_s)
        else:
            self.cluster = LocalCluster(self.spec, s.num_servers)
        dtype = getattr(torch, s.dtype)
        self.coord = Coordinator(
            self.cluster, self.layout, m.dim, range_stripes, dtype, s.rebuild_window
        )
        self.loss_fn = torch.nn.BCEWithLogitsLoss()

    def step(self, step: int) -> float:
        """One training iteration: pull rows, forward/backward, update dense, push row gradients."""
        dense, sparse, labels = self.data.batch(step)
        rows = sparse + self.offsets
        uniq, inv = torch.unique(rows, return_inverse=True)
        emb = self.coord.pull(uniq).requires_grad_(True)
        loss = self.loss_fn(self.model(dense, emb[inv]), labels)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.coord.push(uniq, emb.grad)
        self.coord.tick()
        return loss.item()

    def run(self, on_step: Callable[[int, float], None] | None = None) -> TrainResult:
        """Train for cfg.steps steps, injecting the configured failure; returns measurements."""
        if self.cfg.mode == "checkpoint" and not self.cfg.checkpoint_dir:
            with tempfile.TemporaryDirectory(prefix="ecrm_ckpt_") as tmp:
                return self._run(Path(tmp), on_step)
        return self._run(Path(self.cfg.checkpoint_dir or "."), on_step)

    def _run(self, ckpt: Path, on_step: Callable[[int, float], None] | None) -> TrainResult:
        cfg, res = self.cfg, TrainResult(self.cfg.mode)
        ckpt_step, failed, interval = 0, False, cfg.checkpoint_interval_steps
        first_ckpt_s = self._checkpoint(ckpt, res) if cfg.mode == "checkpoint" else 0.0
        start = time.perf_counter()
        step = 0
        while step < cfg.steps:
            if cfg.fail_at == step and not failed:
                failed = True
                self.cluster.kill(cfg.fail_server)
                res.fail_time = time.perf_counter() - start
            try:
                loss = self.step(step)
            except ServerLost as exc:
                self._restore(ckpt, exc.server)
                res.redone_steps += step - ckpt_step
                step = ckpt_step
                continue
            now = time.perf_counter() - start
            res.losses[step] = loss
            res.times.append(now)
            step += 1
            res.progress.append(max(step, res.progress[-1] if res.progress else 0))
            if failed and res.back_time is None and res.progress[-1] > cfg.fail_at:
                res.back_time = now
            if failed and res.rebuilt_time is None and self.coord.recoveries:
                res.rebuilt_time = self.coord.recoveries[-1]["at"] - start
            if on_step is not None:
                on_step(step, loss)
            if cfg.mode != "checkpoint":
                continue
            if interval is None and step >= cfg.window:
                young = young_interval(first_ckpt_s, cfg.mtbf_s)
                interval = max(1, round(young / (now / step)))
            res.interval_steps = interval
            if interval is not None and step - ckpt_step >= interval and step < cfg.steps:
                self._checkpoint(ckpt, res)
                ckpt_step = step
        if cfg.mode == "ecrm" and self.coord.jobs:
            self.coord.finish_recovery()
        if failed and res.rebuilt_time is None and self.coord.recoveries:
            res.rebuilt_time = self.coord.recoveries[-1]["at"] - start
        res.total_s = time.perf_counter() - start
        return res

    def _checkpoint(self, ckpt: Path, res: TrainResult) -> float:
        """Every server saves its shard, the worker the dense model; returns the seconds taken."""
        t0 = time.perf_counter()
        calls = [
            self.cluster.call(q, "save", str(ckpt / f"shard{q}.pt"))
            for q in range(self.cluster.num_servers)
        ]
        with atomic_open(ckpt / "dense.pt") as handle:
            torch.save({"model": self.model.state_dict(), "opt": self.opt.state_dict()}, handle)
        for c in calls:
            self.cluster.result(c)
        took = time.perf_counter() - t0
        res.checkpoints += 1
        res.checkpoint_s += took
        return took

    def _restore(self, ckpt: Path, lost: int) -> None:
        """Replace the lost server, roll every shard and the dense model back to the checkpoint."""
        self.cluster.replace(lost, missing=True)
        while not self.cluster.joined(lost):
            time.sleep(0.01)
        calls = [
            self.cluster.call(q, "load", str(ckpt / f"shard{q}.pt"))
            for q in range(self.cluster.num_servers)
        ]
        state = torch.load(ckpt / "dense.pt", weights_only=True)
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        for c in calls:
            self.cluster.result(c)

    def shard_states(self) -> list[dict]:
        """Every server's tensors (for comparisons with a failure-free run)."""
        return [self.cluster.result(self.cluster.call(q, "state_dict")) for q in
                range(self.cluster.num_servers)]  # fmt: skip

    def close(self) -> None:
        self.cluster.shutdown()


def train(cfg: TrainConfig, on_step: Callable[[int, float], None] | None = None) -> TrainResult:
    """Build a Trainer, run it, and always release its servers."""
    trainer = Trainer(cfg)
    try:
        return trainer.run(on_step)
    finally:
        trainer.close()
