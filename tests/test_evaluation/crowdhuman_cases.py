"""Random crowded CrowdHuman cases and mmdet's metric as an oracle.

Shared by the tests of ``mmlla.evaluation`` (imported as a sibling module).
"""
import json
import os.path as osp

import numpy as np

# Scores are drawn without replacement from this grid: exactly representable
# in float32 and never tied.
SCORE_GRID = 2**20


def random_box(rng, w_img, h_img, cx=None, cy=None, spread=40.0):
    """A person-shaped xywh box near (cx, cy), possibly crossing the border."""
    if cx is None:
        cx = rng.uniform(-0.1, 1.1) * w_img
        cy = rng.uniform(-0.1, 1.1) * h_img
    bw = rng.uniform(8, 90)
    bh = bw * rng.uniform(1.2, 3.0)
    x = cx + rng.normal(0, spread) - bw / 2
    y = cy + rng.normal(0, spread) - bh / 2
    return [float(np.round(x)), float(np.round(y)), float(np.round(bw)),
            float(np.round(bh))]


def random_case(rng, num_imgs, max_people=25, max_dets=60, p_no_dets=0.1,
                allow_no_gt=False, tie_scores=False, id_prefix='img'):
    """GT records (odgt dicts) and predictions of ``num_imgs`` images.

    Crowds are clusters of overlapping people; ignore regions come both as
    ``tag: mask`` and as ``person`` with ``extra.ignore: 1``; there are
    ``background`` boxes (counted as GT, matched like ignore regions), with
    ``extra.ignore`` 0 or 1, and ``mask`` boxes with ``extra.ignore: 0``;
    detections are jittered copies of every box (several per person:
    duplicates), random false positives, boxes inside ignore regions, some
    crossing the border.

    Returns:
        tuple[list[dict], list[tuple]]: The records and, per image,
        ``(img_id, (h, w), bboxes float32 (D, 4) xyxy, scores float32 (D,))``.
    """
    records, preds = [], []
    total_dets = []
    for i in range(num_imgs):
        w_img, h_img = int(rng.integers(160, 640)), int(rng.integers(120, 480))
        lo = 0 if allow_no_gt else 1
        n_people = int(rng.integers(lo, max_people + 1))
        centres = [(rng.uniform(0, w_img), rng.uniform(0, h_img))
                   for _ in range(int(rng.integers(1, 4)))]
        gtboxes = []
        for _ in range(n_people):
            cx, cy = centres[int(rng.integers(len(centres)))]
            fbox = random_box(rng, w_img, h_img, cx, cy)
            kind = rng.random()
            if kind < 0.08:
                ann = dict(tag='mask', extra=dict(ignore=1))
                fbox[2] *= 2
                fbox[3] *= 1.5
            elif kind < 0.16:
                ann = dict(tag='person', extra=dict(ignore=1))
            elif kind < 0.22:
                # matched like an ignore region, counted as a GT
                ann = dict(tag='background', extra=dict(ignore=0))
            elif kind < 0.24:
                ann = dict(tag='background', extra=dict(ignore=1))
            elif kind < 0.26:
                # evaluation: ignored (tag); training: a person (ignore 0)
                ann = dict(tag='mask', extra=dict(ignore=0))
            else:
                ann = dict(tag='person', extra=dict(ignore=0))
            x, y, bw, bh = fbox
            ann['fbox'] = fbox
            ann['vbox'] = [x + bw * 0.1, y + bh * 0.2, bw * 0.7, bh * 0.6]
            ann['hbox'] = [x + bw * 0.3, y, bw * 0.4, bh * 0.15]
            ann['head_attr'] = dict(ignore=int(rng.random() < 0.1))
            gtboxes.append(ann)
        records.append(dict(ID=f'{id_prefix}{i:05d}', gtboxes=gtboxes))

        boxes = []
        if rng.random() >= p_no_dets:
            for ann in gtboxes:
                for _ in range(int(rng.integers(0, 4))):
                    x, y, bw, bh = ann['fbox']
                    j = rng.uniform(0, 0.35)
                    boxes.append([
                        x + rng.normal(0, j * bw), y + rng.normal(0, j * bh),
                        bw * np.exp(rng.normal(0, j)),
                        bh * np.exp(rng.normal(0, j))
                    ])
            for _ in range(int(rng.integers(0, max_dets // 4 + 1))):
                boxes.append(random_box(rng, w_img, h_img, spread=0))
            rng.shuffle(boxes)
            boxes = boxes[:max_dets]
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        preds.append([records[-1]['ID'], (h_img, w_img),
                      boxes.astype(np.float32)])
        total_dets.append(len(boxes))
    n = int(sum(total_dets))
    if tie_scores:
        scores = rng.integers(1, 8, size=n) / 8
    else:
        scores = rng.choice(SCORE_GRID, size=n, replace=False) / SCORE_GRID
    scores = scores.astype(np.float32)
    out, start = [], 0
    for (img_id, shape, boxes), d in zip(preds, total_dets):
        out.append((img_id, shape, boxes, scores[start:start + d]))
        start += d
    return records, out


def write_odgt(path, records):
    with open(path, 'w') as f:
        for r in records:
            f.write(json.dumps(r) + '\n')
    return str(path)


def data_samples(preds):
    """Predictions as the dicts mmengine's Evaluator hands to ``process``."""
    import torch
    return [
        dict(img_id=img_id, ori_shape=shape,
             pred_instances=dict(bboxes=torch.from_numpy(boxes),
                                 scores=torch.from_numpy(scores)))
        for img_id, shape, boxes, scores in preds
    ]


def oracle_unrounded(ann_file, preds, tmp_dir, iou_thr=0.5, mr_ref='-2'):
    """mmdet's CrowdHumanMetric, stopped before it rounds to 4 decimals.

    Runs its own steps (JSON round trip, loading, Caltech matching, AP and
    MR) on the predictions, which must be in annotation-file order.

    Returns:
        tuple: AP, mMR, recall and the matched list's labels (1 TP, 0 FP)
        in its score order.
    """
    from mmdet.evaluation import CrowdHumanMetric
    metric = CrowdHumanMetric(
        ann_file=ann_file, metric=['AP', 'MR'], iou_thres=iou_thr,
        mr_ref=f'CALTECH_{mr_ref}', num_ji_process=1)
    results = [(dict(ID=img_id, width=shape[1], height=shape[0]),
                np.hstack([boxes, scores.reshape(-1, 1)]))
               for img_id, shape, boxes, scores in preds]
    result_file = metric.results2json(results, osp.join(str(tmp_dir), 'res'))
    samples = metric.load_eval_samples(result_file)
    score_list = metric.compare(samples)
    gt_num = sum(s.gt_num for s in samples.values()) - sum(
        s.ign_num for s in samples.values())
    ap = metric.eval_ap(score_list, gt_num, len(samples))
    mr = metric.eval_mr(score_list, gt_num, len(samples))
    labels = np.array([item[1] for item in score_list], dtype=np.int8)
    recall = labels.sum() / gt_num
    return ap, mr, recall, labels
