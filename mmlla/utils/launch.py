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


def format_crowdhuman_row(metrics: dict):
    """The tools/test.py summary: one markdown row of AP50 / mMR / recall.

    Args:
        metrics: What ``runner.test()`` returns, e.g.
            ``{'crowdhuman/AP50': 0.882, 'crowdhuman/mMR': 0.475, ...}``.

    Returns:
        str | None: A header and a row in percent with one decimal, or None
        when the metrics hold no CrowdHuman numbers.
    """
    found = {}
    for key, value in metrics.items():
        name = key.rsplit('/', 1)[-1]
        if name in ('AP50', 'mMR', 'recall'):
            found[name] = value
    if len(found) != 3:
        return None
    return ('| AP50 | mMR | recall |\n|:----:|:---:|:------:|\n'
            f'| {100 * found["AP50"]:.1f} | {100 * found["mMR"]:.1f} | '
            f'{100 * found["recall"]:.1f} |')
