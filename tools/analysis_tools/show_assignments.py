"""Draw which points each label-assignment rule gives to each person.

    python tools/analysis_tools/show_assignments.py CONFIG [CHECKPOINT] \
        --image data/CrowdHuman/Images/<ID>.jpg --out assignments.png \
        [--assigners lla poto fcos] [--split val]

The image must be in the config's annotation file (``--split`` picks the
training or the validation set). The detector of CONFIG (with CHECKPOINT's
weights; random ones without) predicts scores and boxes at every point; each
assigner then assigns the points to the image's people from those same
predictions. One panel per assigner, side by side: every person's box and
the points given to it share a colour; the marker shape tells the FPN level
(P3 o, P4 s, P5 ^, P6 D, P7 v); points given to an ignore region are grey x.
LLA and POTO depend on the predictions, so use a trained checkpoint for a
meaningful picture; FCOS's rule depends only on geometry.
"""
import argparse
import os.path as osp

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import load_checkpoint  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

import mmlla  # noqa: E402,F401

ASSIGNERS = {
    'lla': dict(type='LossAwareAssigner', topk=10),
    'poto': dict(type='POTOAssigner', alpha=0.8),
    'poto-argmax': dict(type='POTOAssigner', alpha=0.8, match='argmax'),
    'fcos': dict(type='FCOSStyleAssigner', center_sampling_radius=1.5),
    'fcos-box': dict(type='FCOSStyleAssigner', center_sampling_radius=0),
}
TITLES = {
    'lla': 'LLA (top-10 by cls + reg loss)',
    'poto': 'POTO (Hungarian)',
    'poto-argmax': 'POTO (argmax)',
    'fcos': 'FCOS (centre 1.5 stride + scale)',
    'fcos-box': 'FCOS (whole box + scale)',
}
LEVEL_MARKERS = ['o', 's', '^', 'D', 'v']
IGNORE_COLOR = (0.55, 0.55, 0.55)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='a point-based detector config')
    parser.add_argument('checkpoint', nargs='?', default=None)
    parser.add_argument('--image', required=True,
                        help='an image of the config\'s data set')
    parser.add_argument('--out', default='assignments.png')
    parser.add_argument('--assigners', nargs='+', default=['lla', 'poto',
                                                           'fcos'],
                        choices=sorted(ASSIGNERS))
    parser.add_argument('--split', choices=['train', 'val'], default='val')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def find_sample(dataset, image):
    """The index of ``image`` (a path or a file name) in ``dataset``."""
    name = osp.basename(image)
    for idx in range(len(dataset)):
        if osp.basename(dataset.get_data_info(idx)['img_path']) == name:
            return idx
    raise FileNotFoundError(
        f'{image} is not in {dataset.ann_file}; pass an image of that '
        'annotation file (or --split train)')


@torch.no_grad()
def predict_points(model, data):
    """Priors, probabilities and decoded boxes of every point of one image.

    Returns:
        tuple: priors (A, 4) ``(x, y, stride, stride)``, scores (A, C),
        bboxes (A, 4) xyxy, points per level.
    """
    from mmdet.models.task_modules.prior_generators import \
        MlvlPointGenerator
    from mmdet.structures.bbox import distance2bbox
    head = model.bbox_head
    batch = model.data_preprocessor(pseudo_collate([data]), training=False)
    outs = head(model.extract_feat(batch['inputs']))
    cls_scores, bbox_preds = outs[0], outs[1]
    sizes = [c.shape[-2:] for c in cls_scores]
    priors = head.prior_generator.grid_priors(
        sizes, dtype=cls_scores[0].dtype, device=cls_scores[0].device,
        with_stride=True)
    if not isinstance(head.prior_generator, MlvlPointGenerator):
        raise ValueError(f'{type(head).__name__} is not a point-based head')
    scores = torch.cat([
        c[0].permute(1, 2, 0).reshape(-1, head.cls_out_channels)
        for c in cls_scores
    ]).sigmoid()
    # POTOHead with 3DMF: probability = sigmoid(cls) * sigmoid(filter)
    if getattr(head, 'with_3dmf', False) and len(outs) > 2:
        scores = scores * torch.cat([
            f[0].permute(1, 2, 0).reshape(-1, 1) for f in outs[2]
        ]).sigmoid()
    # eval mode: these heads give pixel distances (norm_on_bbox x stride)
    dists = torch.cat([b[0].permute(1, 2, 0).reshape(-1, 4)
                       for b in bbox_preds])
    all_priors = torch.cat(priors)
    bboxes = distance2bbox(all_priors[:, :2], dists)
    return all_priors, scores, bboxes, [len(p) for p in priors]


def draw_panel(ax, img, gts, ignores, result, priors, level_ids, title):
    ax.imshow(img)
    colors = plt.cm.tab20(np.linspace(0, 1, 20))
    for k, (x1, y1, x2, y2) in enumerate(gts.tolist()):
        ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False,
                                   lw=1, ec=colors[k % 20]))
    for x1, y1, x2, y2 in ignores.tolist():
        ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=True,
                                   alpha=0.25, lw=1, ls='--',
                                   fc=IGNORE_COLOR, ec=IGNORE_COLOR))
    gt_inds = result.gt_inds.cpu()
    num_gts = len(gts)
    for lvl, marker in enumerate(LEVEL_MARKERS):
        on_level = level_ids == lvl
        pos = on_level & (gt_inds > 0) & (gt_inds <= num_gts)
        if pos.any():
            ax.scatter(priors[pos, 0], priors[pos, 1], s=14, marker=marker,
                       c=[colors[(i - 1) % 20] for i in gt_inds[pos].tolist()],
                       edgecolors='black', linewidths=0.4)
        ign = on_level & ((gt_inds < 0) | (gt_inds > num_gts))
        if ign.any():
            ax.scatter(priors[ign, 0], priors[ign, 1], s=12, marker='x',
                       c=[IGNORE_COLOR])
    n_pos = int(((gt_inds > 0) & (gt_inds <= num_gts)).sum())
    ax.set_title(f'{title}\n{n_pos} positives for {num_gts} people',
                 fontsize=8)
    ax.set_axis_off()


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    from mmdet.registry import DATASETS, MODELS, TASK_UTILS

    loader = cfg.train_dataloader if args.split == 'train' else \
        cfg.val_dataloader
    ds_cfg = loader.dataset
    # the test pipeline (no random flip), with the annotations loaded
    ds_cfg.pipeline = cfg.val_dataloader.dataset.pipeline
    dataset = DATASETS.build(ds_cfg)
    data = dataset[find_sample(dataset, args.image)]

    model = MODELS.build(cfg.model)
    if args.checkpoint:
        load_checkpoint(model, args.checkpoint, map_location='cpu')
    else:
        model.init_weights()
    model.eval()
    priors, scores, bboxes, counts = predict_points(model, data)
    level_ids = torch.cat(
        [torch.full((n, ), i) for i, n in enumerate(counts)])

    sample = data['data_samples']
    gts = sample.gt_instances.bboxes
    gts = gts.tensor if hasattr(gts, 'tensor') else gts
    ign = sample.ignored_instances.bboxes
    ign = ign.tensor if hasattr(ign, 'tensor') else ign
    pred = InstanceData(priors=priors, scores=scores, bboxes=bboxes)
    gt = InstanceData(bboxes=gts, labels=sample.gt_instances.labels)
    gt_ignore = InstanceData(bboxes=ign)
    img = data['inputs'].permute(1, 2, 0).numpy()[..., ::-1]  # BGR -> RGB

    fig, axes = plt.subplots(1, len(args.assigners),
                             figsize=(4.2 * len(args.assigners), 3.6))
    axes = np.atleast_1d(axes)
    results = {}
    for ax, name in zip(axes, args.assigners):
        result = TASK_UTILS.build(ASSIGNERS[name]).assign(
            pred, gt, gt_ignore, num_level_priors=counts)
        results[name] = result
        draw_panel(ax, img, gts, ign, result, priors, level_ids, TITLES[name])
    fig.suptitle(f'{osp.basename(args.image)}  (markers: P3 o, P4 s, P5 ^, '
                 'P6 D, P7 v; grey x: ignore)', fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    fig.savefig(args.out, dpi=150)
    plt.close(fig)
    print(f'wrote {args.out}')
    return results


if __name__ == '__main__':
    main()
