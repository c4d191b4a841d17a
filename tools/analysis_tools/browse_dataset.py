"""Draw a CrowdHuman-style data set as the model sees it, ignore regions apart.

    python tools/analysis_tools/browse_dataset.py CONFIG --output-dir vis \
        [--split val] [--num 20] [--not-show] [--cfg-options k=v ...]

People are drawn with the data set's palette; ignore regions (``mask``
boxes and ``extra.ignore`` people), which mmdet's visualizer leaves out, are
drawn grey and hatched with the label ``ignore``.
"""
import argparse
import os.path as osp

import numpy as np
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar

import mmlla  # noqa: F401

IGNORE_COLOR = (160, 160, 160)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file path')
    parser.add_argument('--output-dir', default=None,
                        help='write the pictures here')
    parser.add_argument('--split', choices=['train', 'val'], default='train',
                        help='train: the training pipeline (augmented); '
                        'val: the validation set and pipeline')
    parser.add_argument('--num', type=int, default=None,
                        help='only the first NUM images')
    parser.add_argument('--not-show', default=False, action='store_true')
    parser.add_argument('--show-interval', type=float, default=2)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def _fit(boxes, sample, rescale):
    """Boxes in the drawn (packed) image's pixels, clipped to it.

    A test pipeline loads the annotations after Resize, so its boxes are in
    the original image's pixels (``rescale``); full-body boxes also reach
    outside the picture, which would make matplotlib widen the canvas and
    shift the whole drawing.
    """
    boxes = boxes.tensor if hasattr(boxes, 'tensor') else boxes
    boxes = boxes.clone().float()
    if rescale and 'scale_factor' in sample:
        sx, sy = sample.scale_factor
        boxes[:, 0::2] *= sx
        boxes[:, 1::2] *= sy
    h, w = sample.img_shape[:2] if 'img_shape' in sample else (None, None)
    if h is not None:
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w - 1)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h - 1)
    return boxes


def annotations_after_resize(pipeline):
    """Whether a pipeline loads its boxes after resizing the image."""
    types = [t.get('type') for t in pipeline]
    if 'LoadAnnotations' not in types or 'Resize' not in types:
        return False
    return types.index('LoadAnnotations') > types.index('Resize')


def draw_sample(visualizer, data, palette, rescale=False):
    """Draw one packed sample: persons in colour, ignore regions grey."""
    img = data['inputs'].permute(1, 2, 0).numpy()[..., [2, 1, 0]]  # BGR->RGB
    sample = data['data_samples']
    visualizer.set_image(np.ascontiguousarray(img))
    gt = _fit(sample.gt_instances.bboxes, sample, rescale)
    if len(gt):
        visualizer.draw_bboxes(gt, edge_colors=[palette[0]] * len(gt),
                               line_widths=1)
    ign = sample.get('ignored_instances', None)
    if ign is not None and len(ign):
        boxes = _fit(ign.bboxes, sample, rescale)
        visualizer.draw_bboxes(
            boxes, edge_colors=[IGNORE_COLOR] * len(boxes),
            face_colors=[IGNORE_COLOR] * len(boxes), alpha=0.35,
            line_styles='--', line_widths=1)
        visualizer.draw_texts(['ignore'] * len(boxes), boxes[:, :2],
                              colors=[IGNORE_COLOR] * len(boxes),
                              font_sizes=8)
    return visualizer.get_image()


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    from mmdet.registry import DATASETS, VISUALIZERS

    loader = cfg.train_dataloader if args.split == 'train' else \
        cfg.val_dataloader
    dataset = DATASETS.build(loader.dataset)
    visualizer = VISUALIZERS.build(cfg.visualizer)
    visualizer.dataset_meta = dataset.metainfo
    palette = [tuple(c) for c in dataset.metainfo['palette']]

    num = len(dataset) if args.num is None else min(args.num, len(dataset))
    rescale = annotations_after_resize(loader.dataset.get('pipeline', []))
    bar = ProgressBar(num)
    written = []
    for i in range(num):
        data = dataset[i]
        image = draw_sample(visualizer, data, palette, rescale)
        img_path = data['data_samples'].img_path
        out_file = None
        if args.output_dir is not None:
            out_file = osp.join(args.output_dir, osp.basename(img_path))
            out_file = osp.splitext(out_file)[0] + '.png'
            import mmcv
            mmcv.imwrite(image[..., ::-1], out_file)
            written.append(out_file)
        if not args.not_show:
            visualizer.show(image, win_name=osp.basename(img_path),
                            wait_time=args.show_interval)
        bar.update()
    print()
    if written:
        print(f'{len(written)} picture(s): {osp.abspath(args.output_dir)}')
    return written


if __name__ == '__main__':
    main()
