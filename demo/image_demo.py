"""Detect people in images with a config and a checkpoint; write pictures.

    python demo/image_demo.py IMAGE_OR_DIR CONFIG --weights CKPT
        [--out-dir outputs] [--pred-score-thr 0.3] [--device cpu]

A thin wrapper of mmdet's DetInferencer (which does the loading, batching
and drawing); writes ``OUT_DIR/vis/<image>`` and, with ``--save-pred``,
``OUT_DIR/preds/<image>.json``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmdet.apis import DetInferencer  # noqa: E402

import mmlla  # noqa: E402,F401


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('inputs', help='an image file or a folder of images')
    parser.add_argument('config', help='config file')
    parser.add_argument('--weights', required=True, help='checkpoint file')
    parser.add_argument('--out-dir', default='outputs')
    parser.add_argument('--pred-score-thr', type=float, default=0.3)
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument(
        '--device', default='cuda:0' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--save-pred', action='store_true',
                        help='also write the predictions as json')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    inferencer = DetInferencer(
        model=args.config, weights=args.weights, device=args.device,
        show_progress=False)
    return inferencer(
        args.inputs,
        batch_size=args.batch_size,
        pred_score_thr=args.pred_score_thr,
        out_dir=args.out_dir,
        no_save_pred=not args.save_pred)


if __name__ == '__main__':
    main()
