"""Detect people in images with a config and a checkpoint; write pictures.

    python demo/image_demo.py IMAGE_OR_DIR CONFIG --weights CKPT
        [--out-dir outputs] [--pred-score-thr 0.5] [--device cpu]

A thin wrapper of mmdet's DetInferencer (which does the loading, batching
and drawing); writes ``OUT_DIR/vis/<image>`` and, with ``--save-pred``,
``OUT_DIR/preds/<image>.json``, and prints where. Detections scoring at
least ``--pred-score-thr`` are drawn: 0.5 by default, readable in crowds
(mmdet's 0.3 labels every doubtful box).
"""
import argparse
import glob
import os.path as osp
import warnings

import torch
from mmdet.apis import DetInferencer

import mmlla  # noqa: F401


PRED_SCORE_THR = 0.5


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('inputs', help='an image file or a folder of images')
    parser.add_argument('config', help='config file')
    parser.add_argument('--weights', required=True, help='checkpoint file')
    parser.add_argument('--out-dir', default='outputs')
    parser.add_argument('--pred-score-thr', type=float,
                        default=PRED_SCORE_THR,
                        help='draw detections scoring at least this')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument(
        '--device', default='cuda:0' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--save-pred', action='store_true',
                        help='also write the predictions as json')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    warnings.filterwarnings('ignore', message=r'.*torch\.meshgrid.*')
    if not osp.exists(args.inputs):
        raise SystemExit(f'error: {args.inputs} not found')
    from mmlla.utils.checkpoint import (CheckpointError,
                                        check_is_checkpoint_file)
    try:
        check_is_checkpoint_file(args.weights)
    except CheckpointError as e:
        raise SystemExit(f'error: {e}') from None
    inferencer = DetInferencer(
        model=args.config, weights=args.weights, device=args.device,
        show_progress=False)
    results = inferencer(
        args.inputs,
        batch_size=args.batch_size,
        pred_score_thr=args.pred_score_thr,
        out_dir=args.out_dir,
        no_save_pred=not args.save_pred)
    vis = osp.join(args.out_dir, 'vis')
    n = len(glob.glob(osp.join(vis, '*')))
    print(f'{n} picture(s) with the detections scoring >= '
          f'{args.pred_score_thr:g}: {vis}')
    if args.save_pred:
        print(f'predictions (json): {osp.join(args.out_dir, "preds")}')
    return results


if __name__ == '__main__':
    main()
