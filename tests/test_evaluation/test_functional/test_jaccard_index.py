"""CrowdDet's Jaccard index (compute_JI.py / JI_tools.py) against an
independent computation.

``reference_terms`` below is written from CrowdDet's code, not from
``mmlla.evaluation``: plain Python loops for the float64 IoU / IoA (its
formulas), and a maximum-weight matching by
``scipy.optimize.linear_sum_assignment`` on the dense float64 weight matrix
(pairs of IoU <= thr at weight 0, dropped afterwards), or by networkx's
blossom ``max_weight_matching`` (the algorithm of CrowdDet's
``maxWeightMatching``). The hand-made cases pin each rule.
"""
import os.path as osp
import sys

import numpy as np
import pytest

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from crowdhuman_cases import random_case, write_odgt  # noqa: E402

from mmlla.evaluation.functional import (  # noqa: E402
    ImageGT, Prediction, accumulate_jaccard_index, crowddet_overlaps,
    crowdhuman_mr, evaluate_crowdhuman, jaccard_index_image,
    load_crowdhuman_gt, max_weight_matching)

THRS = [0.1 * i for i in range(10)]

# ------------------------------------------------- independent computation


def _clip(box, h, w):
    x1, y1, x2, y2 = (float(v) for v in box)
    return (min(max(x1, 0.0), w - 1.0), min(max(y1, 0.0), h - 1.0),
            max(min(x2, float(w)), 0.0), max(min(y2, float(h)), 0.0))


def _inter(a, b):
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, iw) * max(0.0, ih)


def _iou(a, b):
    """JI_tools.compute_iou_matrix: signed areas, + 1e-6."""
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    return _inter(a, b) / (area_a + area_b - _inter(a, b) + 1e-6)


def _ioa(a, region):
    """JI_tools.compute_ioa_matrix: over a's clamped area, + 1e-6."""
    area = max(a[2] - a[0], 0.0) * max(a[3] - a[1], 0.0)
    return _inter(a, region) / (area + 1e-6)


def _matching(weights, solver):
    """Max-weight matching of a dense (D, G) matrix, 0 = no edge."""
    if solver == 'lsa':
        from scipy.optimize import linear_sum_assignment
        if weights.size == 0:
            return []
        rows, cols = linear_sum_assignment(weights, maximize=True)
        return [(i, j) for i, j in zip(rows, cols) if weights[i, j] > 0]
    nx = pytest.importorskip('networkx')  # a torch dependency
    graph = nx.Graph()
    for i, j in zip(*np.nonzero(weights)):
        graph.add_edge(('d', int(i)), ('g', int(j)),
                       weight=float(weights[i, j]))
    pairs = []
    for a, b in nx.max_weight_matching(graph, maxcardinality=False):
        d, g = (a, b) if a[0] == 'd' else (b, a)
        pairs.append((d[1], g[1]))
    return pairs


def reference_terms(boxes, scores, gt_boxes, gt_tags, shape, thr=0.5,
                    solver='lsa'):
    """(T, 3) (k, m, n) of one image, CrowdDet's compute_JI_with_ignore."""
    if shape is None:  # an image without prediction: nothing to clip
        assert len(scores) == 0
        gts = [tuple(map(float, b)) for b in gt_boxes]
        dets_all = []
    else:
        h, w = shape
        gts = [_clip(b, h, w) for b in gt_boxes]
        dets_all = [_clip(b, h, w) for b in boxes]
    # gt_tag = tag != -1: persons and background boxes are matched
    pos = [b for b, t in zip(gts, gt_tags) if t != -1]
    ign = [b for b, t in zip(gts, gt_tags) if t == -1]
    out = []
    for score_thr in THRS:
        dets = [d for d, s in zip(dets_all, scores) if float(s) > score_thr]
        weights = np.zeros((len(dets), len(pos)))
        for i, d in enumerate(dets):
            for j, g in enumerate(pos):
                v = _iou(d, g)
                if v > thr:
                    weights[i, j] = v
        pairs = _matching(weights, solver)
        md = {i for i, _ in pairs}
        mg = {j for _, j in pairs}
        n_ign_dt = sum(
            1 for i, d in enumerate(dets)
            if i not in md and any(_ioa(d, r) > thr for r in ign))
        n_ign_gt = sum(
            1 for j, g in enumerate(pos)
            if j not in mg and any(_ioa(g, r) > thr for r in ign))
        out.append((len(pairs), len(pos) - n_ign_gt, len(dets) - n_ign_dt))
    return np.array(out, dtype=np.int64)


def reference_ji(terms):
    """compute_JI.gather: sum of ratios / images with m or n non-zero."""
    best = 0.0
    for t in range(len(THRS)):
        ratios, counted = 0.0, 0
        for kmn in terms:
            k, m, n = (int(v) for v in kmn[t])
            ratios += k / (m + n - k + 1e-6)
            counted += (m != 0 or n != 0)
        if counted:
            best = max(best, ratios / counted)
    return best


def gt_of(boxes, tags):
    return ImageGT(np.asarray(boxes, np.float64).reshape(-1, 4),
                   np.asarray(tags, np.int8))


# --------------------------------------------------------- hand-made cases


def test_maximum_weight_not_maximum_cardinality():
    """Three GTs in a row, g1 [0,0,10,10], g2 [2.5,0,12.5,10],
    g3 [5,0,15,10]: IoU(g1, g2) = IoU(g2, g3) = 75 / 125 = .6,
    IoU(g1, g3) = 50 / 150.
    d1 = g1 (IoU 1 with g1, .6 with g2), d2 = g2 (.6 with g1, 1 with g2, .6
    with g3), d3 [-2.5,0,7.5,10] (.6 with g1 only).
    Maximum weight: d1-g1 + d2-g2 = 2.0 (k = 2); d3-g1 + d1-g2 + d2-g3 =
    1.8 would give k = 3 (maximum cardinality, mmdet's JI)."""
    gt = gt_of([[0, 0, 10, 10], [2.5, 0, 12.5, 10], [5, 0, 15, 10]],
               [1, 1, 1])
    boxes = np.array([[0, 0, 10, 10], [2.5, 0, 12.5, 10],
                      [-2.5, 0, 7.5, 10]], np.float64)
    scores = np.array([.9, .9, .9])
    terms = jaccard_index_image(boxes, scores, gt, (100, 100))
    # every threshold keeps the three: k = 2, m = 3, n = 3
    assert terms.tolist() == [[2, 3, 3]] * 9 + [[0, 3, 0]]
    assert accumulate_jaccard_index([terms]) == pytest.approx(
        2 / (3 + 3 - 2 + 1e-6), abs=1e-12)
    ref = reference_terms(boxes, scores, gt.boxes, gt.tags, (100, 100))
    assert np.array_equal(terms, ref)
    assert np.array_equal(
        ref, reference_terms(boxes, scores, gt.boxes, gt.tags, (100, 100),
                             solver='networkx'))
    # mmdet's JI (maximum cardinality) gets k = 3 here
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_bipartite_matching
    iou = crowddet_overlaps(boxes, gt.boxes)
    card = maximum_bipartite_matching(csr_matrix(np.where(iou > .5, iou, 0)))
    assert (card >= 0).sum() == 3


def test_iou_of_exactly_the_threshold_is_no_match():
    """GT [0,0,4,1] and det [0,0,2.0000005,1]: CrowdDet's float64 IoU
    2.0000005 / (2.0000005 + 4 - 2.0000005 + 1e-6) is exactly 0.5, not
    > 0.5: no match (IoU >= 0.5 would match)."""
    gt = gt_of([[0, 0, 4, 1]], [1])
    boxes = np.array([[0, 0, 2.0000005, 1]], np.float64)
    assert crowddet_overlaps(boxes, gt.boxes)[0, 0] == 0.5
    assert _iou(boxes[0], gt.boxes[0]) == 0.5
    terms = jaccard_index_image(boxes, [.95], gt, (10, 10))
    assert terms[:, 0].tolist() == [0] * 10
    assert terms[0].tolist() == [0, 1, 1]
    # a hair more overlap matches
    boxes[0, 2] = 2.001
    assert jaccard_index_image(boxes, [.95], gt, (10, 10))[0].tolist() == [
        1, 1, 1]


def test_unmatched_in_ignore_regions_are_discounted():
    """Ignore region R [50,50,90,90] (tag -1).
    Detections: d1 = P1 (TP); d2 [60,60,70,70] inside R (IoA 1, discounted);
    d3 [85,85,95,95] IoA 25 / 100 (counted); d4 [0,0,10,10] a duplicate of
    P1, unmatched, outside R (counted).
    GTs: P1 [0,0,10,10] matched; P2 [55,55,65,65] inside R, unmatched
    (discounted); P3 [20,0,30,10] unmatched outside R (counted).
    k 1, m 3 - 1 = 2, n 4 - 1 = 3."""
    gt = gt_of([[0, 0, 10, 10], [55, 55, 65, 65], [20, 0, 30, 10],
                [50, 50, 90, 90]], [1, 1, 1, -1])
    boxes = np.array([[0, 0, 10, 10], [60, 60, 70, 70], [85, 85, 95, 95],
                      [0, 0, 10, 10]], np.float64)
    terms = jaccard_index_image(boxes, [.9, .8, .7, .6], gt, (100, 100))
    assert terms[0].tolist() == [1, 2, 3]
    # thr .6: d4 (score .6) is not kept (score > thr, strict): n 2
    assert terms[6].tolist() == [1, 2, 2]
    # A matched GT inside an ignore region is not discounted, nor is its
    # detection: d2 takes P2; k 2, m 3, n 4 (d3, d4 outside R)
    boxes[1] = [55, 55, 65, 65]
    terms = jaccard_index_image(boxes, [.9, .8, .7, .6], gt, (100, 100))
    assert terms[0].tolist() == [2, 3, 4]
    # IoA of exactly the threshold is not > thr: P2' [40,55,60,65] has half
    # of its area in R (100 / (200 + 1e-6) < .5 anyway): counted.
    gt2 = gt_of([[40, 55, 60, 65], [50, 50, 90, 90]], [1, -1])
    assert jaccard_index_image(np.zeros((0, 4)), np.zeros(0), gt2,
                               (100, 100))[0].tolist() == [0, 1, 0]


def test_background_boxes_are_matched_in_the_ji():
    """CrowdDet's compute_JI matches every GT of tag != -1: a background
    box (tag 0) is matched and counted, unlike in AP (where it is an ignore
    region); only tag -1 boxes are ignore regions."""
    gt = gt_of([[0, 0, 10, 10], [20, 0, 30, 10]], [1, 0])
    boxes = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float64)
    terms = jaccard_index_image(boxes, [.9, .8], gt, (50, 50))
    assert terms[0].tolist() == [2, 2, 2]
    ref = reference_terms(boxes, [.9, .8], gt.boxes, gt.tags, (50, 50))
    assert np.array_equal(terms, ref)


def test_score_threshold_is_strict():
    """score > t: 1e-1 * 5 is exactly 0.5, so a detection of score 0.5 is
    not kept at t = 0.5; a score of 0 is never kept."""
    gt = gt_of([[0, 0, 10, 10], [20, 0, 30, 10]], [1, 1])
    boxes = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float64)
    terms = jaccard_index_image(boxes, [0.5, 0.0], gt, (50, 50))
    assert terms[:, 0].tolist() == [1] * 5 + [0] * 5
    assert terms[:, 2].tolist() == [1] * 5 + [0] * 5


def test_boxes_are_clipped_as_for_ap():
    """h = w = 100: GT [-20,10,20,50] clips to [0,10,20,50]; the detection
    [0,10,20,50] then has IoU 1 (.5 unclipped: no match)."""
    gt = gt_of([[-20, 10, 20, 50]], [1])
    boxes = np.array([[0, 10, 20, 50]], np.float64)
    assert jaccard_index_image(boxes, [.9], gt, (100, 100))[0].tolist() == [
        1, 1, 1]
    assert jaccard_index_image(boxes, [.9], gt, (100, 300))[0].tolist() == [
        1, 1, 1]
    # clipping x1 into [0, W - 1]: a GT right of a 15 px wide image becomes
    # [14,10,15,50]; the detection [14,10,15,50] matches it
    gt = gt_of([[30, 10, 40, 50]], [1])
    boxes = np.array([[14, 10, 15, 50]], np.float64)
    assert jaccard_index_image(boxes, [.9], gt, (100, 15))[0].tolist() == [
        1, 1, 1]


def test_mean_over_images_with_m_or_n():
    """compute_JI.gather: images with m = n = 0 add nothing and are not
    counted; the best threshold's mean is the JI."""
    a = np.array([[1, 2, 2]] * 5 + [[1, 2, 1]] * 5)  # 1/3, then 1/2
    b = np.array([[0, 0, 0]] * 10)  # nothing: not counted
    c = np.array([[0, 1, 0]] * 10)  # a missed GT: 0, counted
    assert accumulate_jaccard_index([a, b, c]) == pytest.approx(
        (1 / (2 + 1 - 1 + 1e-6)) / 2, abs=1e-12)
    assert accumulate_jaccard_index([b]) == 0.0
    assert accumulate_jaccard_index([]) == 0.0
    assert reference_ji([a, b, c]) == accumulate_jaccard_index([a, b, c])


def test_max_weight_matching_pieces():
    # a single edge per row: only the heaviest row of a column is needed
    rows = np.array([0, 1, 2, 3])
    cols = np.array([0, 0, 0, 1])
    w = np.array([.6, .9, .7, .8])
    for limit in (None, 0):
        mr, mc = max_weight_matching(rows, cols, w, 0.5, dense_limit=limit)
        assert sorted(zip(mr.tolist(), mc.tolist())) == [(1, 0), (3, 1)]
    e = np.zeros(0, np.int64)
    assert [x.tolist() for x in max_weight_matching(e, e, e, .5)] == [[], []]
    with pytest.raises(ValueError, match='floor'):
        max_weight_matching(rows, cols, w, 0.65)
    # random sparse graphs: the same total weight as the dense optimum
    from scipy.optimize import linear_sum_assignment
    rng = np.random.default_rng(0)
    for _ in range(200):
        nr, nc = rng.integers(1, 30), rng.integers(1, 12)
        dense = np.where(rng.random((nr, nc)) < 0.25,
                         rng.uniform(0.5, 1, (nr, nc)), 0)
        dense[dense == 0.5] = 0
        rows, cols = np.nonzero(dense)
        r, c = linear_sum_assignment(dense, maximize=True)
        for limit in (None, 0):  # dense and sparse solvers
            mr, mc = max_weight_matching(rows, cols, dense[rows, cols], 0.5,
                                         dense_limit=limit)
            assert len(set(mr.tolist())) == len(mr)
            assert len(set(mc.tolist())) == len(mc)
            assert (dense[mr, mc] > 0).all()
            assert dense[mr, mc].sum() == pytest.approx(dense[r, c].sum(),
                                                        abs=1e-9)


# ----------------------------------------------------------- random cases


def _gt_and_preds(seed, num_imgs=4, **kwargs):
    rng = np.random.default_rng(seed)
    return random_case(rng, num_imgs, **kwargs)


@pytest.mark.parametrize('iou_thr,solver', [(0.5, 'dense'),
                                            (0.5, 'sparse'),
                                            (0.7, 'dense')])
def test_random_crowds_against_the_independent_computation(
        tmp_path, monkeypatch, iou_thr, solver):
    """Random crowds (duplicates, ignore regions of both kinds, background
    boxes, border-crossing boxes, images without detections): every
    image's (k, m, n) at every threshold equals the LSA computation, and
    the JI its mean; with tiny blocks (chunk_rows) too; with the small
    matchings solved densely (the default) or all on the sparse graph."""
    if solver == 'sparse':
        monkeypatch.setattr(crowdhuman_mr, 'DENSE_MATCHING_CELLS', 0)
    compared = 0
    for seed in range(25):
        records, preds = _gt_and_preds(seed + 300, max_dets=80)
        gts = load_crowdhuman_gt(write_odgt(tmp_path / 'gt.odgt', records))
        ref_terms = []
        for img_id, shape, boxes, scores in preds:
            gt = gts[img_id]
            ours = jaccard_index_image(boxes, scores, gt, shape, iou_thr)
            ref = reference_terms(boxes, scores, gt.boxes, gt.tags, shape,
                                  iou_thr)
            assert np.array_equal(ours, ref), (seed, img_id)
            assert np.array_equal(
                jaccard_index_image(boxes, scores, gt, shape, iou_thr,
                                    chunk_rows=3), ref), (seed, img_id)
            ref_terms.append(ref)
            compared += int(ref[:, 0].sum() > 0)
        out = evaluate_crowdhuman(gts, [Prediction(*p) for p in preds],
                                  iou_thr=iou_thr, with_ji=True)
        assert out['JI'] == pytest.approx(reference_ji(ref_terms),
                                          abs=1e-12)
    assert compared > 50


def test_random_crowds_against_crowddet_blossom_algorithm(tmp_path):
    """networkx's max_weight_matching is the blossom algorithm of CrowdDet's
    matching.py (Van Rantwijk's mwmatching)."""
    for seed in range(6):
        records, preds = _gt_and_preds(seed + 700, 3, max_dets=50)
        gts = load_crowdhuman_gt(write_odgt(tmp_path / 'gt.odgt', records))
        for img_id, shape, boxes, scores in preds:
            gt = gts[img_id]
            ref = reference_terms(boxes, scores, gt.boxes, gt.tags, shape,
                                  solver='networkx')
            assert np.array_equal(
                jaccard_index_image(boxes, scores, gt, shape), ref)


def test_images_without_prediction_count(tmp_path):
    """Every image of the GT file is evaluated: an image without a
    prediction has k = n = 0 and counts (ratio 0) when it has a GT outside
    the ignore regions."""
    records, preds = _gt_and_preds(31, 5)
    gts = load_crowdhuman_gt(write_odgt(tmp_path / 'gt.odgt', records))
    preds = [Prediction(*p) for p in preds]
    full = evaluate_crowdhuman(gts, preds, with_ji=True)
    part = evaluate_crowdhuman(gts, preds[:3], with_ji=True)
    terms = [reference_terms(p.bboxes, p.scores, gts[p.img_id].boxes,
                             gts[p.img_id].tags, p.img_shape)
             for p in preds[:3]]
    terms += [reference_terms(np.zeros((0, 4)), [], gts[p.img_id].boxes,
                              gts[p.img_id].tags, None) for p in preds[3:]]
    assert all(t[0, 1] > 0 for t in terms[3:])
    assert part['JI'] == pytest.approx(reference_ji(terms), abs=1e-12)
    assert part['JI'] < full['JI']


def test_close_to_mmdet_variant_but_not_equal(tmp_path):
    """mmdet's JI (maximum-cardinality matching, float32 IoU >= thr) is
    another number; on these random crowds the two differ by ~1e-3."""
    from mmdet.evaluation import CrowdHumanMetric
    from crowdhuman_cases import data_samples
    diffs = []
    for seed in range(2):
        records, preds = _gt_and_preds(seed + 5, 6)
        f = write_odgt(tmp_path / 'gt.odgt', records)
        oracle = CrowdHumanMetric(ann_file=f, metric=['JI'],
                                  num_ji_process=1)
        oracle.process(None, data_samples(preds))
        mmdet_ji = oracle.compute_metrics(oracle.results)['JI']
        ours = evaluate_crowdhuman(load_crowdhuman_gt(f),
                                   [Prediction(*p) for p in preds],
                                   with_ji=True)['JI']
        diffs.append(abs(ours - mmdet_ji))
    assert max(diffs) < 1e-2
    assert max(diffs) > 1e-4  # a different definition, not rounding
