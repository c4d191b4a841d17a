"""The README's quick start, shrunk: generate, train, evaluate, draw."""
import os.path as osp
import re
import sys

from conftest import run
from PIL import Image


def test_quick_start_end_to_end(tmp_path, repo_root):
    data, work = tmp_path / 'data', tmp_path / 'work'
    proc = run(repo_root, [
        sys.executable, 'tools/quick_start.py', '--data-root',
        str(data), '--work-dir',
        str(work), '--num-train', '6', '--num-val', '3', '--iters', '4'
    ])
    out = proc.stdout
    # the default detector is the tiny LLA.FCOS
    assert 'Training configs/lla/lla_tiny_synthetic.py' in out
    assert osp.exists(data / 'annotation_train.odgt')
    assert '| AP50 | mMR | recall |' in out
    assert re.search(r'^\| [\d.]+ \| [\d.]+ \| [\d.]+ \|$', out, re.M), out
    # evaluated once (test), not also by a validation at the last iteration
    log = out + proc.stderr
    assert 'Iter(val)' not in log
    assert log.count('Iter(test)') >= 1
    # the table says what it was measured on
    assert re.search(r'after 4 iterations \(batch 4\) on (CPU|GPU), '
                     r'evaluated on the 3 synthetic validation images', out)
    with Image.open(work / 'detections.png') as pic:
        assert pic.size == (960, 720)  # 320x240 drawn 3x larger
    assert osp.exists(work / 'iter_4.pth')
