"""The data tools fail safely: make_synthetic_crowdhuman.py refuses an
impossible --size before writing anything; eval_crowdhuman.py refuses a
results pickle that would run code (naming the file and the global) and
still scores a plain one."""
import importlib.util
import json
import os
import os.path as osp
import pickle
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _load(rel, name):
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def make_tool():
    return _load('tools/misc/make_synthetic_crowdhuman.py', 'make_synth_tool')


@pytest.mark.parametrize('size', [('0', '240'), ('320', '0'), ('-5', '240'),
                                  ('320', '-240'), ('32', '240'),
                                  ('320', '10')])
def test_make_synthetic_refuses_impossible_size(make_tool, tmp_path, capsys,
                                                size):
    out = tmp_path / 'out'
    with pytest.raises(SystemExit) as exc:
        make_tool.main(['--out', str(out), '--num-train', '1', '--num-val',
                        '1', '--size', *size])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert '--size: image' in err and ('too small' in err), err
    assert not out.exists()


def test_make_synthetic_refuses_negative_counts(make_tool, tmp_path, capsys):
    out = tmp_path / 'out'
    with pytest.raises(SystemExit):
        make_tool.main(['--out', str(out), '--num-train', '-1'])
    assert '--num-train and --num-val must be >= 0' in capsys.readouterr().err
    assert not out.exists()


class _System:

    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return os.system, (self.cmd, )


def test_eval_tool_cli_refuses_code_running_pickle(tmp_path):
    gt = tmp_path / 'gt.odgt'
    gt.write_text(json.dumps(dict(ID='a', gtboxes=[
        dict(tag='person', fbox=[1, 2, 30, 40])])) + '\n')
    marker = tmp_path / 'marker'
    evil = tmp_path / 'evil.pkl'
    evil.write_bytes(pickle.dumps([_System(f'touch {marker}')], protocol=2))
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, 'tools/analysis_tools/eval_crowdhuman.py', str(gt),
         str(evil)], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=300)
    assert proc.returncode != 0
    assert 'UnsafePickleError' in proc.stderr
    assert f'{evil}: refused global ' in proc.stderr
    assert 'system' in proc.stderr
    assert not marker.exists()


def test_eval_tool_cli_still_scores_a_plain_results_pickle(tmp_path):
    import torch
    gt = tmp_path / 'gt.odgt'
    gt.write_text(json.dumps(dict(ID='a', gtboxes=[
        dict(tag='person', fbox=[1, 2, 30, 40]),
        dict(tag='person', fbox=[40, 2, 8, 40])])) + '\n')
    res = tmp_path / 'res.pkl'
    res.write_bytes(pickle.dumps([dict(
        img_id='a', ori_shape=(60, 50), img_shape=(60, 50),
        scale_factor=(1.0, 1.0), pred_instances=dict(
            bboxes=torch.tensor([[1., 2., 31., 42.], [40., 2., 48., 42.]]),
            scores=torch.tensor([0.9, 0.8]),
            labels=torch.zeros(2, dtype=torch.long)))], protocol=2))
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, 'tools/analysis_tools/eval_crowdhuman.py', str(gt),
         str(res), '--trust-result-sizes'], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # two TPs: recall 0.5 then 1 at precision 1 (CrowdDet's AP skips the
    # segment from recall 0), no false positive
    assert '| res.pkl | 1 | 50.00 | 0.00 | 100.00 |' in proc.stdout
