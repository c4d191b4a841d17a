import math
import os.path as osp
import sys

import numpy as np
import pytest

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from crowdhuman_cases import (oracle_unrounded, random_case,  # noqa: E402
                              write_odgt)

from mmlla.evaluation.functional import (  # noqa: E402
    ImageGT, Prediction, accumulate_crowdhuman, accumulate_jaccard_index,
    box_overlaps_f32, clip_boxes, evaluate_crowdhuman, jaccard_index_image,
    load_crowdhuman_gt, match_crowdhuman_image)


def person(x, y, w, h, ignore=0, tag='person'):
    return dict(tag=tag, fbox=[x, y, w, h], hbox=[x, y, w, h / 4],
                vbox=[x, y, w, h / 2], extra=dict(ignore=ignore))


def evaluate(records, preds, tmp_path, **kwargs):
    gts = load_crowdhuman_gt(write_odgt(tmp_path / 'gt.odgt', records))
    return evaluate_crowdhuman(gts, [Prediction(*p) for p in preds],
                               **kwargs)


def dets(*rows):
    """(boxes float32 (D, 4) xyxy, scores float32 (D,)) from rows of 5."""
    a = np.asarray(rows, dtype=np.float32).reshape(-1, 5)
    return a[:, :4], a[:, 4]


# ----------------------------------------------------------------- pieces


def test_box_overlaps_bitwise_equal_to_mmdet():
    from mmdet.evaluation.functional import bbox_overlaps
    rng = np.random.default_rng(0)
    for n, m in [(7, 3), (3, 7), (5, 5), (0, 4), (4, 0)]:
        b1 = rng.uniform(0, 50, (n, 4)).astype(np.float32)
        b2 = rng.uniform(0, 50, (m, 4)).astype(np.float32)
        b1[:, 2:] += b1[:, :2]
        b2[:, 2:] += b2[:, :2]
        b1[:1, 2:] = b1[:1, :2]  # a zero-area box
        for mode in ('iou', 'iof'):
            ours = box_overlaps_f32(b1, b2, mode)
            ref = bbox_overlaps(b1, b2, mode=mode)
            assert ours.dtype == np.float32 and ours.shape == (n, m)
            assert np.array_equal(ours, ref)


def test_clip_boxes():
    # (h, w) = (50, 100): x1 into [0, 99], y1 into [0, 49], x2 into [0, 100],
    # y2 into [0, 50].
    out = clip_boxes([[-5, -5, 120, 70], [150, 60, 160, 80],
                      [-30, -30, -10, -10]], (50, 100))
    assert out.dtype == np.float32
    assert out.tolist() == [[0, 0, 100, 50], [99, 49, 100, 50],
                            [0, 0, 0, 0]]


def test_load_gt_tags_and_bodies(tmp_path):
    """§6 evaluation rule: tag person -> 1, background -> 0, other tags and
    any non-zero extra.ignore -> -1; GTs counted: tags 1 and 0."""
    records = [
        dict(ID=1, gtboxes=[
            person(0, 0, 10, 20),
            person(5, 5, 10, 20, ignore=1),  # person with extra.ignore
            dict(tag='mask', fbox=[1, 2, 3, 4], extra=dict(ignore=1)),
            dict(tag='mask', fbox=[1, 2, 3, 4]),  # no extra: tag decides
            dict(person(0, 0, 8, 8), head_attr=dict(ignore=1)),
            dict(tag='background', fbox=[7, 7, 5, 5], extra=dict(ignore=0)),
            dict(tag='background', fbox=[7, 7, 5, 5], extra=dict(ignore=1)),
            dict(tag='mask', fbox=[1, 2, 3, 4], extra=dict(ignore=0)),
        ]),
        dict(ID='b', gtboxes=[]),
    ]
    f = write_odgt(tmp_path / 'gt.odgt', records)
    gts = load_crowdhuman_gt(f)
    assert list(gts) == ['1', 'b']
    assert gts['1'].tags.tolist() == [1, -1, -1, -1, 1, 0, -1, -1]
    assert gts['1'].num_gts == 3  # two persons and one background box
    assert gts['1'].matchable.tolist() == [
        True, False, False, False, True, False, False, False]
    assert gts['1'].regions.tolist() == [
        False, True, True, True, False, True, True, True]
    assert gts['1'].boxes[0].tolist() == [0, 0, 10, 20]
    assert gts['1'].boxes[2].tolist() == [1, 2, 4, 6]
    assert gts['b'].boxes.shape == (0, 4) and gts['b'].num_gts == 0
    vis = load_crowdhuman_gt(f, 'visible')['1']
    # visible box; the regions without vbox fall back to their fbox
    assert vis.boxes[0].tolist() == [0, 0, 10, 10]
    assert vis.boxes[2].tolist() == [1, 2, 4, 6]
    assert vis.boxes[5].tolist() == [7, 7, 12, 12]
    head = load_crowdhuman_gt(f, 'head')['1']
    assert head.boxes[0].tolist() == [0, 0, 10, 5]
    assert head.tags.tolist() == [1, -1, -1, -1, -1, 0, -1, -1]
    with pytest.raises(ValueError, match='body'):
        load_crowdhuman_gt(f, 'torso')


@pytest.mark.parametrize('line,match', [
    ('{"ID": 1, "gtboxes": [{"tag": "person"}]}',
     r'bad\.odgt:2: image 1, box 0: field "fbox" must be \[x, y, w, h\]'),
    ('{"ID": 1, "gtboxes": [{"tag": "person", "fbox": [1, NaN, 3, 4]}]}',
     r'bad\.odgt:2: image 1, box 0: non-finite "fbox"'),
    ('{"ID": 1, "gtboxes": [{"fbox": [1, 2, 3, 4]}]}',
     r'bad\.odgt:2: image 1, box 0: missing field "tag"'),
    ('{"ID": 1, "gtboxes": [{"tag": "person", "fbox": [1, 2, 3, 4], '
     '"extra": 1}]}', r'bad\.odgt:2: image 1, box 0: field "extra" must be'),
    ('{"ID": 1, "gtboxes": [', r'bad\.odgt:2: not valid JSON'),
    ('{"gtboxes": []}', r'bad\.odgt:2: missing field "ID"'),
    ('{"ID": 1}', r'bad\.odgt:2: image 1: missing or non-list'),
    ('{"ID": "0", "gtboxes": []}',
     r"bad\.odgt:2: image ID '0' already appears on line 1"),
])
def test_load_gt_malformed_lines_name_file_and_line(tmp_path, line, match):
    """The evaluation reads the .odgt with the dataset's strict reader."""
    from mmlla.datasets import ODGTFormatError
    path = tmp_path / 'bad.odgt'
    path.write_text('{"ID": 0, "gtboxes": []}\n' + line + '\n')
    with pytest.raises(ODGTFormatError, match=match):
        load_crowdhuman_gt(str(path))


# ------------------------------------------------------ hand-made cases


def test_hand_case_duplicates_ignore_and_image_without_gt(tmp_path):
    records = [
        dict(ID='a', gtboxes=[
            person(0, 0, 10, 10),  # P1 xyxy [0, 0, 10, 10]
            person(20, 0, 10, 10),  # P2 xyxy [20, 0, 30, 10]
            person(50, 50, 40, 40, tag='mask', ignore=1),  # [50,50,90,90]
        ]),
        dict(ID='b', gtboxes=[]),  # no ground truth at all
    ]
    boxes_a, scores_a = dets(
        [0, 0, 10, 10, 0.9],  # IoU(P1) = 1 -> TP
        [0, 0, 10, 10, 0.8],  # duplicate: P1 taken, IoU(P2) = 0 -> FP
        [60, 60, 70, 70, 0.7],  # IoA(ignore) = 1 -> dropped
        [20, 0, 30, 12, 0.6],  # IoU(P2) = 100 / 120 = 0.83 -> TP
        [85, 85, 95, 95, 0.5],  # IoA(ignore) = 25 / 100 -> FP
    )
    boxes_b, scores_b = dets([0, 0, 10, 10, 0.95])  # no GT -> FP
    gts = load_crowdhuman_gt(write_odgt(tmp_path / 'gt.odgt', records))
    s, lb = match_crowdhuman_image(boxes_a, scores_a, gts['a'], (100, 100))
    assert lb.tolist() == [1, 0, -1, 1, 0]
    assert np.allclose(s, [0.9, 0.8, 0.7, 0.6, 0.5])

    out = evaluate(records, [('a', (100, 100), boxes_a, scores_a),
                             ('b', (50, 50), boxes_b, scores_b)], tmp_path)
    # Sorted kept list: FP(b) .95, TP .9, FP .8, TP .6, FP .5; 2 GTs, 2 imgs.
    # recall    0, .5, .5,  1,  1
    # precision 0, .5, 1/3, .5, .4
    # AP = .5 * (0 + .5) / 2 + 0 + .5 * (1/3 + 1/2) / 2 + 0
    #    = 1/8 + 5/24 = 1/3  (no segment from recall 0 before the 1st point)
    assert out['AP50'] == pytest.approx(1 / 3, abs=1e-12)
    # fppi 0.5, 0.5, 1, 1, 1.5; miss rate 1, .5, .5, 0, 0.
    # refs .01 ... .3162 (7 of them) -> first fppi >= ref at 0 -> 1
    # refs .5623 and 1.0 -> first fppi >= ref at 2 -> .5
    # mMR = (1^7 * .5^2) ^ (1/9)
    assert out['mMR'] == pytest.approx(0.25**(1 / 9), abs=1e-12)
    assert out['mr_at_refs'].tolist() == [1] * 7 + [0.5] * 2
    assert out['recall'] == 1.0
    assert out['num_gts'] == 2 and out['num_imgs'] == 2
    assert out['fppi'].tolist() == [0.5, 0.5, 1, 1, 1.5]


def test_hand_case_strict_thresholds_and_tp_before_ignore():
    gt = ImageGT(
        np.array([[0, 0, 10, 10], [100, 0, 110, 10], [0, 50, 10, 60]],
                 dtype=np.float64), np.array([1, -1, -1], np.int8))
    boxes, scores = dets(
        # IoU with GT [0,0,10,10] = 100 / 200 = 0.5, not > 0.5 -> not a
        # match; IoA with the ignore regions 0 -> FP
        [0, 0, 10, 20, 0.9],
        # IoA with ignore [100,0,110,10] = 100 / 200 = 0.5, not > 0.5 -> FP
        [100, 0, 110, 20, 0.8],
        # IoU with GT = 81 / 100 = .81 and IoA with ignore [0,50,10,60] 0
        [0, 0, 9, 9, 0.7],
        # inside the ignore region, would match no GT -> dropped
        [0, 50, 10, 55, 0.6])
    _, lb = match_crowdhuman_image(boxes, scores, gt, (200, 200))
    assert lb.tolist() == [0, 0, 1, -1]
    # A GT match wins over an ignore region that also covers the detection.
    gt2 = ImageGT(np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float64),
                  np.array([1, -1], np.int8))
    _, lb = match_crowdhuman_image(*dets([0, 0, 10, 10, 0.5]), gt2,
                                   (20, 20))
    assert lb.tolist() == [1]


def test_hand_case_greedy_highest_iou_and_ap_quirk(tmp_path):
    # GT1 [0,0,10,10], GT2 [2,0,12,10] (xyxy).
    # d1 .9 [1.5,0,11.5,10]: IoU(GT1) = 85 / 115 = .739,
    #                        IoU(GT2) = 95 / 105 = .905 -> GT2
    # d2 .8 [2,0,12,10]: GT2 taken; IoU(GT1) = 80 / 120 = .667 -> GT1
    records = [dict(ID='x', gtboxes=[person(0, 0, 10, 10),
                                     person(2, 0, 10, 10)])]
    boxes, scores = dets([1.5, 0, 11.5, 10, 0.9], [2, 0, 12, 10, 0.8])
    out = evaluate(records, [('x', (20, 20), boxes, scores)], tmp_path)
    # recall .5, 1 and precision 1, 1: AP = (1 - .5) * 1 = .5, not 1 (the
    # CrowdDet trapezoid starts at the first point).
    assert out['AP50'] == pytest.approx(0.5)
    assert out['recall'] == 1.0
    # fppi stays 0: every reference falls back to the last point, miss 0.
    assert out['mMR'] == 0.0


def test_hand_case_clipping(tmp_path):
    # Image h=100, w=100.
    # GT1 xyxy [-20,10,20,50] clips to [0,10,20,50]: the detection
    #   [0,10,20,50] has IoU 1 (800 / 1600 = .5 without clipping -> FP).
    # GT2 [90,0,120,10] clips to [90,0,100,10]; detection [90,0,100,10].
    # GT3 [150,0,160,10] lies right of the image: x1 -> min(150, 99) = 99,
    #   x2 -> 100, a 1 px wide box that a 1 px wide detection matches.
    records = [dict(ID='c', gtboxes=[person(-20, 10, 40, 40),
                                     person(90, 0, 30, 10),
                                     person(150, 0, 10, 10)])]
    boxes, scores = dets([0, 10, 20, 50, .9], [90, 0, 100, 10, .8],
                         [99, 0, 100, 10, .7])
    out = evaluate(records, [('c', (100, 100), boxes, scores)], tmp_path)
    assert out['recall'] == 1.0
    # Only the segments between points count: (2/3 - 1/3) + (1 - 2/3)
    assert out['AP50'] == pytest.approx(2 / 3)
    out = evaluate(records, [('c', (100, 200), boxes, scores)], tmp_path)
    # w = 200: GT1 still clips at x1 = 0 but GT2 and GT3 are no longer
    # clipped: IoU(det2, [90,0,120,10]) = 1/3, GT3 [150,0,160,10] untouched
    assert out['recall'] == pytest.approx(1 / 3)


def test_no_detections_and_no_gt():
    gt = ImageGT(np.array([[0, 0, 10, 10]], np.float64),
                 np.array([1], np.int8))
    s, lb = match_crowdhuman_image(np.zeros((0, 4)), np.zeros(0), gt,
                                   (10, 10))
    assert s.shape == (0, ) and lb.shape == (0, )
    # Nothing detected: recall 0, AP 0, every miss rate 1.
    out = accumulate_crowdhuman([s], [lb], num_gts=1, num_imgs=1)
    assert (out['AP50'], out['mMR'], out['recall']) == (0.0, 1.0, 0.0)
    out = accumulate_crowdhuman([], [], num_gts=0, num_imgs=0)
    assert (out['AP50'], out['mMR'], out['recall']) == (0.0, 1.0, 0.0)
    # Only false positives, no GT at all: recall taken as 0.
    out = accumulate_crowdhuman([np.array([.5])], [np.array([0], np.int8)],
                                num_gts=0, num_imgs=1)
    assert (out['AP50'], out['mMR'], out['recall']) == (0.0, 1.0, 0.0)
    with pytest.raises(ValueError, match='mr_range'):
        accumulate_crowdhuman([], [], 1, 1, mr_range='-3')


def test_mr4_references():
    # 100 images, 100 GTs. One TP at score 1, then 1000 FPs, then a TP.
    # Position 0: fppi 0, recall .01; position p in 1..1000: fppi p / 100;
    # the first FP (fppi .01) already reaches every reference up to .01.
    scores = [np.array([1.0] + [0.9] * 1000 + [0.1])]
    labels = [np.array([1] + [0] * 1000 + [1], np.int8)]
    out = accumulate_crowdhuman(scores, labels, num_gts=100, num_imgs=100,
                                mr_range='-4')
    # refs 1e-4 .. .0032 and .01 -> first fppi >= ref is position 1 (fppi
    # .01, recall .01) -> miss .99; refs .0316 ... 1 -> still .99 (the second
    # TP comes after fppi 10).
    assert out['mr_at_refs'].tolist() == pytest.approx([0.99] * 9)
    assert out['mMR'] == pytest.approx(0.99)


def test_jaccard_index_hand_case():
    # Two GTs, one ignore region; detections at score .9 (TP of GT1), .4 (TP
    # of GT2), .3 (in the ignore region).
    gt = ImageGT(
        np.array([[0, 0, 10, 10], [20, 0, 30, 10], [50, 50, 90, 90]],
                 np.float64), np.array([1, 1, -1], np.int8))
    boxes, scores = dets([0, 0, 10, 10, .9], [20, 0, 30, 10, .4],
                         [60, 60, 70, 70, .3])
    terms = jaccard_index_image(boxes, scores, gt, (100, 100))
    # thr 0, .1, .2: k=2, m=2, n=3-1 (the ignored one) = 2 -> 2 / 2
    # thr .3 = 0.30000000000000004 < .3f = 0.30000001192092896: all kept
    # thr .4 < .4f = 0.4000000059604645: GT2's det kept: k 2 m 2 n 2
    # thr .5 ... .8: k 1, m 2, n 1 -> 1 / 2
    # thr .9 > .9f = 0.8999999761581421: nothing kept -> k 0, m 2, n 0
    assert terms[:, 0].tolist() == [2] * 5 + [1] * 4 + [0]
    assert terms[:, 1].tolist() == [2] * 10
    assert terms[:, 2].tolist() == [2] * 5 + [1] * 4 + [0]
    assert accumulate_jaccard_index([terms]) == pytest.approx(2 / (2 + 1e-6))
    assert accumulate_jaccard_index([]) == 0.0


# ------------------------------------------------- against mmdet's metric


def _labels_of(out):
    """The TP/FP label sequence of the sorted kept list."""
    tp = np.round(out['recall_curve'] * out['num_gts']).astype(int)
    return np.diff(np.concatenate([[0], tp])).astype(np.int8)


@pytest.mark.filterwarnings('ignore::RuntimeWarning')  # mmdet's NaN mMR
@pytest.mark.parametrize('tie_scores', [False, True])
def test_random_crowds_agree_with_mmdet(tmp_path, tie_scores):
    """Many random crowded cases: same numbers and same matches as mmdet.

    Ignore regions of both kinds, boxes across the border, duplicates,
    images without detections. Even tied scores agree: both sort stably
    in annotation-file order.
    """
    compared = 0
    for seed in range(150):
        rng = np.random.default_rng(seed + 1000 * tie_scores)
        records, preds = random_case(
            rng, int(rng.integers(1, 6)), tie_scores=tie_scores)
        iou_thr = (0.5, 0.5, 0.7, 0.3)[seed % 4]
        mr_range = ('-2', '-4')[seed % 2]
        f = write_odgt(tmp_path / f'gt{seed}.odgt', records)
        ap, mr, recall, labels = oracle_unrounded(f, preds, tmp_path,
                                                  iou_thr, mr_range)
        out = evaluate_crowdhuman(
            load_crowdhuman_gt(f), [Prediction(*p) for p in preds],
            iou_thr=iou_thr, mr_range=mr_range)
        assert np.array_equal(_labels_of(out), labels), seed
        if len(labels) == 0 or out['num_gts'] == 0:
            continue  # mmdet: mMR NaN / recall 0 / 0
        compared += 1
        assert out['AP50'] == pytest.approx(ap, abs=1e-9), seed
        assert out['mMR'] == pytest.approx(mr, abs=1e-9), seed
        assert out['recall'] == pytest.approx(recall, abs=1e-12), seed
    assert compared >= 120


@pytest.mark.filterwarnings('ignore::RuntimeWarning')
@pytest.mark.parametrize('body,swap_key', [('visible', 'vbox'),
                                           ('head', 'hbox')])
def test_other_bodies_agree_with_mmdet_on_swapped_file(tmp_path, body,
                                                       swap_key):
    """mmdet evaluates only fbox: give it a file whose fbox is our box."""
    for seed in range(8):
        rng = np.random.default_rng(seed + 77)
        records, preds = random_case(rng, 3)
        f = write_odgt(tmp_path / 'gt.odgt', records)
        for r in records:
            for b in r['gtboxes']:
                b['fbox'] = b[swap_key]
                if body == 'head' and b['head_attr']['ignore']:
                    b['extra']['ignore'] = 1
        swapped = write_odgt(tmp_path / 'swapped.odgt', records)
        ap, mr, recall, labels = oracle_unrounded(swapped, preds, tmp_path)
        out = evaluate_crowdhuman(
            load_crowdhuman_gt(f, body), [Prediction(*p) for p in preds])
        assert np.array_equal(_labels_of(out), labels)
        assert out['AP50'] == pytest.approx(ap, abs=1e-9)
        assert out['recall'] == pytest.approx(recall, abs=1e-12)
        if not math.isnan(mr):
            assert out['mMR'] == pytest.approx(mr, abs=1e-9)


def test_evaluate_errors_and_order_invariance(tmp_path):
    rng = np.random.default_rng(3)
    records, preds = random_case(rng, 5)
    gts = load_crowdhuman_gt(write_odgt(tmp_path / 'gt.odgt', records))
    preds = [Prediction(*p) for p in preds]
    ref = evaluate_crowdhuman(gts, preds)
    shuffled = evaluate_crowdhuman(gts, preds[::-1])
    for key in ('AP50', 'mMR', 'recall'):
        assert ref[key] == shuffled[key]
    # §6: every image of the GT file counts (FPPI denominator, GTs); an
    # image without a prediction is an image without detections.
    sub = evaluate_crowdhuman(gts, preds[:2])
    assert sub['num_imgs'] == 5 and sub['num_predicted'] == 2
    assert sub['num_gts'] == sum(g.num_gts for g in gts.values())
    empty = [Prediction(p.img_id, p.img_shape, np.zeros((0, 4)), np.zeros(0))
             for p in preds[2:]]
    padded = evaluate_crowdhuman(gts, preds[:2] + empty)
    for key in ('AP50', 'mMR', 'recall', 'num_imgs', 'num_gts'):
        assert sub[key] == padded[key]
    stranger = Prediction('nobody', (10, 10), np.zeros((0, 4)), np.zeros(0))
    with pytest.raises(ValueError, match="'nobody'.*not in the ann"):
        evaluate_crowdhuman(gts, preds + [stranger],
                            source='the annotation file')
    with pytest.raises(ValueError, match='twice'):
        evaluate_crowdhuman(gts, preds + preds[:1])
