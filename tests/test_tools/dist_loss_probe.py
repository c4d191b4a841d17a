"""First-iteration losses of a config on a fixed global batch, per world size.

    torchrun --nproc_per_node W tests/test_tools/dist_loss_probe.py \
        CONFIG DATA_ROOT OUT.json [GLOBAL_BATCH]

Each rank takes its share of the first GLOBAL_BATCH validation images (no
augmentation), computes the model's losses from the same seeded weights
(eval mode, so BatchNorm uses running statistics and the images of one rank
do not change the features of another), and rank 0 writes the mean over ranks
of every loss. With correctly all-reduced normalisation (positives averaged
over GPUs) the means equal the single-process losses on the whole batch.
"""
import json
import os
import os.path as osp
import sys

# The checkout under test, not whatever `mmlla` is installed: the script's
# own folder is what Python puts first on sys.path.
sys.path.insert(
    0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import mmlla  # noqa: E402,F401


def main():
    config, data_root, out = sys.argv[1:4]
    global_batch = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    world = int(os.environ.get('WORLD_SIZE', 1))
    rank = int(os.environ.get('RANK', 0))
    if world > 1:
        dist.init_process_group('gloo')
    torch.set_num_threads(1)
    cfg = Config.fromfile(config)
    init_default_scope('mmdet')
    from mmdet.registry import DATASETS, MODELS
    ds_cfg = cfg.val_dataloader.dataset
    ds_cfg.data_root = data_root
    dataset = DATASETS.build(ds_cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    share = global_batch // world
    batch = [dataset[i] for i in range(rank * share, (rank + 1) * share)]
    data = model.data_preprocessor(pseudo_collate(batch), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    values = {}
    for name, value in losses.items():
        if isinstance(value, (list, tuple)):
            value = sum(value)
        values[name] = float(value)
    names = sorted(values)
    vec = torch.tensor([values[n] for n in names], dtype=torch.float64)
    if world > 1:
        dist.all_reduce(vec)
        vec /= world
    if rank == 0:
        with open(out, 'w') as f:
            json.dump(dict(zip(names, vec.tolist())), f)
    if world > 1:
        dist.destroy_process_group()


if __name__ == '__main__':
    main()
