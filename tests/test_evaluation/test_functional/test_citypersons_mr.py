"""The CityPersons miss rate: hand-computed cases, and a literal restatement
of the benchmark's ``eval_MR_multisetup.py`` on random cases."""
import json
import math

import numpy as np
import pytest

from mmlla.datasets import CityPersonsFormatError
from mmlla.evaluation.functional import (SETUPS, CityPersonsImageGT,
                                         CityPersonsPrediction,
                                         evaluate_citypersons,
                                         load_citypersons_gt,
                                         log_average_miss_rate,
                                         match_citypersons_image,
                                         top_detections)

REFS = [0.0100, 0.0178, 0.0316, 0.0562, 0.1000, 0.1778, 0.3162, 0.5623, 1.0]


def ann(ann_id, img_id, box, height=None, vis=1.0, category=1, ignore=0):
    return dict(id=ann_id, image_id=img_id, category_id=category, iscrowd=0,
                ignore=ignore, bbox=list(box), vis_bbox=list(box),
                height=box[3] if height is None else height, vis_ratio=vis)


def write_gt(path, num_imgs, anns):
    images = [dict(id=i, im_name=f'c_{i:06d}_000019_leftImg8bit.png',
                   height=1024, width=2048) for i in range(1, num_imgs + 1)]
    path.write_text(json.dumps(dict(images=images, annotations=anns)))
    return str(path)


def pred(img_id, *rows):
    """Detections from rows (x, y, w, h, score), as xyxy boxes."""
    a = np.asarray(rows, np.float64).reshape(-1, 5)
    boxes = a[:, :4].copy()
    boxes[:, 2:] += boxes[:, :2]
    return CityPersonsPrediction(img_id, boxes, a[:, 4])


# ------------------------------------------------------------ hand-computed
# 4 images. P1 (h 60, vis 1) and P6 (h 70, vis 0.9) in image 1, P2 (h 90,
# vis 0.5) in image 2, P5 (h 80, vis 1) in image 3, a people group (class 5)
# in image 4. d1 on P1 (0.9), d2 on P2 (0.8), d3 inside the group (0.7), d4
# on nothing in image 3 (0.6), d5 on P5 (0.5).
HAND_ANNS = [
    ann(1, 1, [0, 0, 20, 60]),
    ann(2, 1, [300, 0, 20, 70], vis=0.9),
    ann(3, 2, [0, 0, 30, 90], vis=0.5),
    ann(4, 3, [200, 0, 20, 80]),
    ann(5, 4, [50, 0, 100, 100], category=5),
]
HAND_PREDS = [
    pred(1, (0, 0, 20, 60, 0.9)),
    pred(2, (0, 0, 30, 90, 0.8)),
    pred(4, (60, 10, 20, 60, 0.7)),
    pred(3, (0, 0, 20, 60, 0.6), (200, 0, 20, 80, 0.5)),
]
HAND_MR = {
    # GTs P1, P6, P5: d1 TP, d2 in ignored P2 and d3 in the group dropped,
    # d4 FP (FPPI 1/4), d5 TP; miss 2/3 until FPPI 0.25, then 1/3.
    'Reasonable': (2 / 3)**(6 / 9) * (1 / 3)**(3 / 9),
    # P1, P6 (P5's 80 px > 75): d1 TP, d4 FP, d5 dropped in P5: miss 1/2.
    'Small': 0.5,
    # P2 only: d2 TP, d1 and d5 dropped in ignored P1 / P5, d4 FP.
    'Heavy': 0.0,
    # P6 only (0.9 is in both ranges), never detected; d1, d5 dropped.
    'Partial': 1.0,
    # P1, P6, P5: d1 TP (2/3 missed), d4 FP, d5 TP (1/3).
    'Bare': (2 / 3)**(6 / 9) * (1 / 3)**(3 / 9),
    # P1, P2, P5, P6: d1, d2 TP (1/2), d4 FP, d5 TP (1/4).
    'All': (1 / 2)**(6 / 9) * (1 / 4)**(3 / 9),
}


def test_hand_computed_setups(tmp_path):
    gts = load_citypersons_gt(write_gt(tmp_path / 'gt.json', 4, HAND_ANNS))
    out = evaluate_citypersons(gts, HAND_PREDS)
    assert out['num_gts'] == dict(Reasonable=3, Small=2, Heavy=1, Partial=1,
                                  Bare=3, All=4)
    for setup, expected in HAND_MR.items():
        assert out['MR'][setup] == pytest.approx(expected, abs=1e-12), setup
    curve = out['curves']['Reasonable']
    np.testing.assert_allclose(curve['fppi'], [0, 0.25, 0.25])
    np.testing.assert_allclose(curve['miss_rate'], [2 / 3, 2 / 3, 1 / 3])
    np.testing.assert_allclose(curve['mr_at_refs'], [2 / 3] * 6 + [1 / 3] * 3)
    # prediction order does not matter
    out2 = evaluate_citypersons(gts, HAND_PREDS[::-1])
    assert out2['MR'] == out['MR']


def gt_of(boxes, heights=None, vis=None, ignore=None):
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    n = len(boxes)
    return CityPersonsImageGT(
        boxes, boxes[:, 3] if heights is None else np.asarray(heights, float),
        np.ones(n) if vis is None else np.asarray(vis, float),
        np.zeros(n, bool) if ignore is None else np.asarray(ignore, bool))


def match(gt, rows, setup='Reasonable', **kw):
    p = pred(1, *rows)
    dets, scores = top_detections(p.bboxes, p.scores, kw.pop('max_dets',
                                                              1000))
    return match_citypersons_image(dets, scores, gt, setup, **kw)


def test_iou_threshold_is_inclusive():
    # det [0, 0, 20, 60] vs GT [0, 0, 20, 120] -> IoU exactly 0.5
    _, labels = match(gt_of([[0, 0, 20, 120]]), [(0, 0, 20, 60, 0.9)])
    assert labels.tolist() == [1]
    _, labels = match(gt_of([[0, 0, 20, 121]]), [(0, 0, 20, 60, 0.9)])
    assert labels.tolist() == [0]


def test_ignore_regions_use_the_detections_own_area():
    # a 20x60 detection inside a huge ignore region: IoU ~0.01, IoA 1
    region = gt_of([[0, 0, 1000, 1000]], heights=[1000], ignore=[True])
    _, labels = match(region, [(10, 10, 20, 60, 0.9)])
    assert labels.tolist() == [-1]
    # half of the detection inside: IoA 0.5 >= 0.5 dropped; less: FP
    region = gt_of([[0, 0, 10, 200]], heights=[200], ignore=[True])
    _, labels = match(region, [(0, 0, 20, 60, 0.9), (1, 0, 20, 60, 0.8)])
    assert labels.tolist() == [-1, 0]


def test_best_iou_wins_and_the_last_of_equal_ious():
    # two GTs at IoU 0.6 with d1: the second takes it, so d2 (on the first,
    # IoU 1/3 with the second) is a TP too; with the first taken, a FP
    gt = gt_of([[0, 0, 20, 60], [10, 0, 20, 60]])
    rows = [(5, 0, 20, 60, 0.9), (0, 0, 20, 60, 0.8)]
    _, labels = match(gt, rows)
    assert labels.tolist() == [1, 1]
    # a matched GT is out of reach: the second duplicate is a FP
    _, labels = match(gt_of([[0, 0, 20, 60]]), [(0, 0, 20, 60, 0.9)] * 2)
    assert labels.tolist() == [1, 0]


def test_regular_match_beats_an_ignore_region():
    gt = gt_of([[0, 0, 20, 60], [0, 0, 500, 500]], heights=[60, 500],
               ignore=[False, True])
    _, labels = match(gt, [(0, 0, 20, 60, 0.9), (0, 0, 20, 60, 0.8)])
    # the first matches the person, the second falls in the region
    assert labels.tolist() == [1, -1]


def test_detection_height_filter_has_the_margin():
    gt = gt_of([[0, 0, 20, 60]])
    # Reasonable: heights in [40, 1.25e10); Small: [40, 93.75)
    rows = [(0, 0, 20, 39.9, 0.9), (0, 0, 20, 40, 0.8)]
    scores, labels = match(gt, rows)
    # the 39.9 px one is not evaluated; the 40 px one is (IoU 2/3: a TP)
    assert scores.tolist() == [0.8] and labels.tolist() == [1]
    scores, _ = match(gt, [(0, 0, 20, 93.75, 0.9), (0, 0, 20, 93.7, 0.8)],
                      setup='Small')
    assert scores.tolist() == [0.8]


def test_only_the_best_max_dets_are_evaluated():
    gt = gt_of([[0, 0, 20, 60]])
    rows = [(500, 0, 20, 60, 0.9), (0, 0, 20, 60, 0.5)]
    _, labels = match(gt, rows, max_dets=1)
    assert labels.tolist() == [0]
    _, labels = match(gt, rows, max_dets=2)
    assert labels.tolist() == [0, 1]


def test_setup_ranges_use_the_height_and_vis_ratio_fields():
    # the box is 60 px but its `height` says 45: ignored in Reasonable
    gt = gt_of([[0, 0, 20, 60]], heights=[45])
    _, labels = match(gt, [(0, 0, 20, 60, 0.9)])
    assert labels.tolist() == [-1]
    # bounds are included: vis 0.65 is in Reasonable, Heavy and Partial
    gt = gt_of([[0, 0, 20, 60]], vis=[0.65])
    for setup in ('Reasonable', 'Heavy', 'Partial'):
        assert not gt.ignored_in(setup).any()
    assert gt.ignored_in('Bare').all()


def test_miss_rate_curve_reading():
    # 200 images, 4 GTs; TP, FP x3, TP, FP x100
    scores = [np.linspace(1, 0, 105)]
    labels = [np.array([1, 0, 0, 0, 1] + [0] * 100, np.int8)]
    out = log_average_miss_rate(scores, labels, 4, 200)
    # FPPI 0.015 after 3 FPs: refs 0.01 reads miss 3/4 (the TP at FPPI 0),
    # 0.0178 reads 2/4 (the second TP at FPPI 0.015); the last ref 1 reads
    # the end: 103 FPs = 0.515 <= 0.5623
    expected = [0.75] + [0.5] * 8
    np.testing.assert_allclose(out['mr_at_refs'], expected)
    assert out['MR'] == pytest.approx(math.exp(
        (math.log(0.75) + 8 * math.log(0.5)) / 9))
    # no detection: every miss rate is 1; no GT: NaN
    assert log_average_miss_rate([], [], 3, 10)['MR'] == 1.0
    assert math.isnan(log_average_miss_rate(scores, labels, 0, 200)['MR'])
    # dropped detections neither count as TP nor FP
    dropped = [np.array([-1, 1], np.int8)]
    out = log_average_miss_rate([np.array([0.9, 0.8])], dropped, 1, 200)
    assert out['MR'] == 0.0 and len(out['fppi']) == 1


def test_a_reference_fppi_below_the_first_point_reads_the_empty_curve():
    # 10 images: the first detection is a FP at FPPI 0.1, so the references
    # 0.01 .. 0.0562 precede the curve: miss rate 1 there (the reference
    # code would read its last point, 0)
    out = log_average_miss_rate([np.array([0.9, 0.8])],
                                [np.array([0, 1], np.int8)], 1, 10)
    np.testing.assert_allclose(out['mr_at_refs'], [1] * 4 + [0] * 5)


def test_bad_input_is_refused(tmp_path):
    gts = load_citypersons_gt(write_gt(tmp_path / 'gt.json', 2, HAND_ANNS[:1]))
    with pytest.raises(ValueError, match='image id 7 .* not in'):
        evaluate_citypersons(gts, [pred(7, (0, 0, 1, 1, 0.5))])
    with pytest.raises(ValueError, match='image id 1 has predictions twice'):
        evaluate_citypersons(gts, [pred(1), pred(1)])
    bad = CityPersonsPrediction(1, np.array([[0, 0, np.nan, 1.0]]),
                                np.array([0.5]))
    with pytest.raises(ValueError, match='image 1: detection 0 is not fini'):
        evaluate_citypersons(gts, [bad])
    with pytest.raises(ValueError, match='setups must be names'):
        evaluate_citypersons(gts, [], setups=['Occluded'])
    with pytest.raises(ValueError, match='max_dets'):
        evaluate_citypersons(gts, [], max_dets=0)
    # the setups need `height` and `vis_ratio`: the record is named
    no_vis = dict(HAND_ANNS[0])
    del no_vis['vis_ratio']
    path = write_gt(tmp_path / 'novis.json', 1, [no_vis])
    with pytest.raises(CityPersonsFormatError,
                       match=r'annotations\[0\] \(id 1, image 1\): no '
                       '"vis_ratio"'):
        load_citypersons_gt(path)


# ----------------------------------------------- the reference, restated
# eval_MR_multisetup.py (COCOeval._prepare / computeIoU / iou / evaluateImg /
# accumulate / summarize), restated loop by loop in plain Python: per-image
# GT and detection dicts, the `ignore` of each setup, COCO-style results.


def ref_iou(dts, gts, crowd):
    out = np.zeros((len(dts), len(gts)))
    for j, g in enumerate(gts):
        gx1, gy1, gx2, gy2 = g[0], g[1], g[0] + g[2], g[1] + g[3]
        garea = g[2] * g[3]
        for i, d in enumerate(dts):
            dx1, dy1, dx2, dy2 = d[0], d[1], d[0] + d[2], d[1] + d[3]
            darea = d[2] * d[3]
            w = min(dx2, gx2) - max(dx1, gx1)
            if w <= 0:
                continue
            h = min(dy2, gy2) - max(dy1, gy1)
            if h <= 0:
                continue
            t = w * h
            out[i, j] = t / (darea if crowd[j] else darea + garea - t)
    return out


def ref_evaluate_img(gt, dt, hrng, max_det=1000, thr=0.5, exp_filter=1.25):
    if not gt and not dt:
        return None
    dt = [dt[i] for i in np.argsort([-d['score'] for d in dt],
                                    kind='mergesort')][:max_det]
    ious_all = ref_iou([d['bbox'] for d in dt], [g['bbox'] for g in gt],
                       [g['_ignore'] for g in gt]) if gt and dt else []
    gtind = np.argsort([g['_ignore'] for g in gt], kind='mergesort')
    gt = [gt[i] for i in gtind]
    dtind = [i for i, d in enumerate(dt) if d['bbox'][3] >= hrng[0] /
             exp_filter and d['bbox'][3] < hrng[1] * exp_filter]
    dt = [dt[i] for i in dtind]
    ious = (np.asarray(ious_all)[dtind][:, gtind]
            if len(dtind) and len(ious_all) else [])
    gtm = np.zeros(len(gt))
    dtm = np.zeros(len(dt))
    gt_ig = np.array([g['_ignore'] for g in gt])
    dt_ig = np.zeros(len(dt))
    if len(ious):
        for di, d in enumerate(dt):
            best, bstg, bstm = min(thr, 1 - 1e-10), -2, -2
            for gi, g in enumerate(gt):
                if gtm[gi] > 0:
                    continue
                if bstm != -2 and gt_ig[gi] == 1:
                    break
                if ious[di, gi] < best:
                    continue
                best, bstg = ious[di, gi], gi
                bstm = 1 if gt_ig[gi] == 0 else -1
            if bstg == -2:
                continue
            dt_ig[di] = gt_ig[bstg]
            dtm[di] = gt[bstg]['id']
            if bstm == 1:
                gtm[bstg] = d['id']
    return dict(scores=[d['score'] for d in dt], dtm=dtm, dt_ig=dt_ig,
                gt_ig=gt_ig)


def reference_mr(images, anns, dts, setup):
    (h0, h1), (v0, v1) = SETUPS[setup]
    img_ids = sorted(im['id'] for im in images)
    evals = []
    for img_id in img_ids:
        gt = [dict(a) for a in anns if a['image_id'] == img_id]
        for g in gt:
            g['_ignore'] = 1 if (g['height'] < h0 or g['height'] > h1
                                 or g['vis_ratio'] < v0
                                 or g['vis_ratio'] > v1) else g['ignore']
        dt = [d for d in dts if d['image_id'] == img_id]
        evals.append(ref_evaluate_img(gt, dt, (h0, h1)))
    evals = [e for e in evals if e is not None]
    scores = np.concatenate([e['scores'] for e in evals] + [[]])
    inds = np.argsort(-scores, kind='mergesort')
    dtm = np.concatenate([e['dtm'] for e in evals] + [[]])[inds]
    dt_ig = np.concatenate([e['dt_ig'] for e in evals] + [[]])[inds]
    gt_ig = np.concatenate([e['gt_ig'] for e in evals] + [[]])
    npig = np.count_nonzero(gt_ig == 0)
    if npig == 0:
        return -1.0
    keep = dt_ig == 0
    tp = np.cumsum(np.logical_and(dtm, keep)[keep]).astype(float)
    fp = np.cumsum(np.logical_and(np.logical_not(dtm), keep)[keep]).astype(
        float)
    recall = (tp / npig).tolist()
    fppi = fp / len(img_ids)
    q = [0.0] * len(REFS)
    try:
        for ri, pi in enumerate(np.searchsorted(fppi, REFS, side='right') -
                                1):
            q[ri] = recall[pi]
    except IndexError:
        pass
    mrs = 1 - np.array(q)
    with np.errstate(divide='ignore'):
        return float(np.exp(np.mean(np.log(mrs))))


def random_case(rng, num_imgs):
    """Boxes on a coarse grid (equal IoUs), few score values (ties)."""
    anns, preds, dts = [], [], []
    for img_id in range(1, num_imgs + 1):
        for _ in range(int(rng.integers(0, 6))):
            box = [float(v) for v in rng.integers(0, 20, 4) * 5]
            box[2:] = [max(box[2], 5.0), float(rng.integers(3, 40) * 5)]
            anns.append(ann(
                len(anns) + 1, img_id, box,
                height=float(rng.choice([box[3], rng.uniform(10, 200)])),
                vis=float(rng.choice([0.1, 0.2, 0.5, 0.65, 0.8, 0.9, 1.0])),
                ignore=int(rng.random() < 0.15)))
        d = int(rng.integers(0, 8))
        if not d:
            continue
        xywh = (rng.integers(0, 20, (d, 4)) * 5).astype(float)
        xywh[:, 2] = np.maximum(xywh[:, 2], 5)
        xywh[:, 3] = rng.integers(3, 40, d) * 5
        if rng.random() < 0.5 and anns and anns[-1]['image_id'] == img_id:
            xywh[0] = anns[-1]['bbox']  # an exact hit
        scores = rng.choice([0.2, 0.4, 0.6, 0.8, 0.9], d)
        xyxy = xywh.copy()
        xyxy[:, 2:] += xyxy[:, :2]
        preds.append(CityPersonsPrediction(img_id, xyxy, scores))
        for k in range(d):
            x1, y1, x2, y2 = xyxy[k].tolist()
            dts.append(dict(id=len(dts) + 1, image_id=img_id, score=scores[k],
                            bbox=[x1, y1, x2 - x1, y2 - y1]))
    return anns, preds, dts


def test_matches_the_reference_code_on_random_cases(tmp_path):
    rng = np.random.default_rng(0)
    checked = 0
    for case in range(25):
        # 100 images or more (most without anything): the references are
        # never below the curve's first point (see the module doc)
        num_imgs = 100 + int(rng.integers(0, 3))
        anns, preds, dts = random_case(rng, 12)
        images = [dict(id=i) for i in range(1, num_imgs + 1)]
        gts = load_citypersons_gt(
            write_gt(tmp_path / f'gt{case}.json', num_imgs, anns))
        out = evaluate_citypersons(gts, preds)
        for setup in SETUPS:
            ref = reference_mr(images, anns, dts, setup)
            if ref == -1.0:  # no GT: the reference's -1, our NaN
                assert math.isnan(out['MR'][setup])
                continue
            assert out['MR'][setup] == pytest.approx(ref, rel=1e-12,
                                                     abs=1e-15), (case, setup)
            checked += 1
    assert checked > 100


def test_overlaps_need_both_sides_positive_not_one_pixel():
    """``overlaps_xywh``: no overlap unless both intersection sides are
    > 0 (boxes apart in x and in y have a positive product of two negative
    sides, which must not count); a sub-pixel overlap counts by value."""
    from mmlla.evaluation.functional.citypersons_mr import overlaps_xywh
    dets = np.array([[0., 0., 10., 20.]])
    gts = np.array([
        [20., 30., 10., 20.],   # apart in x and y: iw = ih = -10
        [9.5, 0., 10., 20.],    # 0.5 px wide, 20 px high
        [0., 19.5, 10., 20.],   # 10 px wide, 0.5 px high
        [0., 20., 10., 20.],    # touching: ih = 0
    ])
    got = overlaps_xywh(dets, gts, np.zeros(4, bool))
    inter_x, inter_y = 0.5 * 20, 10 * 0.5
    want = [0.0, inter_x / (400 - inter_x), inter_y / (400 - inter_y), 0.0]
    np.testing.assert_allclose(got[0], want, rtol=0, atol=1e-15)
    # a crowd (ignored) box: intersection over the detection's area only
    got = overlaps_xywh(dets, gts, np.ones(4, bool))
    np.testing.assert_allclose(got[0],
                               [0.0, inter_x / 200, inter_y / 200, 0.0],
                               rtol=0, atol=1e-15)
    # overlapping in x only (iw = 10, ih = -10: a negative product)
    assert overlaps_xywh(dets, [[0., 30., 10., 20.]], [False])[0, 0] == 0.0
    # zero-width / zero-height detections on a crowd box: 0, not 0 / 0
    got = overlaps_xywh([[5., 0., 0., 20.], [0., 5., 10., 0.]],
                        [[5., 0., 10., 20.]], [True])
    assert got.tolist() == [[0.0], [0.0]]
