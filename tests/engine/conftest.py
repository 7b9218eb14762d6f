"""The reference run of the cluster tests (test_slurm.py, test_elastic.py), made once."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import cluster_runs as cr  # noqa: E402


@pytest.fixture(scope="session")
def cluster_datasets(tmp_path_factory):
    """The demo data of the cluster runs (RESNET_DET_DATASETS if set, else a session folder)."""
    return os.environ.get("RESNET_DET_DATASETS") or str(tmp_path_factory.mktemp("datasets"))


@pytest.fixture(scope="session")
def tiny_reference(tmp_path_factory, cluster_datasets):
    """Final weights of the tiny run under ``torchrun --standalone --nproc-per-node 2``,
    never interrupted: what every cluster launch of the same arguments must reproduce."""
    out = tmp_path_factory.mktemp("torchrun_reference")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    proc = cr.run(cmd + cr.train_args(out), cr.run_env(cluster_datasets))
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert "World size: 2" in proc.stdout
    return cr.final_weights(out)
