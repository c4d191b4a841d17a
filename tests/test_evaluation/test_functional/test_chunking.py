"""Overlaps by blocks of detections give the numbers of one block.

``chunk_rows`` forces tiny blocks; one block is the former whole-matrix
path (``chunk_rows`` >= the number of detections). The memory bound itself
is measured by ``tools/benchmarks/bench_crowdhuman_metric.py``; a generous
subprocess check guards against a return of the (D x G) matrix.
"""
import importlib.util
import os
import os.path as osp
import subprocess
import sys
import textwrap

import numpy as np
import pytest

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from crowdhuman_cases import (oracle_unrounded, random_case,  # noqa: E402
                              write_odgt)

from mmlla.evaluation.functional import (  # noqa: E402
    Prediction, crowdhuman_mr, evaluate_crowdhuman, jaccard_index_image,
    load_crowdhuman_gt, match_crowdhuman_image)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
BENCH = osp.join(REPO, 'tools', 'benchmarks', 'bench_crowdhuman_metric.py')


@pytest.fixture(scope='module')
def dense_image():
    """bench_crowdhuman_metric.make_dense_image at a test size: 300 people,
    6000 detections (one block by default: 6000 x 300 < CHUNK_ELEMS)."""
    if osp.dirname(BENCH) not in sys.path:  # bench_utils beside it
        sys.path.insert(0, osp.dirname(BENCH))
    spec = importlib.util.spec_from_file_location('bench_chm_chunk', BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_dense_image(300, 6000, seed=3)


def _labels_of(out):
    tp = np.round(out['recall_curve'] * out['num_gts']).astype(int)
    return np.diff(np.concatenate([[0], tp])).astype(np.int8)


@pytest.mark.filterwarnings('ignore::RuntimeWarning')
def test_blocks_equal_one_block_and_mmdet_on_random_crowds(tmp_path):
    for seed in range(40):
        rng = np.random.default_rng(seed + 4000)
        records, preds = random_case(rng, 3, tie_scores=seed % 2 == 1)
        f = write_odgt(tmp_path / 'gt.odgt', records)
        gts = load_crowdhuman_gt(f)
        preds_ = [Prediction(*p) for p in preds]
        whole = evaluate_crowdhuman(gts, preds_, with_ji=True,
                                    chunk_rows=10**6)
        for rows in (1, 2, 7):
            part = evaluate_crowdhuman(gts, preds_, with_ji=True,
                                       chunk_rows=rows)
            for key in ('AP50', 'mMR', 'recall', 'JI'):
                assert part[key] == whole[key], (seed, rows, key)
            assert np.array_equal(part['scores'], whole['scores'])
            assert np.array_equal(_labels_of(part), _labels_of(whole))
        if seed < 10:
            labels = oracle_unrounded(f, preds, tmp_path)[3]
            assert np.array_equal(_labels_of(whole), labels), seed


def test_blocks_equal_one_block_on_a_crowded_image(dense_image,
                                                   monkeypatch):
    gt, pred = dense_image
    args = (pred.bboxes, pred.scores, gt, pred.img_shape)
    s1, l1 = match_crowdhuman_image(*args, chunk_rows=10**6)
    assert (l1 == 1).sum() > 250 and (l1 == -1).sum() > 10
    for rows in (1, 64, 999):
        s2, l2 = match_crowdhuman_image(*args, chunk_rows=rows)
        assert np.array_equal(s1, s2) and np.array_equal(l1, l2), rows
    # automatic blocks: a small pair budget splits the detections
    monkeypatch.setattr(crowdhuman_mr, 'CHUNK_ELEMS', 5000)
    monkeypatch.setattr(crowdhuman_mr, 'PAIR_CHUNK_ELEMS', 700)
    assert crowdhuman_mr.chunk_rows_for(300) == 16
    s2, l2 = match_crowdhuman_image(*args)
    assert np.array_equal(l1, l2)
    t2 = jaccard_index_image(*args)
    monkeypatch.undo()
    t1 = jaccard_index_image(*args, chunk_rows=10**6)
    assert np.array_equal(t1, t2)
    assert np.array_equal(t1, jaccard_index_image(*args, chunk_rows=5))
    assert t1[0, 0] > 250


PEAK_SCRIPT = textwrap.dedent('''
    import importlib.util, sys
    sys.path.insert(0, {repo!r})
    sys.path.insert(0, {benchdir!r})
    spec = importlib.util.spec_from_file_location('bench', {bench!r})
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    from mmlla.evaluation.functional import evaluate_crowdhuman

    def status(key):
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1])

    gt, pred = bench.make_dense_image(2000, 100000, seed=0)
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # VmHWM := VmRSS
    base = status('VmRSS')
    out = evaluate_crowdhuman({{'dense': gt}}, [pred], with_ji=True)
    print((status('VmHWM') - base) / 1024, out['recall'], out['JI'])
''')


@pytest.mark.skipif(not osp.exists('/proc/self/clear_refs'),
                    reason='needs Linux /proc/self/clear_refs')
def test_crowded_image_peak_rss_is_bounded(tmp_path):
    """2000 people and 100,000 detections in one image: the whole IoU matrix
    took ~4.5 GiB; by blocks the call adds well under 1 GiB of RSS
    (benchmark: see docs/evaluation.md)."""
    script = tmp_path / 'peak.py'
    script.write_text(PEAK_SCRIPT.format(repo=REPO, bench=BENCH,
                                          benchdir=osp.dirname(BENCH)))
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, str(script)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    peak_mib, recall, ji = (float(v) for v in proc.stdout.split()[-3:])
    assert peak_mib < 1024, peak_mib
    assert recall == 1.0 and 0 < ji < 1
