"""DLRM, data generator, Criteo loader, and training in the three modes (in-process)."""

import numpy as np
import pytest
import torch

from redundancy.ecrm.config import DataConfig, ModelConfig, load_config, make_config
from redundancy.ecrm.data import CriteoText, SyntheticCriteo, write_criteo_text
from redundancy.ecrm.model import DLRM
from redundancy.ecrm.train import Trainer, train, young_interval
from redundancy.ecrm.verify import assemble, parity_residual
from redundancy.errors import ConfigError, ParameterError

torch.set_num_threads(1)
SMALL = {"model": {"table_rows": [300] * 26, "dim": 4}, "data": {"batch_size": 64}}


def test_dlrm_shapes_and_interactions():
    torch.manual_seed(0)
    model = DLRM(ModelConfig(table_rows=[10, 20, 30], dim=4, bottom=[8], top=[8]))
    out = model(torch.randn(5, 13), torch.randn(5, 3, 4))
    assert out.shape == (5,)
    assert model.top[0].in_features == 4 + 6  # bottom output + C(4, 2) pairwise dots


def test_generator_is_deterministic_and_zipf_skewed():
    gen = SyntheticCriteo([1000] * 26, 13, DataConfig(batch_size=2048, zipf_a=1.2))
    d1, s1, y1 = gen.batch(3)
    d2, s2, y2 = gen.batch(3)
    assert torch.equal(s1, s2) and torch.equal(y1, y2) and torch.equal(d1, d2)
    assert not torch.equal(gen.batch(4)[1], s1)
    counts = torch.bincount(s1[:, 0], minlength=1000).sort(descending=True).values
    assert counts[:10].sum() > 0.3 * 2048  # a few hot rows carry much of the traffic
    assert 0.2 < float(y1.mean()) < 0.8


def test_criteo_text_roundtrip(tmp_path):
    gen = SyntheticCriteo([500] * 26, 13, DataConfig(batch_size=16))
    path = tmp_path / "day_0.txt"
    assert write_criteo_text(path, gen, 2) == 32
    reader = CriteoText(path, [500] * 26, batch_size=16)
    assert len(reader) == 32
    for step in range(2):
        dense, sparse, labels = reader.batch(step)
        d0, s0, y0 = gen.batch(step)
        assert torch.equal(labels, y0)
        want = s0.clone()
        want[0, ::7] = 0  # fields left empty in row 0 read as the missing bucket
        assert torch.equal(sparse, want)
        ints = np.floor(np.expm1(np.abs(d0.numpy()) * 2.0))
        ints[0, 0] = 0
        np.testing.assert_allclose(dense.numpy(), np.log1p(ints), rtol=1e-6)
    assert torch.equal(reader.batch(2)[1], reader.batch(0)[1])  # wraps around


def test_criteo_text_rejects_malformed_lines(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("1\t2\t3\n")
    with pytest.raises(ConfigError, match=r"bad\.txt:1"):
        CriteoText(path, [10] * 26, 1).batch(0)
    with pytest.raises(ConfigError):
        CriteoText(tmp_path / "absent.txt", [10] * 26, 1)


def test_loss_falls_and_parity_holds():
    cfg = make_config(mode="ecrm", steps=120, **SMALL)
    trainer = Trainer(cfg)
    res = trainer.run()
    losses = [res.losses[i] for i in range(120)]
    assert np.mean(losses[-20:]) < np.mean(losses[:20]) - 0.03
    assert parity_residual(trainer.layout, trainer.shard_states()) < 1e-5
    trainer.close()


@pytest.mark.parametrize("k,n", [(2, 4), (4, 5)])
def test_failure_mid_training_matches_failure_free_run(k, n):
    base = {**SMALL, "servers": {"k": k, "num_servers": n, "dtype": "float64", "rebuild_ranges": 8}}
    runs = []
    for fail_at in (None, 15):
        trainer = Trainer(make_config(steps=60, fail_at=fail_at, fail_server=1, **base))
        res = trainer.run()
        runs.append((trainer, res))
    (t0, r0), (t1, r1) = runs
    assert r1.recovery_s is not None and r1.rebuilt_time > r1.fail_time
    assert t1.coord.recoveries and t1.coord.recoveries[0]["server"] == 1
    np.testing.assert_allclose(
        [r1.losses[i] for i in range(60)], [r0.losses[i] for i in range(60)], atol=1e-9
    )
    s0, s1 = t0.shard_states(), t1.shard_states()
    for name in s0[1]:
        torch.testing.assert_close(s1[1][name], s0[1][name], atol=1e-10, rtol=0)
    v1 = assemble(t1.layout, s1)
    assert float((v1.parity - v1.data.sum(1)).abs().max()) < 1e-10


def test_checkpoint_mode_restores_and_redoes(tmp_path):
    cfg = make_config(mode="checkpoint", steps=50, fail_at=32, checkpoint_interval_steps=7,
                      checkpoint_dir=str(tmp_path), **SMALL)  # fmt: skip
    ref = train(make_config(mode="none", steps=50, **SMALL))
    res = train(cfg)
    assert res.checkpoints == 1 + 50 // 7 and res.interval_steps == 7
    assert res.redone_steps == 32 - 28 and res.recovery_s > res.pause_s > 0
    assert (tmp_path / "shard0.pt").exists() and (tmp_path / "dense.pt").exists()
    np.testing.assert_allclose(
        [res.losses[i] for i in range(50)], [ref.losses[i] for i in range(50)], atol=1e-5
    )


def test_young_interval():
    assert young_interval(2.0, 100.0) == pytest.approx(20.0)


def test_config_errors(tmp_path):
    with pytest.raises(ParameterError, match="num_servers"):
        make_config(servers={"k": 4, "num_servers": 4})
    with pytest.raises(ParameterError, match="fail_at"):
        make_config(steps=10, fail_at=10)
    with pytest.raises(ParameterError, match="mode"):
        make_config(mode="raid")
    bad = tmp_path / "c.yaml"
    bad.write_text("steps: -3\n")
    with pytest.raises(ConfigError, match="steps"):
        load_config(bad)
    good = tmp_path / "c.json"
    good.write_text('{"steps": 7, "servers": {"k": 4, "num_servers": 5}}')
    assert load_config(good).servers.k == 4
