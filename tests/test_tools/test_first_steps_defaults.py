"""First steps: readable pictures by default, short errors, one evaluation
and a work dir per config in the quick start."""
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import data_opts


def _load_script(repo_root, rel, name=None):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        name or 'mmlla_' + osp.splitext(osp.basename(rel))[0],
        osp.join(repo_root, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(repo_root, args):
    return subprocess.run([sys.executable, *args], cwd=repo_root,
                          capture_output=True, text=True, timeout=300,
                          env={**__import__('os').environ,
                               'OMP_NUM_THREADS': '1'})


# -- score thresholds --------------------------------------------------------
def test_demo_draws_from_score_half(repo_root, monkeypatch):
    demo = _load_script(repo_root, 'demo/image_demo.py')
    args = demo.parse_args(['img.jpg', 'cfg.py', '--weights', 'w.pth'])
    assert args.pred_score_thr == 0.5


def test_show_dir_sets_threshold_and_crowd_visualizer(repo_root,
                                                      monkeypatch):
    from mmengine.config import Config
    tool = _load_script(repo_root, 'tools/test.py')
    monkeypatch.setattr(sys, 'argv',
                        ['test.py', 'c.py', 'w.pth', '--show-dir', 'vis'])
    args = tool.parse_args()
    assert args.show_score_thr == 0.5
    cfg = Config(dict(default_hooks=dict(visualization=dict(
        type='DetVisualizationHook')), visualizer=dict(
            type='DetLocalVisualizer')))
    cfg = tool.trigger_visualization_hook(cfg, args)
    hook = cfg.default_hooks.visualization
    assert hook.score_thr == 0.5 and hook.test_out_dir == 'vis'
    assert cfg.visualizer.type == 'CrowdShowVisualizer'
    monkeypatch.setattr(sys, 'argv', [
        'test.py', 'c.py', 'w.pth', '--show-dir', 'vis',
        '--show-score-thr', '0.7'
    ])
    assert tool.parse_args().show_score_thr == 0.7


def test_show_visualizer_keeps_gt_panel_aligned(repo_root, tmp_path):
    """Boxes outside the picture must not shrink / shift the GT panel."""
    import mmcv
    from mmdet.registry import VISUALIZERS
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    tool = _load_script(repo_root, 'tools/test.py')
    tool._register_show_visualizer()
    vis = VISUALIZERS.build(dict(type='CrowdShowVisualizer',
                                 name='crowd_show_test'))
    img = np.zeros((120, 160, 3), np.uint8)
    img[100:, 140:] = 255  # a white corner far from every box
    sample = DetDataSample()
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[40., 40., 400., 300.], [-50., -20., 60., 50.]]),
        labels=torch.tensor([0, 0]))
    sample.pred_instances = InstanceData(
        bboxes=torch.tensor([[10., 10., 30., 30.], [50., 50., 70., 70.]]),
        scores=torch.tensor([0.9, 0.4]), labels=torch.tensor([0, 0]))
    out = tmp_path / 'p.png'
    vis.add_datasample('x', img, sample, out_file=str(out),
                       pred_score_thr=0.5)
    drawn = mmcv.imread(str(out), channel_order='rgb')
    assert drawn.shape == (120, 320, 3)
    gt_panel, pred_panel = drawn[:, :160], drawn[:, 160:]
    # the white corner is where it was, in both panels (not shrunk/offset)
    assert (gt_panel[103:115, 145:155] > 200).all()
    assert (pred_panel[103:115, 145:155] > 200).all()
    # the 0.4 detection is not drawn, the 0.9 one is
    assert (pred_panel[55:65, 50] == 0).all()
    assert pred_panel[20, 10].max() > 0


# -- short errors ------------------------------------------------------------
def test_train_without_data_is_one_line(repo_root, tmp_path):
    proc = _run(repo_root, [
        'tools/train.py', 'configs/lla/lla_r50_crowdhuman.py', '--work-dir',
        str(tmp_path), '--cfg-options',
        f'train_dataloader.dataset.data_root={tmp_path}/CrowdHuman/'
    ])
    assert proc.returncode == 1
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1, proc.stderr
    assert 'annotation_train.odgt not found' in err[0]
    assert 'README.md' in err[0] and 'CrowdHuman' in err[0]
    assert 'Traceback' not in proc.stderr + proc.stdout


def test_test_tool_refuses_a_file_that_is_no_checkpoint(
        repo_root, synthetic_root, tmp_path):
    proc = _run(repo_root, [
        'tools/test.py', 'configs/fcos/fcos_tiny_synthetic.py', 'README.md',
        '--work-dir', str(tmp_path), '--cfg-options',
        *data_opts(synthetic_root)
    ])
    assert proc.returncode == 1
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1, proc.stderr
    assert 'README.md is not a PyTorch checkpoint' in err[0]
    assert 'Unsupported operand' not in proc.stderr


def test_not_a_checkpoint_errors(tmp_path):
    from mmlla.utils.checkpoint import (NotACheckpointError,
                                        UnreadableCheckpointError,
                                        load_checkpoint_file)
    text = tmp_path / 'cfg.py'
    text.write_text('# a config\n_base_ = []\n')
    with pytest.raises(NotACheckpointError, match='not a PyTorch checkpoint'):
        load_checkpoint_file(str(text))
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    with pytest.raises(NotACheckpointError, match='empty'):
        load_checkpoint_file(str(empty))
    with pytest.raises(NotACheckpointError, match='folder'):
        load_checkpoint_file(str(tmp_path))
    # a truncated checkpoint stays "unreadable" (auto-resume skips it)
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.ones(3)}}, good)
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(good.read_bytes()[:40])
    with pytest.raises(UnreadableCheckpointError) as e:
        load_checkpoint_file(str(cut))
    assert not isinstance(e.value, NotACheckpointError)


def test_restricted_unpickler_of_old_torch(tmp_path, monkeypatch):
    """The torch < 2.6 path: same allow-list through pickle_module."""
    import os

    from mmengine.logging.history_buffer import HistoryBuffer

    import mmlla.utils.checkpoint as ckpt
    monkeypatch.setattr(ckpt, 'TORCH_HAS_NAMED_SAFE_GLOBALS', False)
    buf = HistoryBuffer()
    buf.update(1.0)
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.ones(2)},
                'meta': {'iter': np.int64(3)},
                'message_hub': {'log_scalars': {'loss': buf}}}, good)
    loaded = ckpt.load_checkpoint_file(str(good))
    assert isinstance(loaded['message_hub']['log_scalars']['loss'],
                      HistoryBuffer)
    assert loaded['meta']['iter'] == 3

    class Evil:

        def __reduce__(self):
            return (os.system, ('echo owned',))

    bad = tmp_path / 'bad.pth'
    torch.save({'state_dict': {}, 'x': Evil()}, bad)
    with pytest.raises(ckpt.CheckpointError, match='system'):
        ckpt.load_checkpoint_file(str(bad))


# -- quick start -------------------------------------------------------------
def test_quick_start_work_dir_per_config(repo_root):
    qs = _load_script(repo_root, 'tools/quick_start.py')
    assert qs.parse_args([]).work_dir == osp.join('work_dirs', 'quick_start',
                                                  'lla_tiny_synthetic')
    args = qs.parse_args(['--config', 'configs/fcos/fcos_tiny_synthetic.py'])
    assert args.work_dir == osp.join('work_dirs', 'quick_start',
                                     'fcos_tiny_synthetic')
    assert qs.parse_args(['--work-dir', 'x']).work_dir == 'x'
