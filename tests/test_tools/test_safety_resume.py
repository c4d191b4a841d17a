"""--resume never runs code from a checkpoint and refuses broken ones.

mmengine's Runner.resume runs ``meta['config']`` as Python
(``Config.fromstring``) and resumes a checkpoint of another model with
random weights; tools/train.py protects its runner (mmlla.utils.
protect_runner).
"""
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import FCOS_TINY, data_opts, train

import mmlla  # noqa: F401  (allow-list for loading the checkpoints here)
from mmlla.utils import CheckpointError, load_checkpoint_file

# anchor-based: its head tensors are not in an FCOS checkpoint
RETINA_TINY = 'configs/lla/lla-retinanet_tiny_synthetic.py'


def _work_dir_copy(trained, dst):
    """A copy of the shared work dir whose last_checkpoint points into it."""
    shutil.copytree(trained, dst)
    with open(dst / 'last_checkpoint', 'w') as f:
        f.write(str(dst / 'iter_3.pth'))
    return dst


def _train_proc(repo_root, root, work_dir, iters, extra=(), config=FCOS_TINY,
                options=()):
    """tools/train.py as conftest.train, returning the finished process."""
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    return subprocess.run([
        sys.executable, 'tools/train.py', config, '--work-dir',
        str(work_dir), *extra, '--cfg-options', f'train_cfg.max_iters={iters}',
        f'train_cfg.val_interval={iters + 1}', 'randomness.seed=0',
        f'default_hooks.checkpoint.interval={iters}',
        'default_hooks.logger.interval=1', *options, *data_opts(root)
    ], cwd=repo_root, env=env, capture_output=True, text=True, timeout=600)


def test_real_training_checkpoint_loads_weights_only(trained):
    ckpt = load_checkpoint_file(str(trained / 'iter_3.pth'))
    assert ckpt['meta']['iter'] == 3
    scalars = ckpt['message_hub']['log_scalars']
    assert scalars['train/loss'].current() > 0  # HistoryBuffer, numpy inside


def test_resume_never_runs_the_checkpoints_config(trained, synthetic_root,
                                                  repo_root, tmp_path):
    marker = tmp_path / 'owned'
    ckpt = load_checkpoint_file(str(trained / 'iter_3.pth'))
    payload = f'_ = open({str(marker)!r}, "w").write("owned")\n'
    ckpt['meta']['config'] = payload  # Runner.resume runs this
    ckpt['meta']['cfg'] = payload  # mmengine's inferencers run this
    crafted = tmp_path / 'crafted.pth'
    torch.save(ckpt, str(crafted))
    # still an ordinary weights-only checkpoint: only strings in the meta
    assert torch.load(str(crafted))['meta']['config'] == payload

    work_dir = tmp_path / 'work'
    proc = train(repo_root, synthetic_root, work_dir, 4,
                 extra=['--resume', str(crafted)])
    log = proc.stdout + proc.stderr
    assert not marker.exists(), 'the checkpoint ran code on --resume'
    assert "ignoring meta['config'] of checkpoint" in log
    assert 'Iter(train) [4/4]' in log and 'Iter(train) [3/4]' not in log
    assert load_checkpoint_file(str(work_dir / 'iter_4.pth'))['meta'][
        'iter'] == 4


def test_resume_warns_that_the_checkpoints_optimizer_wins(
        trained, synthetic_root, repo_root, tmp_path):
    work_dir = _work_dir_copy(trained, tmp_path / 'work')
    proc = _train_proc(repo_root, synthetic_root, work_dir, 4, ['--resume'],
                       options=['optim_wrapper.optimizer.lr=0.05'])
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert ('optimizer lr (before scheduling): 0.05 in the config, 0.002 in '
            'the checkpoint') in log, log[-3000:]
    assert "the checkpoint's values win" in log
    # and they do: the resumed optimizer still has the checkpoint's lr
    resumed = load_checkpoint_file(str(work_dir / 'iter_4.pth'))
    assert resumed['optimizer']['param_groups'][0]['initial_lr'] == 0.002


def test_resume_from_another_model_is_refused(trained, synthetic_root,
                                              repo_root, tmp_path):
    ckpt = str(trained / 'iter_3.pth')
    proc = _train_proc(repo_root, synthetic_root, tmp_path / 'retina', 4,
                       ['--resume', ckpt], config=RETINA_TINY)
    assert proc.returncode != 0
    assert 'CheckpointError' in proc.stderr, proc.stderr[-3000:]
    assert f'checkpoint {ckpt} holds weights of another model: 4 of the ' \
        'RetinaNet model' in proc.stderr, proc.stderr[-3000:]
    assert 'Iter(train)' not in proc.stdout + proc.stderr


def _broken(kind, src, dst):
    """A copy of checkpoint ``src`` broken in one way."""
    if kind == 'truncated':
        data = open(src, 'rb').read()
        open(dst, 'wb').write(data[:len(data) // 2])
        return
    ckpt = load_checkpoint_file(src)
    state = ckpt['state_dict']
    if kind == 'missing_head':
        del state['bbox_head.conv_cls.weight']
        del state['bbox_head.conv_cls.bias']
    elif kind == 'other_shapes':
        state['bbox_head.conv_reg.weight'] = torch.zeros(8, 32, 3, 3)
    elif kind == 'non_tensor':
        state['bbox_head.conv_cls.bias'] = [0.0]
    elif kind == 'non_string_key':
        state[7] = torch.zeros(1)
    elif kind == 'no_iter':
        del ckpt['meta']['iter']
    torch.save(ckpt, dst)


@pytest.fixture(scope='module')
def fcos_runner(tmp_path_factory, repo_root):
    """An FCOS tiny runner as tools/train.py builds it (not trained)."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmlla.utils import apply_training_safety, protect_runner
    cfg = Config.fromfile(osp.join(repo_root, FCOS_TINY))
    cfg.work_dir = str(tmp_path_factory.mktemp('fcos_runner'))
    cfg.launcher = 'none'
    apply_training_safety(cfg)
    return protect_runner(Runner.from_cfg(cfg))


@pytest.mark.parametrize('kind,match', [
    ('truncated', 'cannot be read'),
    ('missing_head', 'holds weights of another model: 2 of the FCOS'),
    ('other_shapes', 'does not fit the model'),
    ('non_tensor', 'values that are not tensors: bbox_head.conv_cls.bias'),
    ('non_string_key', 'keys that are not strings: \\[7\\]'),
    ('no_iter', "cannot be resumed: meta\\['iter'\\] is None"),
])
def test_broken_checkpoints_are_refused_naming_the_file(
        kind, match, fcos_runner, trained, tmp_path):
    path = str(tmp_path / f'{kind}.pth')
    _broken(kind, str(trained / 'iter_3.pth'), path)
    before = {k: v.clone() for k, v in fcos_runner.model.state_dict().items()}
    with pytest.raises(CheckpointError,
                       match=f'checkpoint {path} .*{match}'):
        fcos_runner.resume(path)
    # refused before anything was loaded
    after = fcos_runner.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_load_from_drops_the_config_source(fcos_runner, trained, tmp_path):
    """load_from (fine-tuning, tools/test.py) gets the same treatment."""
    marker = tmp_path / 'owned'
    ckpt = load_checkpoint_file(str(trained / 'iter_3.pth'))
    ckpt['meta']['config'] = f'_ = open({str(marker)!r}, "w")\n'
    path = str(tmp_path / 'crafted.pth')
    torch.save(ckpt, path)
    loaded = fcos_runner.load_checkpoint(path)
    assert 'config' not in loaded['meta'] and 'cfg' not in loaded['meta']
    assert not marker.exists()
    bias = 'bbox_head.conv_cls.bias'
    assert torch.equal(fcos_runner.model.state_dict()[bias],
                       ckpt['state_dict'][bias])
