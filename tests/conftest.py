import os
import os.path as osp

import pytest
import torch

# The suite runs on 2 CPU cores: one thread per process keeps subprocess
# tests from oversubscribing them.
torch.set_num_threads(1)
os.environ.setdefault('OMP_NUM_THREADS', '1')

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory):
    """A tiny synthetic CrowdHuman set (8 train, 4 val images), seed 0."""
    from mmlla.datasets import make_synthetic_crowdhuman
    root = str(tmp_path_factory.mktemp('synthetic_crowdhuman'))
    make_synthetic_crowdhuman(root, 8, 4, seed=0, show_progress=False)
    return root + '/'


@pytest.fixture(scope='session')
def repo_root():
    return REPO_ROOT
