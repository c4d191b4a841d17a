"""Score saved CrowdHuman predictions offline: AP50, mMR, recall (and JI).

    python tools/analysis_tools/eval_crowdhuman.py GT_ODGT RESULTS \
        [RESULTS ...]
        [--img-dir DIR] [--trust-result-sizes] [--body full|visible|head]
        [--iou-thr 0.5] [--mr-range -2|-4] [--ji] [--plot FILE.png]
        [--labels NAME ...]

RESULTS is either the pickle written by ``tools/test.py --out`` (a list of
dicts with ``img_id``, ``ori_shape`` and ``pred_instances`` holding
``bboxes`` xyxy and ``scores``) or a CrowdDet-style file (``.odgt`` or
``.json``: one JSON record per line, or one JSON list of records)
``{"ID", "height"?, "width"?, "dtboxes": [{"box": [x, y, w, h],
"score"}]}``.

Image sizes decide the clipping of every box, hence the score, and the
official ``.odgt`` has none, so they never come from an unchecked claim of a
results file:

* with ``--img-dir`` every size is read from the header of
  ``--img-dir/<ID>.jpg`` (the size the image decodes to: EXIF orientation
  applied, as mmcv's loader does), and a results file that claims another
  size (``height``/``width``, or a pickle's ``ori_shape``) is refused, naming
  the file, the line or entry, and both sizes;
* without ``--img-dir`` any results file is refused (a CrowdDet-style
  file's sizes come from another code base, a pickle's ``ori_shape`` could
  have been edited, and neither can be checked) unless
  ``--trust-result-sizes`` is given; the table then says the sizes were
  claimed and unchecked.

IDs that are paths are refused, so no file outside ``--img-dir`` is opened.
Pickles are loaded with an allow-list
(``mmlla.evaluation.functional.load_results_pickle``): one that names any
other global (code to run) is refused before anything runs. A results file
is refused, with its name and the line (or entry, or record) at fault, when
it is not JSON, holds something other than records, or a record has
NaN/infinite/non-numeric boxes or scores, a box that is not 4 numbers, a
detection without ``score``, box and score counts that differ, or an image
ID twice. The numbers are those of the ``CrowdHumanMRMetric``
(``docs/evaluation.md``), printed in percent; with ``--plot`` the
miss-rate/FPPI curves of all result files are drawn on one log-log figure.
Every image of GT_ODGT is evaluated: an image a results file has no record
for counts as an image without detections (a warning gives the counts).
"""
import argparse
import glob
import json
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np

from mmlla.datasets.crowdhuman_odgt_dataset import read_image_header
from mmlla.datasets.formats.common import (check_image_id, decode_utf8,
                                           loads_json_line, short_repr,
                                           split_json_lines)
from mmlla.evaluation.functional import (MR_REFERENCES, ImageGT, Prediction,
                                         check_iou_thr, evaluate_crowdhuman,
                                         load_crowdhuman_gt,
                                         load_results_pickle)

PICKLE_EXTS = ('.pkl', '.pickle')
IMAGE_EXTS = ('.jpg', '.jpeg', '.png')
# Where the sizes of a results file came from (table column).
SIZES_FROM_IMAGES = 'images'
SIZES_CLAIMED = 'claimed, unchecked'

# (location, claimed (h, w) or None, prediction without its size)
Located = Tuple[str, Optional[Tuple[int, int]], Prediction]


def _iou_thr(text: str) -> float:
    try:
        return check_iou_thr(float(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='CrowdHuman AP50 / mMR / recall of saved predictions')
    parser.add_argument('gt', help='annotation .odgt file')
    parser.add_argument(
        'results', nargs='+',
        help='predictions: tools/test.py --out .pkl, or CrowdDet-style '
        '.odgt/.json')
    parser.add_argument(
        '--img-dir',
        help='images (<ID>.jpg): every image size is read from them and '
        'the sizes a results file claims are checked against them')
    parser.add_argument(
        '--trust-result-sizes', action='store_true',
        help='without --img-dir, score CrowdDet-style files with the '
        '"height"/"width" they claim (unchecked: they decide the clipping)')
    parser.add_argument(
        '--body', default='full', choices=['full', 'visible', 'head'],
        help='evaluated box (fbox, vbox or hbox)')
    parser.add_argument('--iou-thr', type=_iou_thr, default=0.5,
                        help='matching IoU threshold (strict), in (0, 1)')
    parser.add_argument(
        '--mr-range', default='-2', choices=sorted(MR_REFERENCES),
        help='FPPI range of the log-average miss rate: 1e-2..1 or 1e-4..1')
    parser.add_argument('--ji', action='store_true',
                        help="also CrowdDet's Jaccard index")
    parser.add_argument('--plot', help='write the miss-rate/FPPI curves here')
    parser.add_argument(
        '--labels', nargs='+',
        help='legend/table names of the result files (default: file names)')
    args = parser.parse_args(argv)
    if args.labels and len(args.labels) != len(args.results):
        parser.error('--labels needs one name per results file')
    return args


def _image_size(img_dir: str, img_id: str, loc: str) -> Tuple[int, int]:
    """(height, width) the image decodes to, from its header."""
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
                raise ValueError(f'{loc}: image {candidate} cannot be read '
                                 f'({e})') from None
            return height, width
    raise FileNotFoundError(f'{loc}: no image {img_id}.jpg (or .jpeg, .png) '
                            f'in --img-dir {img_dir}')


def _number(value, what: str, loc: str) -> float:
    """A finite JSON number (not a string, not a bool), or a ValueError."""
    out = float('nan')
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            out = float(value)
        except OverflowError:  # an integer beyond the float range
            pass
    if not np.isfinite(out):
        raise ValueError(f'{loc}: {what} must be a finite number, got '
                         f'{short_repr(value)}')
    return out


def _pickle_entries(path: str) -> List[Located]:
    """``tools/test.py --out`` entries, located ``<file>: entry <k>``.

    Loaded with :func:`load_results_pickle`: a pickle that names anything
    but containers, scalars, numeric arrays and tensors is refused
    (``UnsafePickleError`` naming the file and the global).
    """
    results = load_results_pickle(path)
    if not isinstance(results, list):
        raise ValueError(f'{path}: not a list of detection results (got a '
                         f'{type(results).__name__})')
    located = []
    for k, sample in enumerate(results):
        loc = f'{path}: entry {k}'
        pred = Prediction.from_data_sample(sample, loc)
        reason = check_image_id(pred.img_id)
        if reason is not None:
            raise ValueError(f'{loc}: image ID {pred.img_id[:60]!r} '
                             f'{reason}')
        located.append((loc, pred.img_shape,
                        Prediction(pred.img_id, None,
                                   pred.bboxes.astype(np.float64),
                                   pred.scores.astype(np.float64))))
    return located


def _crowddet_record(rec, loc: str) -> Located:
    """One CrowdDet-style record, its claimed size (or None) unchecked."""
    if not isinstance(rec, dict):
        raise ValueError(f'{loc}: a record must be a JSON object, got '
                         f'{short_repr(rec)}')
    if 'ID' not in rec or 'dtboxes' not in rec:
        raise ValueError(f'{loc}: a record needs "ID" and "dtboxes"')
    raw_id = rec['ID']
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
        raise ValueError(f'{loc}: "ID" must be a string or an integer, got '
                         f'{short_repr(raw_id)}')
    img_id = str(raw_id)
    reason = check_image_id(img_id)
    if reason is not None:
        raise ValueError(f'{loc}: image ID {img_id[:60]!r} {reason}')
    if not isinstance(rec['dtboxes'], list):
        raise ValueError(f'{loc}: "dtboxes" must be a list')
    claimed = None
    if 'height' in rec or 'width' in rec:
        if 'height' not in rec or 'width' not in rec:
            raise ValueError(f'{loc}: "height" and "width" come together')
        h = _number(rec['height'], '"height"', loc)
        w = _number(rec['width'], '"width"', loc)
        if h < 1 or w < 1 or h != int(h) or w != int(w):
            raise ValueError(f'{loc}: "height"/"width" must be positive '
                             f'integers, got {h:g} x {w:g}')
        claimed = (int(h), int(w))
    dets = rec['dtboxes']
    boxes = np.empty((len(dets), 4), dtype=np.float64)
    scores = np.empty(len(dets), dtype=np.float64)
    for j, det in enumerate(dets):
        if not isinstance(det, dict):
            raise ValueError(f'{loc}: dtboxes[{j}] must be an object, got '
                             f'{short_repr(det)}')
        box = det.get('box')
        if not isinstance(box, list) or len(box) != 4:
            raise ValueError(f'{loc}: dtboxes[{j}] needs "box": [x, y, w, h] '
                             f'(4 numbers), got {short_repr(box)}')
        boxes[j] = [_number(v, f'dtboxes[{j}].box', loc) for v in box]
        if 'score' not in det:
            raise ValueError(f'{loc}: dtboxes[{j}] has no "score"')
        scores[j] = _number(det['score'], f'dtboxes[{j}].score', loc)
    with np.errstate(over='ignore'):
        boxes[:, 2:] += boxes[:, :2]  # xywh -> xyxy
    if not np.isfinite(boxes).all():  # x + w overflowed
        j = int(np.flatnonzero(~np.isfinite(boxes).all(axis=1))[0])
        raise ValueError(f'{loc}: dtboxes[{j}].box corner x + w or y + h is '
                         'not finite')
    return loc, claimed, Prediction(img_id, None, boxes, scores)


def _crowddet_records(path: str) -> List[Located]:
    """CrowdDet-style records (``.odgt`` / ``.json``), located.

    One JSON value for the whole file (a record or a list of records), or
    one record per line (lines end at ``\\n`` only). Errors name the file
    and the line (or the record's index in a JSON list).
    """
    with open(path, 'rb') as f:
        text = decode_utf8(f.read(), path, ValueError)
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
        raise ValueError(f'{path}: not a JSON record or list of records '
                         f'(got {short_repr(records)})')
    else:
        for lineno, line in split_json_lines(text):
            loc = f'{path}:{lineno}'
            located.append((loc, loads_json_line(line, loc, ValueError)))
    return [_crowddet_record(rec, loc) for loc, rec in located]


def _with_sizes(located: List[Located], path: str, img_dir: Optional[str],
                trust: bool) -> Tuple[List[Prediction], str]:
    """Give every prediction its image size; refuse unchecked claims.

    Returns:
        tuple[list[Prediction], str]: The predictions and where their sizes
        came from (:data:`SIZES_FROM_IMAGES` or :data:`SIZES_CLAIMED`).
    """
    preds, seen = [], {}
    for loc, claimed, pred in located:
        if pred.img_id in seen:
            raise ValueError(f'{loc}: image ID {pred.img_id!r} already has '
                             f'predictions ({seen[pred.img_id]})')
        seen[pred.img_id] = loc
        if img_dir is not None:
            shape = _image_size(img_dir, pred.img_id, loc)
            if claimed is not None and tuple(claimed) != tuple(shape):
                raise ValueError(
                    f'{loc}: image {pred.img_id!r} is {shape[0]} x '
                    f'{shape[1]} (height x width) in {img_dir}, but the '
                    f'results file says {claimed[0]} x {claimed[1]}: sizes '
                    'decide the clipping, so the score would be wrong')
        elif claimed is None:
            raise ValueError(f'{loc}: image {pred.img_id!r} has no "height"/'
                             '"width"; pass --img-dir to read them from the '
                             'images')
        elif not trust:
            raise ValueError(
                f'{loc}: the image sizes of {path} cannot be checked: pass '
                '--img-dir (sizes are read from the images and the claimed '
                'ones checked), or --trust-result-sizes to score with the '
                'claimed sizes')
        else:
            shape = claimed
        preds.append(pred._replace(img_shape=tuple(shape)))
    return preds, SIZES_FROM_IMAGES if img_dir is not None else SIZES_CLAIMED


def load_pickle_results(path: str,
                        img_dir: Optional[str] = None,
                        trust_sizes: bool = False) -> List[Prediction]:
    """Predictions from a ``tools/test.py --out`` pickle.

    Sizes: from ``img_dir`` (the pickle's ``ori_shape`` must agree); without
    it, the pickle's ``ori_shape`` only with ``trust_sizes`` (a pickle, like
    any results file, could lie about them).
    """
    return _with_sizes(_pickle_entries(path), path, img_dir, trust_sizes)[0]


def load_crowddet_results(path: str,
                          img_dir: Optional[str] = None,
                          trust_sizes: bool = False) -> List[Prediction]:
    """Predictions from CrowdDet-style records (``.odgt`` / ``.json``).

    Sizes: from ``img_dir`` (claimed ``height``/``width`` must agree); without
    it, the claimed ones only with ``trust_sizes``.
    """
    return _with_sizes(_crowddet_records(path), path, img_dir,
                       trust_sizes)[0]


def load_results(path: str, img_dir: Optional[str] = None,
                 trust_sizes: bool = False
                 ) -> Tuple[List[Prediction], str]:
    """Predictions of a results file and where their sizes came from."""
    if path.endswith(PICKLE_EXTS):
        return _with_sizes(_pickle_entries(path), path, img_dir, trust_sizes)
    return _with_sizes(_crowddet_records(path), path, img_dir, trust_sizes)


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
        preds, sizes = load_results(path, args.img_dir,
                                    args.trust_result_sizes)
        check_ids(preds, gts, path, args.gt)
        origin = ('the images' if sizes == SIZES_FROM_IMAGES else
                  'the results file, unchecked')
        print(f'Scoring {path} ({len(preds)} images, sizes from {origin})')
        if not preds:
            print(f'Warning: {path} holds no prediction: all {len(gts)} '
                  f'images of {args.gt} are evaluated as images without '
                  'detections')
        outs[name] = evaluate_crowdhuman(
            gts, preds, iou_thr=args.iou_thr, mr_range=args.mr_range,
            with_ji=args.ji, source=f'the annotation file {args.gt}',
            show_progress=True)
        outs[name]['sizes'] = sizes
        missing = outs[name]['num_imgs'] - outs[name]['num_predicted']
        if missing and preds:
            print(f'Warning: {missing} of the {outs[name]["num_imgs"]} '
                  f'images of {args.gt} have no prediction in {path} '
                  f'({outs[name]["num_predicted"]} have): they are '
                  'evaluated as images without detections')
    print(f'\n{args.body} box, IoU > {args.iou_thr}, MR{args.mr_range} '
          f'({args.gt})\n')
    ji = ' JI |' if args.ji else ''
    print(f'| results | images | AP50 | mMR | recall |{ji} sizes |')
    print(f'|:--------|-------:|-----:|----:|-------:|{"---:|" if ji else ""}'
          ':------|')
    for name, out in outs.items():
        ji = f' {100 * out["JI"]:.2f} |' if args.ji else ''
        print(f'| {name} | {out["num_imgs"]} | {100 * out["AP50"]:.2f} | '
              f'{100 * out["mMR"]:.2f} | {100 * out["recall"]:.2f} |{ji} '
              f'{out["sizes"]} |')
    if args.plot:
        plot_curves(outs, args.plot, args.mr_range)
        print(f'\nMiss-rate/FPPI curves written to {args.plot}')
    return outs


if __name__ == '__main__':
    main()
