"""Ray integration: one actor process per server, a server process SIGKILLed mid-training.

One Ray session (2 CPUs, no dashboard) serves the whole module and is always shut down.
"""

import os
import time

import numpy as np
import pytest
import torch

from redundancy.ecrm.cluster import RayCluster, ServerUnavailable
from redundancy.ecrm.config import make_config
from redundancy.ecrm.layout import StripeLayout
from redundancy.ecrm.shard import ShardSpec
from redundancy.ecrm.train import Trainer, ray_session

torch.set_num_threads(1)
BASE = {
    "model": {"table_rows": [200] * 26, "dim": 4},
    "data": {"batch_size": 32},
    "servers": {"k": 2, "num_servers": 3, "dtype": "float64", "rebuild_ranges": 4},
    "steps": 30,
}


@pytest.fixture(scope="module")
def ray_cluster_session():
    with ray_session(num_cpus=2):
        yield


def _gone(pid: int, wait_s: float = 10.0) -> bool:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_kill_server_process_training_continues_and_rebuild_is_exact(ray_cluster_session):
    ref = Trainer(make_config(**BASE))
    ref_res = ref.run()
    ref_states = ref.shard_states()
    ref.close()

    trainer = Trainer(make_config(use_ray=True, fail_at=8, fail_server=1, **BASE))
    old_pid = trainer.cluster.pids[1]
    try:
        res = trainer.run()
        states = trainer.shard_states()
        new_pid = trainer.cluster.pids[1]
    finally:
        trainer.close()
    assert _gone(old_pid) and new_pid not in (-1, old_pid)
    assert trainer.coord.recoveries[0]["server"] == 1
    assert len(res.losses) == 30 and res.recovery_s is not None
    np.testing.assert_allclose(
        [res.losses[i] for i in range(30)], [ref_res.losses[i] for i in range(30)], atol=1e-9
    )
    for name, value in ref_states[1].items():
        torch.testing.assert_close(states[1][name], value, atol=1e-10, rtol=0)


def test_unreachable_server_is_reported_not_hung_on(ray_cluster_session):
    spec = ShardSpec(StripeLayout(50, 2, 3), 4)
    cluster = RayCluster(spec, 3, timeout_s=5.0)
    pids = list(cluster.pids)
    try:
        cluster.kill(2)
        start = time.monotonic()
        with pytest.raises(ServerUnavailable, match="server 2"):
            cluster.result(cluster.call(2, "ping"))
        assert time.monotonic() - start < 6.0
        assert cluster.result(cluster.call(0, "ping"))
    finally:
        cluster.shutdown()
    assert all(_gone(pid) for pid in pids)
