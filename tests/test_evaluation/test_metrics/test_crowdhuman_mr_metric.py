import os.path as osp
import pickle
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from crowdhuman_cases import (data_samples, random_case,  # noqa: E402
                              write_odgt)

from mmdet.registry import METRICS  # noqa: E402

import mmlla  # noqa: E402,F401
from mmlla.evaluation import CrowdHumanMRMetric  # noqa: E402

KEYS = ('crowdhuman/AP50', 'crowdhuman/mMR', 'crowdhuman/recall')


def run_metric(ann_file, preds, **kwargs):
    metric = METRICS.build(
        dict(type='CrowdHumanMRMetric', ann_file=ann_file, **kwargs))
    samples = data_samples(preds)
    for start in range(0, len(samples), 2):  # batches of 2
        metric.process(None, samples[start:start + 2])
    return metric.evaluate(len(samples))


def test_registered_and_compact_results(tmp_path):
    records, preds = random_case(np.random.default_rng(0), 3)
    f = write_odgt(tmp_path / 'gt.odgt', records)
    metric = METRICS.build(dict(type='CrowdHumanMRMetric', ann_file=f))
    assert isinstance(metric, CrowdHumanMRMetric)
    metric.process(None, data_samples(preds))
    # One small tuple of numpy arrays per image, nothing per GT.
    assert len(metric.results) == 3
    img_id, shape, boxes, scores = metric.results[0]
    assert (img_id, shape) == (preds[0][0], preds[0][1])
    assert isinstance(boxes, np.ndarray) and boxes.shape == (len(scores), 4)
    assert boxes.dtype == np.float32 and scores.dtype == np.float32
    out = metric.evaluate(3)
    assert set(out) == set(KEYS)
    assert all(0 <= v <= 1 for v in out.values())
    with pytest.raises(ValueError, match='mr_range'):
        CrowdHumanMRMetric(f, mr_range='CALTECH_-3')
    with pytest.raises(ValueError, match='body'):
        CrowdHumanMRMetric(f, body='torso')


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_agrees_with_mmdet_crowdhuman_metric(tmp_path, seed):
    """mmdet's metric end to end (it rounds to 4 decimals)."""
    from mmdet.evaluation import CrowdHumanMetric
    rng = np.random.default_rng(seed + 40)
    records, preds = random_case(rng, 12, max_people=30, max_dets=100)
    f = write_odgt(tmp_path / 'gt.odgt', records)
    oracle = CrowdHumanMetric(
        ann_file=f, metric=['AP', 'MR'],
        mr_ref='CALTECH_-4' if seed == 2 else 'CALTECH_-2', num_ji_process=1)
    oracle.process(None, data_samples(preds))
    ref = oracle.compute_metrics(oracle.results)
    ours = run_metric(f, preds, mr_range='-4' if seed == 2 else '-2')
    assert ours['crowdhuman/AP50'] == pytest.approx(ref['mAP'], abs=1e-4)
    assert ours['crowdhuman/mMR'] == pytest.approx(ref['mMR'], abs=1e-4)
    assert 0.05 < ours['crowdhuman/AP50'] < 0.95


def test_with_ji_key(tmp_path):
    records, preds = random_case(np.random.default_rng(7), 3)
    f = write_odgt(tmp_path / 'gt.odgt', records)
    out = run_metric(f, preds, with_ji=True)
    assert set(out) == set(KEYS) | {'crowdhuman/JI'}
    assert 0 < out['crowdhuman/JI'] < 1


def test_where_mmdet_fails(tmp_path):
    """Images without GT or detections, empty set, unknown image IDs."""
    records, preds = random_case(np.random.default_rng(11), 4)
    records.append(dict(ID='empty', gtboxes=[]))  # mmdet: unpack error
    preds.append(('empty', (60, 80), np.array([[1, 1, 20, 40]], np.float32),
                  np.array([0.99], np.float32)))
    f = write_odgt(tmp_path / 'gt.odgt', records)
    with_empty = run_metric(f, preds)
    without = run_metric(f, preds[:-1])
    # The lone FP of the GT-less image comes first in the list: it can only
    # lower AP and leave recall unchanged.
    assert with_empty['crowdhuman/recall'] == without['crowdhuman/recall']
    assert with_empty['crowdhuman/AP50'] < without['crowdhuman/AP50']

    # Every image without detections (mmdet: mMR NaN).
    no_dets = [(i, s, np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
               for i, s, _, _ in preds]
    out = run_metric(f, no_dets)
    assert [out[k] for k in KEYS] == [0.0, 1.0, 0.0]

    # Empty prediction set.
    metric = CrowdHumanMRMetric(f)
    assert [metric.compute_metrics([])[k.split('/')[1]]
            for k in KEYS] == [0.0, 1.0, 0.0]

    # An image ID that the annotation file lacks (mmdet: an assertion that
    # talks about shuffling).
    stray = preds[:2] + [('ghost-7', (10, 10), np.zeros((0, 4), np.float32),
                          np.zeros(0, np.float32))]
    with pytest.raises(ValueError, match=r"'ghost-7'.*gt\.odgt"):
        run_metric(f, stray)


def test_prediction_order_does_not_matter(tmp_path):
    records, preds = random_case(np.random.default_rng(12), 6,
                                 tie_scores=True)
    f = write_odgt(tmp_path / 'gt.odgt', records)
    assert run_metric(f, preds) == run_metric(f, preds[::-1])


def _dist_worker(rank, world, init_file, ann_file, preds, out_file):
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group(
        'gloo', init_method=f'file://{init_file}', rank=rank,
        world_size=world)
    try:
        # DefaultSampler: pad to a multiple of the world size with the first
        # images, rank r takes every world-th image from r.
        n = len(preds)
        total = -(-n // world) * world
        indices = (list(range(n)) * 2)[:total]
        metric = CrowdHumanMRMetric(ann_file)
        metric.process(None, data_samples([preds[i]
                                           for i in indices[rank::world]]))
        out = metric.evaluate(n)
        if rank == 0:
            with open(out_file, 'wb') as f:
                pickle.dump(out, f)
    finally:
        dist.destroy_process_group()


def test_distributed_two_ranks(tmp_path):
    """Gathered by mmengine's collect_results over gloo, padding dropped."""
    records, preds = random_case(np.random.default_rng(13), 5)
    f = write_odgt(tmp_path / 'gt.odgt', records)
    out_file = str(tmp_path / 'out.pkl')
    torch.multiprocessing.spawn(
        _dist_worker,
        args=(2, str(tmp_path / 'init'), f, preds, out_file),
        nprocs=2)
    with open(out_file, 'rb') as fh:
        dist_out = pickle.load(fh)
    assert dist_out == run_metric(f, preds)
