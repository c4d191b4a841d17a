"""Launch-time settings shared by tools/train.py and tools/test.py."""
import os

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.logging import print_log


def setup_launch_env(cfg: Config) -> None:
    """Make a config launchable on the machine at hand.

    The configs ask for NCCL, which needs CUDA. On a machine without CUDA a
    ``--launcher pytorch`` run (``tools/dist_train.sh CONFIG 2``) instead
    joins a gloo process group here, before the runner starts: mmengine's
    own ``init_dist`` calls ``torch.cuda.set_device`` unconditionally, and it
    skips initialisation when a group already exists. The model is then
    wrapped by :class:`CPUCompatibleDistributedDataParallel`.
    """
    if cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available():
        return
    if not torch_dist.is_initialized():
        print_log('CUDA is not available: joining a gloo process group '
                  f'(rank {os.environ.get("RANK")} of '
                  f'{os.environ.get("WORLD_SIZE")}).', logger='current')
        torch_dist.init_process_group(backend='gloo')
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='CPUCompatibleDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))


def teardown_distributed() -> None:
    """Destroy the default process group, if one was started.

    mmengine's runner leaves it alive at the end of ``train()`` /
    ``test()``; a gloo group still alive while the interpreter exits can
    abort a rank ("terminate called without an active exception", seen
    with ``tools/dist_train.sh`` on CPUs), failing a run that finished.
    Every rank waits for the others first, so none is torn down mid-way.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
