"""Quick start: synthetic crowds -> train a tiny detector on CPU -> evaluate.

    python tools/quick_start.py

Generates a small synthetic CrowdHuman set (unless it is already there),
trains the tiny default detector for a few minutes with mmengine's progress
log, evaluates it (AP50 / mMR / recall) and draws its detections on a
validation image. Everything lands in ``--work-dir``, by default
``work_dirs/quick_start/<config name>/`` (one folder per detector, so
``--config`` of another one keeps the LLA checkpoint the README uses).
The model is evaluated once, on the validation images, after training.
"""
import argparse
import os
import os.path as osp

import mmcv
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mmlla  # noqa: F401
from mmlla.evaluation.functional import format_crowdhuman_row
from mmlla.testing import make_synthetic_crowdhuman

DEFAULT_CONFIG = 'configs/lla/lla_tiny_synthetic.py'
# The picture: detections scoring at least this much, image upscaled.
SHOW_SCORE_THR = 0.5
SHOW_SCALE = 3
SHOW_COLOR = (255, 60, 60)


def parse_args(argv=None):
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--config', default=osp.join(root, DEFAULT_CONFIG),
        help='tiny config')
    parser.add_argument(
        '--work-dir', default=None,
        help='default: work_dirs/quick_start/<config name>/')
    parser.add_argument('--data-root', default='data/synthetic_crowdhuman/')
    parser.add_argument('--num-train', type=int, default=300)
    parser.add_argument('--num-val', type=int, default=50)
    parser.add_argument('--iters', type=int, default=600,
                        help='training iterations (batch of 4)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.work_dir is None:
        args.work_dir = default_work_dir(args.config)
    return args


def default_work_dir(config):
    return osp.join('work_dirs', 'quick_start',
                    osp.splitext(osp.basename(config))[0])


def _tools_test():
    """tools/test.py as a module (its warning filters)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'mmlla_tools_test', osp.join(osp.dirname(osp.abspath(__file__)),
                                     'test.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    args = parse_args(argv)
    tools_test = _tools_test()
    tools_test.quiet_known_warnings()
    data_root = args.data_root.rstrip('/') + '/'
    if not (osp.exists(data_root + 'annotation_train.odgt')
            and osp.exists(data_root + 'annotation_val.odgt')):
        print(f'Generating synthetic crowds in {data_root} ...')
        make_synthetic_crowdhuman(data_root, args.num_train, args.num_val,
                                  seed=args.seed)

    cfg = Config.fromfile(args.config)
    cfg.work_dir = args.work_dir
    cfg.randomness = dict(seed=args.seed)
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        loader.dataset.data_root = data_root
    cfg.val_evaluator.ann_file = data_root + 'annotation_val.odgt'
    cfg.test_evaluator = cfg.val_evaluator
    cfg.train_cfg.max_iters = args.iters
    # Evaluated once, by runner.test() below: mmengine's IterBasedTrainLoop
    # would also validate at the last iteration whatever val_interval says.
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.train_cfg.pop('val_interval', None)
    cfg.param_scheduler[-1].end = args.iters
    cfg.param_scheduler[-1].milestones = [int(args.iters * 0.8)]
    cfg.default_hooks.checkpoint.interval = args.iters

    device = 'GPU' if torch.cuda.is_available() else 'CPU'
    print(f'Training {osp.relpath(args.config)} for {args.iters} iterations '
          f'on {device} ...')
    runner = Runner.from_cfg(cfg)
    tools_test.quiet_known_warnings(runner)
    runner.train()
    metrics = runner.test()

    # A picture of the detections on the first validation image. Drawn with
    # the visualizer's primitives rather than add_datasample: its per-box
    # labels would cover a 320x240 crowd entirely.
    from mmdet.apis import inference_detector
    from mmdet.registry import VISUALIZERS
    dataset = runner.test_dataloader.dataset
    img_path = dataset.get_data_info(0)['img_path']
    model = runner.model.module if hasattr(runner.model,
                                           'module') else runner.model
    model.cfg = cfg
    pred = inference_detector(model, img_path).pred_instances
    keep = pred.scores >= SHOW_SCORE_THR
    img = mmcv.imrescale(mmcv.imread(img_path, channel_order='rgb'),
                         SHOW_SCALE)
    visualizer = VISUALIZERS.build({**cfg.visualizer, 'name': 'quick_start'})
    visualizer.set_image(img)
    if keep.any():
        visualizer.draw_bboxes(pred.bboxes[keep] * SHOW_SCALE,
                               edge_colors=SHOW_COLOR, line_widths=2)
    visualizer.draw_texts(
        f'{int(keep.sum())} people (score >= {SHOW_SCORE_THR})',
        positions=torch.tensor([8, 8]), colors='white', font_sizes=14,
        bboxes=dict(facecolor='black', alpha=0.6))
    out_file = osp.join(args.work_dir, 'detections.png')
    mmcv.imwrite(visualizer.get_image()[..., ::-1], out_file)

    print()
    print(f'{osp.basename(args.config)} after {args.iters} iterations '
          f'(batch 4) on {device}, evaluated on the {len(dataset)} '
          f'synthetic validation images ({data_root}):')
    print(format_crowdhuman_row(metrics) or metrics)
    print(f'Detections drawn on {img_path}: {out_file}')
    print(f'Checkpoint: {osp.join(args.work_dir, f"iter_{args.iters}.pth")}')
    return metrics


if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', str(os.cpu_count() or 1))
    main()
