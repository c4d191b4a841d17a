"""Smoke runs of tools/benchmarks/*.py with --quick: each prints its markdown
table and its correctness checks pass (no timing assertions)."""
import importlib.util
import sys
import os.path as osp

import pytest
import torch

from conftest import REPO_ROOT

BENCH_DIR = osp.join(REPO_ROOT, 'tools', 'benchmarks')


def load(name):
    """Import tools/benchmarks/<name>.py as a module (tools/ is no
    package); its folder goes on sys.path, as when it runs as a script, for
    the shared bench_utils."""
    if BENCH_DIR not in sys.path:
        sys.path.insert(0, BENCH_DIR)
    spec = importlib.util.spec_from_file_location(
        f'mmlla_bench_{name}', osp.join(BENCH_DIR, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table_rows(text, first_header):
    """Data rows of the markdown table whose header starts with
    ``first_header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.startswith(f'| {first_header} |'))
    assert lines[start + 1].startswith('|---')
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith('|'):
            break
        rows.append([c.strip() for c in line.strip('|').split('|')])
    return rows


def test_utils_sizes_and_priors():
    bu = load('bench_utils')
    # 800x1333 pads to 800x1344: 100x168, 50x84, 25x42, 13x21, 7x11
    assert bu.featmap_sizes((800, 1333)) == [(100, 168), (50, 84), (25, 42),
                                             (13, 21), (7, 11)]
    priors, per_level = bu.make_priors((800, 1333))
    assert per_level == [16800, 4200, 1050, 273, 77]
    assert priors.shape == (22400, 4)
    assert priors[0].tolist() == [4.0, 4.0, 8.0, 8.0]
    gen = torch.Generator().manual_seed(0)
    boxes = bu.make_crowd(50, (800, 1333), gen)
    assert (boxes[:, 0] >= -1e-3).all() and (boxes[:, 2] <= 1333 + 1e-3).all()
    assert (boxes[:, 3] - boxes[:, 1] > boxes[:, 2] - boxes[:, 0]).all()
    pred = bu.make_predictions(priors, boxes, gen)
    # decoded from non-negative distances: every point is inside its box
    assert (pred[:, :2] <= priors[:, :2]).all()
    assert (pred[:, 2:] >= priors[:, :2]).all()
    assert bu.growth_exponent([1, 2, 4], [1.0, 2.0, 4.0]) == pytest.approx(1)
    assert bu.growth_exponent([1, 2], [1.0, 4.0]) == pytest.approx(2)
    assert bu.loglog_slope([10, 100, 1000], [2.0, 20.0, 200.0]) == \
        pytest.approx(1)


def test_peak_memory_counts_live_tensors():
    bu = load('bench_utils')

    def two_64mib():
        a = torch.ones(16 * 2**20)  # 64 MiB
        b = a + 1  # another 64 MiB alive at the same time
        return float(b[0])

    peak = bu.peak_memory_mb(two_64mib, timeout_s=60)
    assert 120 < peak < 140


def test_bench_assigners_quick(capsys):
    # --try-chunk 4096: LossAwareAssigner also runs in chunks of 2 GTs,
    # and must still agree with the dense reference
    out = load('bench_assigners').main(['--quick', '--try-chunk', '4096'])
    text = capsys.readouterr().out
    assert len(table_rows(text, 'G')) == 2  # CrowdHuman time table
    # a time and a memory table per scale
    assert text.count('| G | LLA ms | LLA us/GT | dense ms |') == 2
    assert text.count('| G | LLA | dense | LLA/dense |') == 2
    results = out['results']
    assert {r['scale'] for r in results} == {'CrowdHuman', 'COCO'}
    # LossAwareAssigner agrees with the literal dense reference everywhere
    assert all(r['identical'] for r in results), results
    assert all(r['num_pos'] > 0 for r in results)
    assert all(r['memory']['dense'] > 0 for r in results)
    assert all('LLA-chunk4096' in r['times'] for r in results)
    # the previous (dense) LossAwareAssigner path is timed beside it
    assert all('LLA-ref' in r['times'] and r['in_box'] > 0 for r in results)
    assert '| LLA gt_inds identical to dense reference | 4/4 cases | met |' \
        in text
    # --quick forced the sparse path for its small inputs, then restored
    from mmlla.models.task_modules.assigners import loss_aware_assigner
    assert loss_aware_assigner.SPARSE_MIN_PAIRS == 2**17
    assert loss_aware_assigner.SPARSE_MIN_PAIRS_CUDA == 2**23


def test_dense_reference_semantics():
    """The literal reference on a case small enough to reason about: one GT
    takes exactly topk=10 points, a perfect point (p=0.999, box == GT) among
    them; an ignore region's points get -1."""
    bench = load('bench_assigners')
    case = bench.make_case((128, 128), 1, 1, 0, seed=3, device='cpu')
    priors, scores, bboxes = case['priors'], case['scores'].clone(), \
        case['bboxes'].clone()
    gt = torch.tensor([[10.0, 10.0, 50.0, 110.0]])
    inside = ((priors[:, 0] > 10) & (priors[:, 0] < 50) &
              (priors[:, 1] > 10) & (priors[:, 1] < 110))
    perfect = int(inside.nonzero()[3])
    scores[perfect], bboxes[perfect] = 0.999, gt[0]
    gt_inds = bench.dense_lla_reference(priors, scores, bboxes, gt,
                                        torch.zeros(1, dtype=torch.long))
    assert int((gt_inds == 1).sum()) == 10
    assert gt_inds[perfect] == 1
    assert set(gt_inds.unique().tolist()) == {0, 1}
    ignore = torch.tensor([[70.0, 10.0, 120.0, 110.0]])
    gt_inds = bench.dense_lla_reference(priors, scores, bboxes, gt,
                                        torch.zeros(1, dtype=torch.long),
                                        ignore)
    assert int((gt_inds == 1).sum()) == 10
    assert int((gt_inds == -1).sum()) == 10


def test_bench_poto_quick(capsys):
    out = load('bench_poto').main(['--quick'])
    text = capsys.readouterr().out
    assert len(table_rows(text, 'prior radius')) == 4
    assert all(r['same_optimum'] for r in out['results'])
    assert '| same optimum as dense | 4/4 cases | met |' in text
    # sparse POTOAssigner and ForegroundLossAssigner give the gt_inds of
    # their previous dense paths (sparse path forced by --quick)
    assert all(r['same_gt_inds'] for r in out['results'])
    assert all({'POTO', 'ref', 'dense', 'FG', 'FG-ref'} <= set(r['times'])
               for r in out['results'])
    from mmlla.models.task_modules.assigners import sparse_utils
    assert sparse_utils.SPARSE_MIN_PAIRS == 2**19
    assert sparse_utils.SPARSE_MIN_PAIRS_CUDA == 2**21


def test_bench_train_step_quick(capsys):
    out = load('bench_train_step').main(['--quick'])
    text = capsys.readouterr().out
    rows = table_rows(text, 'detector')
    assert [r[0] for r in rows] == ['LLA.FCOS', 'POTO+3DMF+Aux', 'FCOS',
                                    'POTO', 'POTO+3DMF']
    parts = [r[0] for r in table_rows(text, 'part')]
    assert parts[:3] == ['POTO step - FCOS step', '3DMF (POTO+3DMF - POTO)',
                         'Aux (POTO+3DMF+Aux - POTO+3DMF)']
    assert set(out['results']['POTO+3DMF+Aux']['parts']) == {
        'POTOAssigner.assign', 'POTOAuxAssigner.assign', '3DMF forward'}
    for name, r in out['results'].items():
        assert r['step'] > 0
        # the wrapped assigners were really called, and are part of a step
        assert 0 < r['assign'] < r['step'], name
    assert out['results']['LLA.FCOS']['wrapped'] == [
        'LossAwareAssigner.assign'
    ]


def test_bench_inference_quick(capsys):
    out = load('bench_inference').main(['--quick'])
    text = capsys.readouterr().out
    assert len(table_rows(text, 'people')) == 2
    for r in out['results']:
        # NMS-free keeps test_cfg.max_per_img (500) of the many candidates;
        # NMS collapses the duplicates of each person
        assert r['dets']['POTO (NMS-free)'] == 500
        assert 0 < r['dets']['FCOS + NMS'] < r['dets']['POTO (NMS-free)']


def test_bench_crowdhuman_metric_quick(capsys):
    out = load('bench_crowdhuman_metric').main(['--quick'])
    text = capsys.readouterr().out
    assert out['agree']  # AP50 / mMR within mmdet's 1e-4 rounding
    assert len(table_rows(text, 'images')) == 1
    ji = table_rows(text, 'JI')
    assert len(ji) == 1 and ji[0][0].startswith('max-cardinality')
    assert 0 < out['ji']['ours'] < 1 and 0 < out['ji']['ref'] < 1
    # the crowded image: blocks, with and without the JI (no one-block run
    # in --quick), the same numbers
    stress = table_rows(text, 'overlaps')
    assert [r[:2] for r in stress] == [['blocks', 'no'], ['blocks', 'yes']]
    assert out['stress_same']
    assert all(r['rss_mib'] > 0 and r['traced_mib'] > 0
               for r in out['stress'])
    assert 'CPUs usable (nproc)' in text and 'load average before' in text


def test_bench_crowdhuman_metric_blocks_match_one_block(capsys):
    """The one-block run (the whole IoU matrix) is compared with blocks."""
    out = load('bench_crowdhuman_metric').main(
        ['--num-images', '4', '--dets-per-img', '20', '--no-ji',
         '--stress-people', '50', '--stress-dets', '3000'])
    text = capsys.readouterr().out
    modes = [r[:2] for r in table_rows(text, 'overlaps')]
    assert modes == [['blocks', 'no'], ['blocks', 'yes'], ['one block', 'no']]
    assert out['stress_same'] and out['agree']
    assert 'Blocks give the same sorted TP/FP list as one block: yes' in text
