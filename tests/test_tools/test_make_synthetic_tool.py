"""tools/misc/make_synthetic_crowdhuman.py writes a synthetic set from the
command line."""
import json
import os.path as osp
import subprocess
import sys

from PIL import Image


def _records(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_command_line_tool(tmp_path, repo_root):
    out = tmp_path / 'syn'
    proc = subprocess.run([
        sys.executable,
        osp.join(repo_root, 'tools/misc/make_synthetic_crowdhuman.py'),
        '--out', str(out), '--num-train', '2', '--num-val', '1', '--seed',
        '1', '--size', '160', '120'
    ], capture_output=True, text=True, check=True)
    assert 'wrote 2 train / 1 val images' in proc.stdout
    assert len(_records(out / 'annotation_train.odgt')) == 2
    assert len(_records(out / 'annotation_val.odgt')) == 1
    rec = _records(out / 'annotation_val.odgt')[0]
    with Image.open(out / 'Images' / (rec['ID'] + '.jpg')) as img:
        assert img.size == (160, 120)


def test_command_line_profile(tmp_path, repo_root):
    """--profile crowdhuman writes what make_synthetic_crowdhuman writes
    with that profile; an unknown profile is refused before writing."""
    from mmlla.testing import make_synthetic_crowdhuman
    out = tmp_path / 'ch'
    subprocess.run([
        sys.executable,
        osp.join(repo_root, 'tools/misc/make_synthetic_crowdhuman.py'),
        '--out', str(out), '--num-train', '0', '--num-val', '2', '--size',
        '160', '120', '--profile', 'crowdhuman'
    ], capture_output=True, text=True, check=True)
    ref = make_synthetic_crowdhuman(str(tmp_path / 'ref'), 0, 2,
                                    img_size=(160, 120), show_progress=False,
                                    profile='crowdhuman')
    assert (out / 'annotation_val.odgt').read_text() == open(
        ref['val']).read()
    proc = subprocess.run([
        sys.executable,
        osp.join(repo_root, 'tools/misc/make_synthetic_crowdhuman.py'),
        '--out', str(tmp_path / 'bad'), '--profile', 'stadium'
    ], capture_output=True, text=True)
    assert proc.returncode == 2 and 'stadium' in proc.stderr
    assert not (tmp_path / 'bad').exists()
