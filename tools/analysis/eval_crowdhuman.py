"""Score saved CrowdHuman predictions offline: AP50, mMR and recall.

    python tools/analysis/eval_crowdhuman.py GT_ODGT RESULTS [RESULTS ...]
        [--body full|visible|head] [--iou-thr 0.5] [--mr-range -2|-4]
        [--img-dir DIR] [--plot FILE.png] [--labels NAME ...]

RESULTS is either the pickle written by ``tools/test.py --out`` (a list of
dicts with ``img_id``, ``ori_shape`` and ``pred_instances`` holding
``bboxes`` xyxy and ``scores``) or a CrowdDet-style file (``.odgt`` or
``.json``: one JSON record per line, or one JSON list of records)
``{"ID", "height"?, "width"?, "dtboxes": [{"box": [x, y, w, h],
"score"}]}``. When a record has no height/width they are read from the
header of ``--img-dir/<ID>.jpg`` (the size the image decodes to: EXIF
orientation applied, as mmcv's loader does); IDs that are paths are refused,
so no file outside ``--img-dir`` is opened. Pickles are loaded with an
allow-list (``mmlla.evaluation.functional.load_results_pickle``): one that
names any other global (code to run) is refused before anything runs. The
numbers are those of the ``CrowdHumanMRMetric`` (``docs/evaluation.md``),
printed in percent; with ``--plot`` the miss-rate/FPPI curves of all result
files are drawn on one log-log figure. Every image of GT_ODGT is evaluated:
an image a results file has no record for counts as an image without
detections (a warning says so).
"""
import argparse
import glob
import json
import os.path as osp
import sys
from typing import Dict, List, Optional

import numpy as np

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO_ROOT)

from mmlla.datasets.crowdhuman_odgt_dataset import (  # noqa: E402
    ODGTFormatError, check_image_id, decode_utf8, read_image_header,
    split_json_lines)
from mmlla.evaluation.functional import (  # noqa: E402
    MR_REFERENCES, ImageGT, Prediction, evaluate_crowdhuman,
    load_crowdhuman_gt, load_results_pickle)

PICKLE_EXTS = ('.pkl', '.pickle')
IMAGE_EXTS = ('.jpg', '.jpeg', '.png')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='CrowdHuman AP50 / mMR / recall of saved predictions')
    parser.add_argument('gt', help='annotation .odgt file')
    parser.add_argument(
        'results', nargs='+',
        help='predictions: tools/test.py --out .pkl, or CrowdDet-style '
        '.odgt/.json')
    parser.add_argument(
        '--body', default='full', choices=['full', 'visible', 'head'],
        help='evaluated box (fbox, vbox or hbox)')
    parser.add_argument('--iou-thr', type=float, default=0.5)
    parser.add_argument(
        '--mr-range', default='-2', choices=sorted(MR_REFERENCES),
        help='FPPI range of the log-average miss rate: 1e-2..1 or 1e-4..1')
    parser.add_argument(
        '--img-dir',
        help='images (<ID>.jpg), for records without height/width')
    parser.add_argument('--plot', help='write the miss-rate/FPPI curves here')
    parser.add_argument(
        '--labels', nargs='+',
        help='legend/table names of the result files (default: file names)')
    args = parser.parse_args(argv)
    if args.labels and len(args.labels) != len(args.results):
        parser.error('--labels needs one name per results file')
    return args


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, 'detach'):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _image_size(img_dir: Optional[str], img_id: str, path: str):
    """(height, width) the image decodes to, from its header."""
    if img_dir is None:
        raise ValueError(f'{path}: image {img_id!r} has no "height"/"width"; '
                         'pass --img-dir to read them from the images')
    # The caller checked img_id (check_image_id): every candidate lies in
    # img_dir.
    candidates = [osp.join(img_dir, img_id + ext) for ext in IMAGE_EXTS]
    candidates += sorted(glob.glob(osp.join(glob.escape(img_dir),
                                            glob.escape(img_id) + '.*')))
    for candidate in candidates:
        if osp.isfile(candidate):
            try:
                width, height, _ = read_image_header(candidate)
            except (OSError, SyntaxError, ValueError) as e:
                raise ValueError(f'{path}: image {candidate} cannot be read '
                                 f'({e})') from None
            return height, width
    raise FileNotFoundError(f'{path}: image {img_id!r} has no "height"/'
                            f'"width" and no {img_id}.jpg in {img_dir}')


def load_pickle_results(path: str) -> List[Prediction]:
    """Predictions from a ``tools/test.py --out`` pickle.

    Loaded with :func:`load_results_pickle`: a pickle that names anything
    but containers, scalars, numeric arrays and tensors is refused
    (``UnsafePickleError`` naming the file and the global).
    """
    results = load_results_pickle(path)
    if not isinstance(results, list):
        raise ValueError(f'{path}: not a list of detection results (got a '
                         f'{type(results).__name__})')
    preds = []
    for k, sample in enumerate(results):
        try:
            pred = sample['pred_instances']
            h, w = sample['ori_shape'][:2]
            preds.append(
                Prediction(
                    str(sample['img_id']), (int(h), int(w)),
                    _to_numpy(pred['bboxes']).astype(np.float64).reshape(
                        -1, 4),
                    _to_numpy(pred['scores']).astype(np.float64).reshape(
                        -1)))
        except (KeyError, TypeError, ValueError, IndexError,
                OverflowError) as e:
            raise ValueError(f'{path}: entry {k} is not a detection result '
                             f'with img_id, ori_shape and pred_instances '
                             f'({e!r})') from None
    return preds


def _number(value, what: str, loc: str) -> float:
    """A finite JSON number, or a ValueError naming ``loc``."""
    try:
        if isinstance(value, bool):
            raise TypeError
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f'{loc}: {what} must be a finite number, got '
                         f'{str(value)[:60]}') from None
    if not np.isfinite(out):
        raise ValueError(f'{loc}: {what} must be a finite number, got '
                         f'{str(value)[:60]}')
    return out


def _crowddet_prediction(rec, loc: str,
                         img_dir: Optional[str]) -> Prediction:
    """One CrowdDet-style record as a :class:`Prediction`."""
    if not isinstance(rec, dict) or 'ID' not in rec or 'dtboxes' not in rec:
        raise ValueError(f'{loc}: a record needs "ID" and "dtboxes"')
    img_id = str(rec['ID'])
    reason = check_image_id(img_id)
    if reason is not None:
        raise ValueError(f'{loc}: image ID {img_id[:60]!r} {reason}')
    if not isinstance(rec['dtboxes'], list):
        raise ValueError(f'{loc}: "dtboxes" must be a list')
    if 'height' in rec and 'width' in rec:
        h = _number(rec['height'], '"height"', loc)
        w = _number(rec['width'], '"width"', loc)
        if h < 1 or w < 1:
            raise ValueError(f'{loc}: "height"/"width" must be positive, got '
                             f'{h:g} x {w:g}')
        shape = (int(h), int(w))
    else:
        shape = _image_size(img_dir, img_id, loc)
    boxes = np.empty((len(rec['dtboxes']), 4), dtype=np.float64)
    scores = np.empty(len(rec['dtboxes']), dtype=np.float64)
    for j, det in enumerate(rec['dtboxes']):
        box = det.get('box') if isinstance(det, dict) else None
        if not isinstance(box, list) or len(box) != 4:
            raise ValueError(f'{loc}: dtboxes[{j}] needs "box": [x, y, w, h]')
        boxes[j] = [_number(v, f'dtboxes[{j}].box', loc) for v in box]
        scores[j] = _number(det.get('score'), f'dtboxes[{j}].score', loc)
    boxes[:, 2:] += boxes[:, :2]  # xywh -> xyxy
    return Prediction(img_id, shape, boxes, scores)


def load_crowddet_results(path: str,
                          img_dir: Optional[str] = None) -> List[Prediction]:
    """Predictions from CrowdDet-style records (``.odgt`` / ``.json``).

    One JSON value for the whole file (a record or a list of records), or
    one record per line (lines end at ``\\n`` only). Errors name the file
    and the line (or the record's index in a JSON list).
    """
    with open(path, 'rb') as f:
        try:
            text = decode_utf8(f.read(), path)
        except ODGTFormatError as e:
            raise ValueError(str(e)) from None
    located = []
    try:
        records = json.loads(text)
    except (ValueError, RecursionError):
        records = None
    if isinstance(records, dict):
        located = [(f'{path}:1', records)]
    elif isinstance(records, list):
        located = [(f'{path}: record {k}', r) for k, r in enumerate(records)]
    elif records is not None:
        raise ValueError(f'{path}: not a JSON record or list of records')
    else:
        for lineno, line in split_json_lines(text):
            try:
                located.append((f'{path}:{lineno}', json.loads(line)))
            except (ValueError, RecursionError) as e:
                raise ValueError(f'{path}:{lineno}: not valid JSON '
                                 f'({e})') from None
    return [_crowddet_prediction(rec, loc, img_dir) for loc, rec in located]


def load_results(path: str, img_dir: Optional[str] = None
                 ) -> List[Prediction]:
    if path.endswith(PICKLE_EXTS):
        return load_pickle_results(path)
    return load_crowddet_results(path, img_dir)


def check_ids(preds: List[Prediction], gts: Dict[str, ImageGT], path: str,
              gt_path: str) -> None:
    for pred in preds:
        if pred.img_id not in gts:
            raise ValueError(f'{path}: image ID {pred.img_id!r} is not in '
                             f'the annotation file {gt_path}')


def plot_curves(curves: Dict[str, dict], out_file: str,
                mr_range: str) -> None:
    """Miss rate against FPPI, log-log, one line per result file."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    refs = MR_REFERENCES[mr_range]
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, out in curves.items():
        fppi, mr = out['fppi'], out['miss_rate']
        keep = fppi > 0
        ax.step(fppi[keep], mr[keep], where='post',
                label=f'{name} (mMR {100 * out["mMR"]:.2f}%)')
    ax.axvspan(refs[0], refs[-1], color='0.92', zorder=0,
               label=f'mMR range 1e{mr_range}..1')
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.set_xlabel('false positives per image')
    ax.set_ylabel('miss rate')
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(loc='lower left', fontsize=8)
    fig.tight_layout()
    fig.savefig(out_file, dpi=120)
    plt.close(fig)


def main(argv=None) -> Dict[str, dict]:
    args = parse_args(argv)
    gts = load_crowdhuman_gt(args.gt, args.body)
    names = args.labels or [osp.basename(p) for p in args.results]
    outs = {}
    for name, path in zip(names, args.results):
        preds = load_results(path, args.img_dir)
        check_ids(preds, gts, path, args.gt)
        print(f'Scoring {path} ({len(preds)} images)')
        outs[name] = evaluate_crowdhuman(
            gts, preds, iou_thr=args.iou_thr, mr_range=args.mr_range,
            source=f'the annotation file {args.gt}', show_progress=True)
        missing = outs[name]['num_imgs'] - outs[name]['num_predicted']
        if missing:
            print(f'Warning: {missing} of the {outs[name]["num_imgs"]} '
                  f'images of {args.gt} have no prediction in {path}: they '
                  'are evaluated as images without detections')
    print(f'\n{args.body} box, IoU > {args.iou_thr}, MR{args.mr_range} '
          f'({args.gt})\n')
    print('| results | images | AP50 | mMR | recall |')
    print('|:--------|-------:|-----:|----:|-------:|')
    for name, out in outs.items():
        print(f'| {name} | {out["num_imgs"]} | {100 * out["AP50"]:.2f} | '
              f'{100 * out["mMR"]:.2f} | {100 * out["recall"]:.2f} |')
    if args.plot:
        plot_curves(outs, args.plot, args.mr_range)
        print(f'\nMiss-rate/FPPI curves written to {args.plot}')
    return outs


if __name__ == '__main__':
    main()
