"""The crowd study (tools/analysis_tools/crowd_study.py) and the generator's
crowd profiles."""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest

from conftest import REPO_ROOT
from mmlla.testing import make_synthetic_crowdhuman
from mmlla.testing.synthetic_crowd import (CROWDHUMAN_LIKE, DENSE,
                                            get_profile)


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'crowd_study', osp.join(REPO_ROOT, 'tools/analysis_tools/crowd_study.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


study = _load_tool()


def _write_odgt(path, records):
    with open(path, 'w') as f:
        f.write('\n'.join(json.dumps(r) for r in records) + '\n')


def test_crowd_statistics_by_hand(tmp_path):
    person = dict(tag='person', extra=dict(ignore=0))
    records = [
        dict(ID='a', gtboxes=[
            # full boxes (xywh): A and B overlap with IoU 75 / 125 = 0.6
            dict(person, fbox=[0, 0, 10, 10], vbox=[0, 0, 10, 10]),
            dict(person, fbox=[0, 2.5, 10, 10], vbox=[0, 0, 10, 2]),
            dict(person, fbox=[50, 50, 10, 20], vbox=[50, 50, 10, 10]),
            dict(tag='mask', fbox=[0, 0, 5, 5], vbox=[0, 0, 5, 5],
                 extra=dict(ignore=1)),
            # a person box marked ignore counts as an ignore region
            dict(tag='person', fbox=[0, 0, 5, 5], vbox=[0, 0, 5, 5],
                 extra=dict(ignore=1)),
        ]),
        dict(ID='b', gtboxes=[]),
    ]
    ann = str(tmp_path / 'a.odgt')
    _write_odgt(ann, records)
    stats = study.crowd_statistics(ann)
    assert stats['persons per image'] == 1.5
    assert stats['ignore regions per image'] == 1.0
    # IoU(A, B) = 0.6: above 0.3 and 0.5, not 0.7; over 2 images
    assert stats['pairs IoU > 0.3 per image'] == 0.5
    assert stats['pairs IoU > 0.5 per image'] == 0.5
    assert stats['pairs IoU > 0.7 per image'] == 0.0
    # visible ratios 1.0, 20/100, 100/200 -> bare, heavy, partial
    for key in ('bare (visible >= 70%)', 'partial (visible 30-70%)',
                'heavy (visible < 30%)'):
        assert stats[key] == pytest.approx(100 / 3)


def test_verdicts():
    summary = {
        'A': {'mMR': (40.0, 1.0), 'recall': (90.0, 0.5)},
        'B': {'mMR': (45.0, 1.5), 'recall': (91.0, 0.2)},
        'C': {'mMR': (42.0, 1.5), 'recall': (95.0, 1.0)},
    }
    assert study.verdict(summary, 'A', 'B', 'mMR') == 'reproduces'
    assert study.verdict(summary, 'B', 'A', 'mMR') == 'contradicts'
    assert study.verdict(summary, 'A', 'C', 'mMR') == 'within the spread'
    # higher is better for recall: 4.0 > 1.0 + 0.2
    assert study.verdict(summary, 'C', 'B', 'recall') == 'reproduces'
    # 1.0 lower than B beyond 0.5 + 0.2
    assert study.verdict(summary, 'A', 'B', 'recall') == 'contradicts'


def test_summarise_sample_std():
    runs = [dict(detector='FCOS', seed=s, AP50=v, mMR=100 - v, recall=v,
                 train_s=1.0) for s, v in enumerate((80.0, 82.0, 87.0))]
    out = study.summarise(runs)['FCOS']
    assert out['AP50'][0] == pytest.approx(83.0)
    assert out['AP50'][1] == pytest.approx(np.std([80, 82, 87], ddof=1))
    assert out['seeds'] == [0, 1, 2]


def test_profiles(tmp_path):
    assert get_profile('dense') is DENSE
    assert get_profile(CROWDHUMAN_LIKE) is CROWDHUMAN_LIKE
    with pytest.raises(ValueError, match='unknown crowd profile'):
        get_profile('stadium')
    with pytest.raises(ValueError, match='unknown crowd profile'):
        make_synthetic_crowdhuman(str(tmp_path / 'x'), 1, 1,
                                  profile='stadium', show_progress=False)
    # the parallel writer gives the same bytes as the sequential one
    one = make_synthetic_crowdhuman(str(tmp_path / 'seq'), 3, 3,
                                    img_size=(96, 72), show_progress=False,
                                    profile='crowdhuman')
    two = make_synthetic_crowdhuman(str(tmp_path / 'par'), 3, 3,
                                    img_size=(96, 72), show_progress=False,
                                    profile='crowdhuman', num_workers=2)
    for split in ('train', 'val'):
        assert open(one[split]).read() == open(two[split]).read()
    # the crowdhuman profile is less crowded than the default at the
    # overlaps that matter, and holds more ignore regions
    dense = make_synthetic_crowdhuman(str(tmp_path / 'd'), 0, 12,
                                      show_progress=False)
    ch = make_synthetic_crowdhuman(str(tmp_path / 'c'), 0, 12,
                                   show_progress=False,
                                   profile='crowdhuman')
    s_dense = study.crowd_statistics(dense['val'])
    s_ch = study.crowd_statistics(ch['val'])
    assert s_ch['pairs IoU > 0.5 per image'] < s_dense[
        'pairs IoU > 0.5 per image']
    assert s_ch['ignore regions per image'] > 2 * s_dense[
        'ignore regions per image']
    assert s_ch['heavy (visible < 30%)'] > s_dense['heavy (visible < 30%)']


def test_quick_study(tmp_path):
    """--quick runs all seven detectors with two seeds and writes the
    table, the raw numbers and the figure."""
    work = tmp_path / 'work'
    raw = study.main([
        '--quick', '--work-dir', str(work), '--data-root',
        str(tmp_path / 'data')
    ])
    assert len(raw['runs']) == 2 * len(study.DETECTORS)
    assert set(raw['summary']) == set(study.DETECTORS)
    on_disk = json.load(open(work / 'results.json'))
    assert on_disk['summary'].keys() == raw['summary'].keys()
    table = (work / 'results.md').read_text()
    for name in study.DETECTORS:
        assert f'| {name} |' in table
    for better, worse, metric, _ in study.ORDERINGS:
        assert f'| {better} vs {worse} | {metric} |' in table
    assert '| pairs IoU > 0.5 per image |' in table
    assert (work / 'mr_fppi.png').stat().st_size > 1000
    # POTO + NMS differs from POTO only in test_cfg.nms
    cfg = study.build_cfg('POTO + NMS', 0, study.parse_args(['--quick']),
                          'data/x/')
    assert cfg.model.test_cfg.nms == dict(type='nms', iou_threshold=0.6)
    cfg = study.build_cfg('POTO', 0, study.parse_args(['--quick']),
                          'data/x/')
    assert cfg.model.test_cfg.nms is None


def test_needs_two_seeds():
    with pytest.raises(SystemExit):
        study.parse_args(['--seeds', '0'])


def test_thin_curve_keeps_ends_and_order():
    fppi = np.linspace(0.001, 50, 5000)
    mr = np.linspace(1, 0.01, 5000)
    f, m = study.thin_curve(fppi, mr, points=50)
    assert len(f) <= 52 and f[0] == fppi[0] and f[-1] == fppi[-1]
    assert np.all(np.diff(f) > 0)
    # every kept point is a point of the curve
    idx = np.searchsorted(fppi, f)
    assert np.array_equal(fppi[idx], f) and np.array_equal(mr[idx], m)
    short = study.thin_curve(fppi[:10], mr[:10], points=50)
    assert np.array_equal(short[0], fppi[:10])


def test_collect_merges_saved_runs(tmp_path):
    stats = {k: 1.0 for k in study.CROWDHUMAN_STATS}

    def run(name, seed, mmr):
        return dict(detector=name, seed=seed, AP50=90.0, mMR=mmr,
                    recall=99.0, train_s=10.0, fppi=[0.1, 1.0],
                    miss_rate=[0.5, 0.3])

    first = dict(statistics=stats, machine='m',
                 runs=[run('FCOS', s, 40.0 + s) for s in range(3)] +
                 [run('LLA.FCOS', 0, 99.0)])
    (tmp_path / 'a.json').write_text(json.dumps(first))
    # per-run files; LLA.FCOS seed 0 given again: the later one counts
    for s in range(3):
        (tmp_path / f'l{s}.json').write_text(
            json.dumps(run('LLA.FCOS', s, 30.0 + s)))
    out = study.main([
        '--collect', str(tmp_path / 'a.json'),
        *[str(tmp_path / f'l{s}.json') for s in range(3)], '--out-dir',
        str(tmp_path / 'out')
    ])
    assert out['summary']['LLA.FCOS']['mMR'][0] == pytest.approx(31.0)
    assert out['summary']['FCOS']['mMR'][0] == pytest.approx(41.0)
    table = (tmp_path / 'out' / 'results.md').read_text()
    assert '| LLA.FCOS vs FCOS | mMR | 31.0 vs 41.0 |' in table
    assert 'reproduces' in table
    (tmp_path / 'bad.json').write_text(json.dumps(dict(detector='YOLO')))
    with pytest.raises(ValueError, match='not a crowd-study run'):
        study.main(['--collect', str(tmp_path / 'bad.json'), '--out-dir',
                    str(tmp_path / 'o2')])
