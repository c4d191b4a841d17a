import filecmp
import json
import os
import os.path as osp

import numpy as np
from PIL import Image

from mmlla.testing import make_synthetic_crowdhuman
from mmlla.testing.synthetic_crowd import MAX_PEOPLE


def _records(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _xyxy(b):
    return np.array([b[0], b[1], b[0] + b[2], b[1] + b[3]])


def test_layout_and_box_consistency(synthetic_root):
    train = _records(osp.join(synthetic_root, 'annotation_train.odgt'))
    val = _records(osp.join(synthetic_root, 'annotation_val.odgt'))
    assert (len(train), len(val)) == (8, 4)
    n_mask = 0
    for rec in train + val:
        with Image.open(osp.join(synthetic_root, 'Images',
                                 rec['ID'] + '.jpg')) as img:
            assert img.size == (320, 240)
        persons = [g for g in rec['gtboxes'] if g['tag'] == 'person']
        masks = [g for g in rec['gtboxes'] if g['tag'] == 'mask']
        n_mask += len(masks)
        assert 1 <= len(persons) <= MAX_PEOPLE
        for m in masks:
            assert m['extra']['ignore'] == 1
        for g in persons:
            f, v, h = _xyxy(g['fbox']), _xyxy(g['vbox']), _xyxy(g['hbox'])
            assert g['extra']['ignore'] == 0
            # visible part: inside the image and inside the full body
            # (boxes are rounded to 0.1 px)
            assert v[0] >= 0 and v[1] >= 0 and v[2] <= 320 and v[3] <= 240
            assert (v[:2] >= f[:2] - 0.2).all() and (v[2:] <= f[2:] + 0.2).all()
            # the head is at the top of the full body, inside it
            assert (h[:2] >= f[:2] - 0.2).all() and (h[2:] <= f[2:] + 0.2).all()
            assert h[3] < f[1] + 0.3 * (f[3] - f[1])
    assert n_mask > 0


def test_crowds_are_crowded_and_occluded(synthetic_root):
    recs = _records(osp.join(synthetic_root, 'annotation_train.odgt'))
    counts, occluded = [], []
    for rec in recs:
        persons = [g for g in rec['gtboxes'] if g['tag'] == 'person']
        counts.append(len(persons))
        for g in persons:
            f, v = _xyxy(g['fbox']), _xyxy(g['vbox'])
            fa = (f[2] - f[0]) * (f[3] - f[1])
            va = (v[2] - v[0]) * (v[3] - v[1])
            occluded.append(va < 0.7 * fa)
    assert max(counts) >= 15
    # heavy mutual occlusion: a good share of people is partly hidden
    assert np.mean(occluded) > 0.2


def test_deterministic_for_a_seed(tmp_path):
    a, b, c = (str(tmp_path / n) for n in 'abc')
    make_synthetic_crowdhuman(a, 2, 1, seed=3, show_progress=False)
    make_synthetic_crowdhuman(b, 2, 1, seed=3, show_progress=False)
    make_synthetic_crowdhuman(c, 2, 1, seed=4, show_progress=False)
    for name in ('annotation_train.odgt', 'annotation_val.odgt'):
        assert filecmp.cmp(osp.join(a, name), osp.join(b, name), shallow=False)
    imgs = sorted(os.listdir(osp.join(a, 'Images')))
    assert len(imgs) == 3
    for name in imgs:
        assert filecmp.cmp(osp.join(a, 'Images', name),
                           osp.join(b, 'Images', name), shallow=False)
    assert _records(osp.join(a, 'annotation_train.odgt')) != _records(
        osp.join(c, 'annotation_train.odgt'))
