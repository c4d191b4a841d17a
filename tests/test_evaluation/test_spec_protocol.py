"""docs/algorithms.md §6 (evaluation), rule by rule, against a restatement.

``spec_evaluate`` below restates the protocol in plain Python loops, written
from the text of §6 and not from ``mmlla.evaluation``: it shares no code with
it (float64 arithmetic, no vectorisation, its own ignore rule). The
hand-made cases pin each rule with numbers worked out in the comments; the
random cases compare the whole pipeline with the restatement.
"""
import math
import os.path as osp
import sys

import numpy as np
import pytest

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from crowdhuman_cases import (oracle_unrounded, random_case,  # noqa: E402
                              write_odgt)

from mmlla.evaluation.functional import (  # noqa: E402
    MR_REFERENCES, Prediction, evaluate_crowdhuman, load_crowdhuman_gt)

# §6: "the 9 reference FPPI values 0.0100, 0.0178, 0.0316, 0.0562, 0.1000,
# 0.1778, 0.3162, 0.5623, 1.000".
SPEC_REFS = (0.0100, 0.0178, 0.0316, 0.0562, 0.1000, 0.1778, 0.3162, 0.5623,
             1.000)

# ------------------------------------------------------- the restatement


def spec_role(box):
    """'person', 'background' (matched like an ignore region, counted as
    GT) or 'ignore': a tag neither person nor background, or a non-zero
    extra.ignore."""
    if box.get('extra', {}).get('ignore', 0) != 0:
        return 'ignore'
    if box['tag'] in ('person', 'background'):
        return box['tag']
    return 'ignore'


def spec_clip(box, w, h):
    """x1, y1 into [0, W-1] / [0, H-1]; x2, y2 into [0, W] / [0, H]."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return (min(max(x1, 0.0), w - 1.0), min(max(y1, 0.0), h - 1.0),
            min(max(x2, 0.0), float(w)), min(max(y2, 0.0), float(h)))


def spec_area(b):
    return (b[2] - b[0]) * (b[3] - b[1])  # no "+1"


def spec_inter(a, b):
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    return max(iw, 0.0) * max(ih, 0.0)


def spec_iou(a, b):
    union = spec_area(a) + spec_area(b) - spec_inter(a, b)
    return spec_inter(a, b) / union if union > 0 else 0.0


def spec_ioa(det, region):
    """Intersection over the detection's own area."""
    return spec_inter(det, region) / spec_area(det) if spec_area(
        det) > 0 else 0.0


def spec_evaluate(records, preds, refs=SPEC_REFS, thr=0.5):
    """AP50, mMR, recall of ``preds`` on the GT file ``records``.

    Args:
        records: The .odgt records (the whole ground-truth file).
        preds: ``{img_id: ((h, w), boxes xyxy, scores)}``; an image may have
            no entry.

    Returns:
        dict: AP50, mMR, recall, num_gts and the kept list [(score, tp)].
    """
    kept = []
    num_gts = 0
    for rec in records:
        gts = []
        for box in rec['gtboxes']:
            x, y, bw, bh = box['fbox']
            gts.append((spec_role(box), (x, y, x + bw, y + bh)))
        num_gts += sum(role != 'ignore' for role, _ in gts)
        if str(rec['ID']) not in preds:
            continue
        (h, w), boxes, scores = preds[str(rec['ID'])]
        persons = [spec_clip(b, w, h) for r, b in gts if r == 'person']
        regions = [spec_clip(b, w, h) for r, b in gts if r != 'person']
        taken = [False] * len(persons)
        for i in sorted(range(len(scores)), key=lambda i: -scores[i]):
            det = spec_clip(boxes[i], w, h)
            best, best_iou = None, thr
            for j, gt in enumerate(persons):
                if not taken[j] and spec_iou(det, gt) > best_iou:
                    best, best_iou = j, spec_iou(det, gt)
            if best is not None:
                taken[best] = True
                kept.append((float(scores[i]), True))
            elif any(spec_ioa(det, r) > thr for r in regions):
                pass  # dropped: neither TP nor FP
            else:
                kept.append((float(scores[i]), False))
    kept.sort(key=lambda t: -t[0])
    tp = fp = 0
    recall, precision, fppi = [], [], []
    for _, is_tp in kept:
        tp += is_tp
        fp += not is_tp
        recall.append(tp / num_gts if num_gts else 0.0)
        precision.append(tp / (tp + fp))
        fppi.append(fp / len(records))
    ap = 0.0
    for k in range(1, len(kept)):
        ap += (recall[k] - recall[k - 1]) * (precision[k] +
                                             precision[k - 1]) / 2
    miss = []
    for ref in refs:
        pos = len(kept) - 1
        for k, f in enumerate(fppi):
            if f >= ref:
                pos = k
                break
        miss.append(1.0 - recall[pos] if kept else 1.0)
    prod = 1.0
    for m in miss:
        prod *= m
    return dict(AP50=ap, mMR=prod**(1 / len(refs)),
                recall=recall[-1] if kept else 0.0, num_gts=num_gts,
                kept=kept, miss=miss)


# ------------------------------------------------------------- helpers


def person(x, y, w, h, tag='person', ignore=0):
    # mmdet's loader needs an hbox
    return dict(tag=tag, fbox=[x, y, w, h], hbox=[x, y, w, h],
                extra=dict(ignore=ignore))


def ours(records, preds, tmp_path, **kwargs):
    """mmlla on ``preds`` = {img_id: ((h, w), boxes, scores)}."""
    gts = load_crowdhuman_gt(write_odgt(tmp_path / 'gt.odgt', records))
    return evaluate_crowdhuman(gts, [
        Prediction(i, shape, np.asarray(b, np.float32).reshape(-1, 4),
                   np.asarray(s, np.float32))
        for i, (shape, b, s) in preds.items()], **kwargs)


def both(records, preds, tmp_path):
    """(mmlla, restatement) on the same case; asserts they agree."""
    out = ours(records, preds, tmp_path)
    ref = spec_evaluate(records, preds)
    for key in ('AP50', 'mMR', 'recall'):
        assert out[key] == pytest.approx(ref[key], abs=1e-12), key
    assert out['num_gts'] == ref['num_gts']
    assert out['num_imgs'] == len(records)
    return out, ref


def rows(*r):
    return [list(x[:4]) for x in r], [x[4] for x in r]


def kept_labels(out):
    tp = np.round(out['recall_curve'] * out['num_gts']).astype(int)
    return np.diff(np.concatenate([[0], tp])).tolist()


# ------------------------------------------------------ rule by rule


def test_reference_values_are_the_spec_ones():
    assert MR_REFERENCES['-2'] == SPEC_REFS


def test_background_box_is_an_ignore_region_counted_as_gt(tmp_path):
    # 100 x 100. P1 [0,0,10,10], P2 [0,20,10,30] persons; B [20,0,30,10]
    # tag background; M [50,50,90,90] a mask region.
    records = [dict(ID='a', gtboxes=[
        person(0, 0, 10, 10), person(20, 0, 10, 10, tag='background'),
        person(50, 50, 40, 40, tag='mask', ignore=1), person(0, 20, 10, 10)])]
    boxes, scores = rows(
        [20, 0, 30, 10, .9],  # on B: IoA 1 -> dropped, not TP, not FP
        [0, 0, 10, 10, .8],  # P1 -> TP
        [60, 60, 70, 70, .7],  # inside M -> dropped
        [0, 50, 10, 60, .6],  # nothing -> FP
        [0, 20, 10, 30, .5])  # P2 -> TP
    out, ref = both(records, {'a': ((100, 100), boxes, scores)}, tmp_path)
    # GTs: P1, P2 and B = 3. Kept: TP .8, FP .6, TP .5.
    # recall 1/3, 1/3, 2/3; precision 1, 1/2, 2/3
    # AP = 0 + (2/3 - 1/3) * (1/2 + 2/3) / 2 = 7/36
    assert out['num_gts'] == 3
    assert kept_labels(out) == [1, 0, 1]
    assert out['AP50'] == pytest.approx(7 / 36, abs=1e-12)
    assert out['recall'] == pytest.approx(2 / 3, abs=1e-12)
    # 1 image: fppi 0, 1, 1; every reference (<= 1) first reached at
    # position 1: miss rate 2/3 nine times.
    assert out['mMR'] == pytest.approx(2 / 3, abs=1e-12)
    # mmdet's metric agrees (it counts background boxes the same way).
    f = write_odgt(tmp_path / 'gt_mmdet.odgt', records)
    ap, mr, recall, labels = oracle_unrounded(
        f, [('a', (100, 100), np.asarray(boxes, np.float32),
             np.asarray(scores, np.float32))], tmp_path)
    assert labels.tolist() == [1, 0, 1]
    assert (ap, mr, recall) == pytest.approx((7 / 36, 2 / 3, 2 / 3),
                                             abs=1e-12)


def test_extra_ignore_wins_over_person_and_background_tags(tmp_path):
    # Both boxes are ignore regions (extra.ignore 1): not counted, and a
    # detection on either is dropped; an unknown tag is an ignore region.
    records = [dict(ID='a', gtboxes=[
        person(0, 0, 10, 10, ignore=1),
        person(20, 0, 10, 10, tag='background', ignore=1),
        person(40, 0, 10, 10, tag='crowd'), person(60, 0, 10, 10)])]
    boxes, scores = rows([0, 0, 10, 10, .9], [20, 0, 30, 10, .8],
                         [40, 0, 50, 10, .7], [60, 0, 70, 10, .6])
    out, _ = both(records, {'a': ((50, 100), boxes, scores)}, tmp_path)
    assert out['num_gts'] == 1 and kept_labels(out) == [1]
    assert out['recall'] == 1.0


def test_clipping_of_detections_and_ignore_regions(tmp_path):
    # 100 x 100 (h, w). M1 xyxy [120,0,140,50] lies right of the image:
    # clipped to [99,0,100,50]; the 1 px detection [99,0,100,50] has IoA 1
    # with it (0 unclipped) -> dropped.
    # M2 [0,60,50,100]; the detection [-50,60,50,100] clips to
    # [0,60,50,100]: IoA 1 (unclipped: 2000 / 4000 = .5, not > .5 -> FP).
    records = [dict(ID='a', gtboxes=[
        person(120, 0, 20, 50, tag='mask', ignore=1),
        person(0, 60, 50, 40, tag='mask', ignore=1), person(20, 0, 10, 20)])]
    boxes, scores = rows([99, 0, 100, 50, .9], [-50, 60, 50, 100, .8],
                         [20, 0, 30, 20, .7])
    out, _ = both(records, {'a': ((100, 100), boxes, scores)}, tmp_path)
    assert kept_labels(out) == [1]
    # W and H are not swapped: with (h, w) = (100, 200), M1 is inside the
    # image and unclipped: the 1 px detection is a FP.
    out, _ = both(records, {'a': ((100, 200), boxes, scores)}, tmp_path)
    assert kept_labels(out) == [0, 1]


def test_clipping_x1_y1_to_size_minus_one(tmp_path):
    # 50 x 80 (h, w). GT xyxy [90,10,120,40] is right of the image: x1 ->
    # W - 1 = 79, x2 -> W = 80: [79,10,80,40]. GT [10,60,30,90] is below:
    # y1 -> 49, y2 -> 50: [10,49,30,50]. Detections equal to these match.
    records = [dict(ID='a', gtboxes=[person(90, 10, 30, 30),
                                     person(10, 60, 20, 30)])]
    boxes, scores = rows([79, 10, 80, 40, .9], [10, 49, 30, 50, .8])
    out, _ = both(records, {'a': ((50, 80), boxes, scores)}, tmp_path)
    assert kept_labels(out) == [1, 1]


def test_no_plus_one_in_areas(tmp_path):
    # GT [0,0,10,10], det [0,0,10,20.5]: IoU 100 / 205 = .488 -> FP.
    # With "+1": 121 / (11 * 21.5) = .512 would match.
    records = [dict(ID='a', gtboxes=[person(0, 0, 10, 10)])]
    boxes, scores = rows([0, 0, 10, 20.5, .9])
    out, _ = both(records, {'a': ((100, 100), boxes, scores)}, tmp_path)
    assert kept_labels(out) == [0]


def test_strict_iou_threshold(tmp_path):
    # IoU exactly .5 (100 / 200) is not a match; 100 / 190 is.
    records = [dict(ID='a', gtboxes=[person(0, 0, 10, 10)])]
    out, _ = both(records, {'a': ((100, 100), *rows([0, 0, 10, 20, .9]))},
                  tmp_path)
    assert kept_labels(out) == [0]
    out, _ = both(records, {'a': ((100, 100), *rows([0, 0, 10, 19, .9]))},
                  tmp_path)
    assert kept_labels(out) == [1]


def test_ioa_over_the_detections_own_area(tmp_path):
    # Mask M xyxy [0,0,60,60] (3600).
    # d1 [40,40,50,50] inside M: IoA 1 -> dropped.
    # d2 [50,50,90,90]: inter 100 over its own 1600 = .06 -> FP.
    # d3 [10,10,70,80]: inter 2500 over its own 4200 = .595 -> dropped;
    #    IoU 2500 / 5300 = .47 would keep it as a FP.
    # d4 [0,0,30,60]: inside M, IoA 1 -> dropped; over M's area
    #    1800 / 3600 = .5 (not > .5) would keep it as a FP.
    # d5 [50,0,70,10]: IoA exactly 100 / 200 = .5, not > .5 -> FP.
    records = [dict(ID='a', gtboxes=[
        person(0, 0, 60, 60, tag='mask', ignore=1)])]
    boxes, scores = rows([40, 40, 50, 50, .9], [50, 50, 90, 90, .8],
                         [10, 10, 70, 80, .7], [0, 0, 30, 60, .6],
                         [50, 0, 70, 10, .5])
    out, _ = both(records, {'a': ((200, 200), boxes, scores)}, tmp_path)
    assert kept_labels(out) == [0, 0]  # d2 and d5 are kept (FPs)
    assert out['scores'].tolist() == pytest.approx([.8, .5])


def test_matching_takes_highest_iou_free_person_before_ignore(tmp_path):
    # P1 [0,0,10,10], P2 [2,0,12,10], mask M [0,0,12,10].
    # d1 .9 [1.5,0,11.5,10]: IoU P1 .739, P2 .905 -> P2.
    # d2 .8 [2,0,12,10]: P2 taken; P1 .667 -> P1 (not dropped by M).
    # d3 .7 [0,0,10,10]: both taken; IoA(M) 1 -> dropped.
    records = [dict(ID='x', gtboxes=[
        person(0, 0, 10, 10), person(2, 0, 10, 10),
        person(0, 0, 12, 10, tag='mask', ignore=1)])]
    boxes, scores = rows([1.5, 0, 11.5, 10, .9], [2, 0, 12, 10, .8],
                         [0, 0, 10, 10, .7])
    out, ref = both(records, {'x': ((20, 20), boxes, scores)}, tmp_path)
    assert kept_labels(out) == [1, 1]


def test_scores_are_sorted_globally_and_ap_starts_at_first_point(
        tmp_path):
    # Image a: P [0,0,10,10]; image b: Q [0,0,10,10]. Detections:
    # a: TP .9, FP .3; b: FP .8, TP .7 (each list already sorted).
    # Global list: TP .9, FP .8, TP .7, FP .3
    # recall    .5, .5, 1, 1; precision 1, .5, 2/3, .5
    # AP = 0 + .5 * (.5 + 2/3) / 2 + 0 = 7/24 (no segment from recall 0).
    # Concatenating the images instead (TP, FP, FP, TP) would give
    # .5 * (1/3 + 1/2) / 2 = 5/24.
    records = [dict(ID='a', gtboxes=[person(0, 0, 10, 10)]),
               dict(ID='b', gtboxes=[person(0, 0, 10, 10)])]
    preds = {'a': ((50, 50), *rows([0, 0, 10, 10, .9], [30, 30, 40, 40, .3])),
             'b': ((50, 50), *rows([30, 30, 40, 40, .8], [0, 0, 10, 10, .7]))}
    out, _ = both(records, preds, tmp_path)
    assert kept_labels(out) == [1, 0, 1, 0]
    assert out['AP50'] == pytest.approx(7 / 24, abs=1e-12)


def test_fppi_divides_by_images_of_the_gt_file(tmp_path):
    # 4 images in the file; only 'a' has detections, 'b' an empty list,
    # 'c' no prediction at all, 'd' has no GT. 5 GTs in all.
    # a: TP .9, FP .8, FP .7, TP .6; d: FP .5 (no GT there).
    records = [dict(ID='a', gtboxes=[person(0, 0, 10, 10),
                                     person(20, 0, 10, 10)]),
               dict(ID='b', gtboxes=[person(0, 0, 10, 10)]),
               dict(ID='c', gtboxes=[person(0, 0, 10, 10),
                                     person(20, 0, 10, 10)]),
               dict(ID='d', gtboxes=[])]
    preds = {
        'a': ((50, 50), *rows([0, 0, 10, 10, .9], [30, 30, 40, 40, .8],
                              [40, 40, 50, 50, .7], [20, 0, 30, 10, .6])),
        'b': ((50, 50), [], []),
        'd': ((50, 50), *rows([0, 0, 10, 10, .5])),
    }
    out, ref = both(records, preds, tmp_path)
    assert out['num_imgs'] == 4 and out['num_gts'] == 5
    # fppi = FP / 4: 0, .25, .5, .5, .75; recall .2, .2, .2, .4, .4
    assert out['fppi'].tolist() == [0, .25, .5, .5, .75]
    # refs .01 ... .1778 -> position 1 (fppi .25): miss .8
    # .3162 -> position 2 (.5): .8; .5623 -> position 4 (.75): .6
    # 1.0 -> none reaches it: the last position: .6
    assert out['mr_at_refs'] == pytest.approx([.8] * 7 + [.6] * 2)
    assert out['mMR'] == pytest.approx((.8**7 * .6**2)**(1 / 9), abs=1e-12)
    assert out['recall'] == pytest.approx(.4)


def test_fppi_equal_to_a_reference_is_reached(tmp_path):
    # 100 images, one GT each on image 0; image 0 has FP .9 then TP .8.
    # fppi .01, .01: ref .0100 is reached at position 0 (>=), miss 1; the
    # other refs are reached nowhere: the last position, miss 0.
    records = [dict(ID=f'i{k}', gtboxes=[person(0, 0, 10, 10)] if k == 0
                    else []) for k in range(100)]
    preds = {'i0': ((50, 50), *rows([30, 30, 40, 40, .9],
                                    [0, 0, 10, 10, .8]))}
    out, _ = both(records, preds, tmp_path)
    assert out['mr_at_refs'].tolist() == [1.0] + [0.0] * 8
    assert out['mMR'] == 0.0  # geometric mean with a zero
    # One more image: fppi 1/101 < .01: every reference falls to the last
    # position (miss 0).
    records.append(dict(ID='extra', gtboxes=[]))
    out, _ = both(records, preds, tmp_path)
    assert out['mr_at_refs'].tolist() == [0.0] * 9


def test_geometric_mean_of_nine_miss_rates(tmp_path):
    # 10 images, 10 GTs on image 0 (a row of people); detections alternate
    # so that FPPI crosses the references at known recalls.
    people = [person(12 * k, 0, 10, 10) for k in range(10)]
    records = [dict(ID='i0', gtboxes=people)] + [
        dict(ID=f'i{k}', gtboxes=[]) for k in range(1, 10)]
    dets = []
    score = 1.0
    for k in range(10):  # TP k, then k FPs
        dets.append([12 * k, 0, 12 * k + 10, 10, score])
        score -= 0.01
        for _ in range(k):
            dets.append([0, 50, 10, 60, score])
            score -= 0.01
    out, ref = both(records, {'i0': ((100, 200), *rows(*dets))}, tmp_path)
    miss = ref['miss']
    assert out['mr_at_refs'] == pytest.approx(miss, abs=1e-12)
    assert out['mMR'] == pytest.approx(
        math.exp(sum(math.log(m) for m in miss) / 9), abs=1e-12)
    assert 0 < out['mMR'] < 1


def test_recall_uses_every_detection(tmp_path):
    # A TP at score 1e-4 counts: recall is the end of the list.
    records = [dict(ID='a', gtboxes=[person(0, 0, 10, 10),
                                     person(20, 0, 10, 10)])]
    preds = {'a': ((50, 50), *rows([0, 0, 10, 10, .9],
                                   [20, 0, 30, 10, 1e-4]))}
    out, _ = both(records, preds, tmp_path)
    assert out['recall'] == 1.0


def test_images_without_gt_or_detections_are_legal(tmp_path):
    records = [dict(ID='nogt', gtboxes=[]),
               dict(ID='nodet', gtboxes=[person(0, 0, 10, 10)]),
               dict(ID='nogt_mask', gtboxes=[
                   person(0, 0, 20, 20, tag='mask', ignore=1)])]
    preds = {'nogt': ((50, 50), *rows([0, 0, 10, 10, .9])),
             'nodet': ((50, 50), [], []),
             # on an image with only an ignore region: dropped / FP
             'nogt_mask': ((50, 50), *rows([0, 0, 10, 10, .8],
                                           [30, 30, 40, 40, .7]))}
    out, _ = both(records, preds, tmp_path)
    assert out['num_gts'] == 1 and kept_labels(out) == [0, 0]
    assert out['fppi'].tolist() == [1 / 3, 2 / 3]
    assert (out['AP50'], out['recall']) == (0.0, 0.0)


# ------------------------------------------------------- random cases


@pytest.mark.parametrize('seed', range(40))
def test_random_cases_against_the_restatement(tmp_path, seed):
    """Crowds with persons, background boxes, ignore regions of every kind,
    boxes across the border, images without GT, without detections and
    without any prediction record."""
    rng = np.random.default_rng(seed + 500)
    records, preds = random_case(rng, int(rng.integers(1, 8)),
                                 allow_no_gt=True, p_no_dets=0.2)
    by_id = {i: (shape, b.astype(np.float64).tolist(), s.tolist())
             for i, shape, b, s in preds}
    if len(by_id) > 1 and seed % 3 == 0:
        del by_id[preds[-1][0]]  # an image with no prediction at all
    out, ref = both(records, by_id, tmp_path)
    assert kept_labels(out) == [int(t) for _, t in ref['kept']]
