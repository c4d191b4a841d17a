"""Score saved CityPersons predictions offline: MR^-2 in the standard setups.

    python tools/analysis_tools/eval_citypersons.py GT_JSON RESULTS \
        [RESULTS ...]
        [--setups Reasonable Small Heavy Partial Bare All] [--iou-thr 0.5]
        [--max-dets 1000] [--plot-dir DIR] [--labels NAME ...]

GT_JSON is the CityPersons ground truth in the community COCO-style format
(``val_gt.json``). RESULTS is either the pickle written by ``tools/test.py
--out`` (a list of dicts with ``img_id``, the integer image id, and
``pred_instances`` holding ``bboxes`` xyxy and ``scores``) or a COCO-style
results JSON as the benchmark's ``eval_MR_multisetup.py`` reads it (a list
of ``{"image_id", "bbox": [x, y, w, h], "score", "category_id"?}``; a
``category_id``, when present, must be 1, the pedestrian).

The numbers are those of ``CityPersonsMRMetric``
(``mmlla/evaluation/functional/citypersons_mr.py``), printed in percent,
lower is better. The CityPersons protocol does not clip boxes, so no image
size is needed. Pickles are loaded with an allow-list
(``mmlla.evaluation.functional.load_results_pickle``): one that names any
other global (code to run) is refused before anything runs. A results file
is refused, with its name and the entry at fault, when it is not JSON, holds
something other than detections, a detection has a NaN/infinite/non-numeric
box or score, a box that is not 4 numbers, or another category, or an image
id is not in GT_JSON. Every image of GT_JSON is evaluated: an image without
any detection counts as an image without detections. With ``--plot-dir``
one miss-rate/FPPI figure per setup is written there (``<setup>.png``), with
the curves of all result files.
"""
import argparse
import os
import os.path as osp
from typing import Dict, List

import numpy as np

from mmlla.datasets.formats.citypersons import PEDESTRIAN
from mmlla.datasets.formats.common import (decode_utf8, loads_json_document,
                                           short_repr)
from mmlla.evaluation.functional import (FPPI_REFS, MAX_DETS, SETUPS,
                                         CityPersonsPrediction,
                                         check_detections, check_iou_thr,
                                         evaluate_citypersons,
                                         load_citypersons_gt,
                                         load_results_pickle)

PICKLE_EXTS = ('.pkl', '.pickle')
# Miss rates are drawn on a log axis: a miss rate of 0 is drawn at this floor.
PLOT_MR_FLOOR = 1e-3


def _image_id(value, loc: str) -> int:
    """The ``image_id`` of a JSON detection (pickles: from_data_sample)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f'{loc}: the image id must be an integer, got '
                         f'{short_repr(value)}')
    return value


def _iou_thr(text: str) -> float:
    try:
        return check_iou_thr(float(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _max_dets(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f'--max-dets must be an integer >= 1, got {text!r}')
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='CityPersons MR^-2 of saved predictions, per setup')
    parser.add_argument('gt', help='ground-truth JSON (val_gt.json)')
    parser.add_argument(
        'results', nargs='+',
        help='predictions: tools/test.py --out .pkl, or COCO-style results '
        '.json')
    parser.add_argument('--setups', nargs='+', default=list(SETUPS),
                        choices=list(SETUPS), help='setups to evaluate')
    parser.add_argument('--iou-thr', type=_iou_thr, default=0.5,
                        help='matching IoU threshold (>=), in (0, 1)')
    parser.add_argument('--max-dets', type=_max_dets, default=MAX_DETS,
                        help='best detections per image evaluated')
    parser.add_argument(
        '--plot-dir', help='write one miss-rate/FPPI figure per setup here')
    parser.add_argument(
        '--labels', nargs='+',
        help='legend/table names of the result files (default: file names)')
    args = parser.parse_args(argv)
    if args.labels and len(args.labels) != len(args.results):
        parser.error('--labels needs one name per results file')
    return args


def load_pickle_results(path: str) -> List[CityPersonsPrediction]:
    """Predictions from a ``tools/test.py --out`` pickle (safely loaded)."""
    results = load_results_pickle(path)
    if not isinstance(results, list):
        raise ValueError(f'{path}: not a list of detection results (got a '
                         f'{type(results).__name__})')
    preds = [
        CityPersonsPrediction.from_data_sample(sample, f'{path}: entry {k}')
        for k, sample in enumerate(results)
    ]
    return _merge(preds, path)


def load_json_results(path: str) -> List[CityPersonsPrediction]:
    """Predictions from a COCO-style results JSON (a list of detections)."""
    with open(path, 'rb') as f:
        text = decode_utf8(f.read(), path, ValueError)
    dets = loads_json_document(text, path, ValueError)
    if not isinstance(dets, list):
        raise ValueError(f'{path}: a results file is a JSON list of '
                         'detections {"image_id", "bbox", "score"}')
    per_image: Dict[int, list] = {}
    for k, det in enumerate(dets):
        loc = f'{path}: detection {k}'
        if not isinstance(det, dict) or not {'image_id', 'bbox', 'score'
                                             } <= set(det):
            raise ValueError(f'{loc}: needs "image_id", "bbox" and "score", '
                             f'got {short_repr(det)}')
        img_id = _image_id(det['image_id'], loc)
        category = det.get('category_id', PEDESTRIAN)
        if category != PEDESTRIAN or isinstance(category, bool):
            raise ValueError(f'{loc}: "category_id" must be {PEDESTRIAN} '
                             f'(pedestrian), got {short_repr(category)}')
        box, score = det['bbox'], det['score']
        if not isinstance(box, list) or len(box) != 4:
            raise ValueError(f'{loc}: "bbox" must be [x, y, w, h], got '
                             f'{short_repr(box)}')
        per_image.setdefault(img_id, []).append((loc, box, score))
    preds = []
    for img_id, rows in per_image.items():
        boxes, scores = [], []
        for loc, box, score in rows:
            try:
                b, s = check_detections([box], [score], loc)
            except ValueError as e:
                raise ValueError(f'{e} (box {short_repr(box)}, score '
                                 f'{short_repr(score)})') from None
            boxes.append(b)
            scores.append(s)
        xyxy = np.concatenate(boxes)
        xyxy[:, 2:] += xyxy[:, :2]
        if not np.isfinite(xyxy).all():  # x + w overflowed
            raise ValueError(f'{path}: image {img_id}: a box corner x + w '
                             'or y + h is not finite')
        preds.append(CityPersonsPrediction(img_id, xyxy,
                                           np.concatenate(scores)))
    return preds


def _merge(preds: List[CityPersonsPrediction],
           path: str) -> List[CityPersonsPrediction]:
    seen = set()
    for pred in preds:
        if pred.img_id in seen:
            raise ValueError(f'{path}: image id {pred.img_id} has '
                             'predictions twice')
        seen.add(pred.img_id)
    return preds


def load_results(path: str) -> List[CityPersonsPrediction]:
    if path.endswith(PICKLE_EXTS):
        return load_pickle_results(path)
    return load_json_results(path)


def plot_curves(outs: Dict[str, dict], setups, plot_dir: str) -> List[str]:
    """One log-log miss-rate/FPPI figure per setup; returns the files."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    os.makedirs(plot_dir, exist_ok=True)
    files = []
    for setup in setups:
        (h0, h1), (v0, v1) = SETUPS[setup]
        fig, ax = plt.subplots(figsize=(6, 5))
        for name, out in outs.items():
            curve = out['curves'][setup]
            keep = curve['fppi'] > 0
            miss = np.maximum(curve['miss_rate'][keep], PLOT_MR_FLOOR)
            ax.step(curve['fppi'][keep], miss, where='post',
                    label=f'{name} (MR {100 * out["MR"][setup]:.2f}%)')
        ax.axvspan(FPPI_REFS[0], FPPI_REFS[-1], color='0.92', zorder=0,
                   label='MR^-2 range 1e-2..1')
        ax.set_xscale('log')
        ax.set_yscale('log')
        ax.set_ylim(PLOT_MR_FLOOR, 1.05)
        height = f'>= {h0:g}' if h1 >= 1e9 else f'{h0:g}-{h1:g}'
        vis = f'>= {v0:g}' if v1 >= 1e9 else f'{v0:g}-{v1:g}'
        ax.set_title(f'CityPersons {setup} (height {height} px, '
                     f'visibility {vis})', fontsize=9)
        ax.set_xlabel('false positives per image')
        ax.set_ylabel('miss rate')
        ax.grid(True, which='both', alpha=0.3)
        ax.legend(loc='lower left', fontsize=8)
        fig.tight_layout()
        out_file = osp.join(plot_dir, f'{setup}.png')
        fig.savefig(out_file, dpi=120)
        plt.close(fig)
        files.append(out_file)
    return files


def main(argv=None) -> Dict[str, dict]:
    args = parse_args(argv)
    gts = load_citypersons_gt(args.gt)
    names = args.labels or [osp.basename(p) for p in args.results]
    outs = {}
    for name, path in zip(names, args.results):
        preds = load_results(path)
        for pred in preds:
            if pred.img_id not in gts:
                raise ValueError(f'{path}: image id {pred.img_id} is not in '
                                 f'the annotation file {args.gt}')
        print(f'Scoring {path} ({len(preds)} images with detections)')
        outs[name] = evaluate_citypersons(
            gts, preds, setups=args.setups, iou_thr=args.iou_thr,
            max_dets=args.max_dets, source=f'the annotation file {args.gt}',
            show_progress=True)
    print(f'\nCityPersons MR^-2 in % (lower is better), IoU >= '
          f'{args.iou_thr}, {len(gts)} images ({args.gt})\n')
    print('| results | ' + ' | '.join(args.setups) + ' |')
    print('|:--------|' + '---:|' * len(args.setups))
    for name, out in outs.items():
        cells = [
            'n/a' if np.isnan(out['MR'][s]) else f'{100 * out["MR"][s]:.2f}'
            for s in args.setups
        ]
        print(f'| {name} | ' + ' | '.join(cells) + ' |')
    if args.plot_dir:
        files = plot_curves(outs, args.setups, args.plot_dir)
        print(f'\nMiss-rate/FPPI curves written to {", ".join(files)}')
    return outs


if __name__ == '__main__':
    main()
