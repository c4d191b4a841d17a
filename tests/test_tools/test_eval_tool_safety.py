"""tools/analysis_tools/eval_crowdhuman.py on hostile or broken inputs:
result IDs that are paths never make it read outside --img-dir, sizes read
from the images are the decoded ones, malformed CrowdDet files name file
and line."""
import builtins
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from eval_tool_cases import (  # noqa: F401 (the fixture tool)
    random_case, tool, write_odgt)

from mmlla.evaluation import CrowdHumanMRMetric


@pytest.fixture
def case(tmp_path):
    records, preds = random_case(np.random.default_rng(8), 3)
    gt = write_odgt(tmp_path / 'gt.odgt', records)
    return tmp_path, gt, preds


def _records(preds, with_size=True):
    out = []
    for img_id, (h, w), boxes, scores in preds:
        rec = dict(ID=img_id, dtboxes=[
            dict(box=[float(b[0]), float(b[1]), float(b[2] - b[0]),
                      float(b[3] - b[1])], score=float(s))
            for b, s in zip(boxes, scores)])
        if with_size:
            rec.update(height=h, width=w)
        out.append(rec)
    return out


def _write_lines(path, records):
    with open(path, 'w', encoding='utf-8') as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + '\n')
    return str(path)


class _OpenSpy:

    def __init__(self, monkeypatch):
        self.paths = []
        real_open, real_pil = builtins.open, Image.open

        def spy_open(file, *args, **kwargs):
            if isinstance(file, (str, bytes, os.PathLike)):
                self.paths.append(osp.abspath(os.fsdecode(file)))
            return real_open(file, *args, **kwargs)

        def spy_pil(fp, *args, **kwargs):
            if isinstance(fp, (str, bytes, os.PathLike)):
                self.paths.append(osp.abspath(os.fsdecode(fp)))
            return real_pil(fp, *args, **kwargs)

        monkeypatch.setattr(builtins, 'open', spy_open)
        monkeypatch.setattr(Image, 'open', spy_pil)


@pytest.mark.parametrize('bad_id,reason', [
    ('../secret', 'contains a path separator'),
    ('../../secret', 'contains a path separator'),
    ('sub/../../secret', 'contains a path separator'),
    ('..\\secret', 'contains a path separator'),
    ('a\x00b', 'contains a NUL character'),
    ('', 'is empty'),
    ('..', 'is a relative path component'),
    ('ABS', 'contains a path separator'),
])
def test_result_ids_that_are_paths_never_leave_img_dir(
        tool, case, monkeypatch, bad_id, reason):
    tmp_path, gt, preds = case
    img_dir = tmp_path / 'imgs'
    img_dir.mkdir()
    (img_dir / 'sub').mkdir()
    for img_id, (h, w), _, _ in preds:
        Image.new('RGB', (w, h)).save(img_dir / f'{img_id}.jpg')
    # readable images where the paths lead
    Image.new('RGB', (7, 5)).save(tmp_path / 'secret.jpg')
    Image.new('RGB', (7, 5)).save(tmp_path.parent / 'secret.jpg')
    if bad_id == 'ABS':
        bad_id = str(tmp_path / 'secret')
    recs = _records(preds, with_size=False)
    recs[1]['ID'] = bad_id
    dets = _write_lines(tmp_path / 'dets.odgt', recs)
    spy = _OpenSpy(monkeypatch)
    with pytest.raises(ValueError, match=r'dets\.odgt:2: image ID .* ' +
                       reason):
        tool.main([gt, dets, '--img-dir', str(img_dir)])
    inside = osp.abspath(str(img_dir)) + os.sep
    read = [p for p in spy.paths if p.endswith('.jpg')]
    assert all(p.startswith(inside) for p in read), read


def test_sizes_from_img_dir_are_the_decoded_sizes(tool, case):
    """An image stored 60 x 40 with EXIF orientation 6 decodes (mmcv's
    loader, hence ori_shape) as 40 wide, 60 high."""
    tmp_path, gt, preds = case
    img_dir = tmp_path / 'imgs'
    img_dir.mkdir()
    for k, (img_id, (h, w), _, _) in enumerate(preds):
        exif = Image.Exif()
        exif[0x0112] = 6 if k == 0 else 1
        # stored transposed for the rotated one
        size = (h, w) if k == 0 else (w, h)
        Image.new('RGB', size).save(img_dir / f'{img_id}.jpg',
                                    exif=exif.tobytes())
    dets = _write_lines(tmp_path / 'dets.odgt',
                        _records(preds, with_size=False))
    loaded = tool.load_crowddet_results(dets, str(img_dir))
    assert [p.img_shape for p in loaded] == [p[1] for p in preds]
    out = tool.main([gt, dets, '--img-dir', str(img_dir)])['dets.odgt']
    expected = CrowdHumanMRMetric(gt).compute_metrics(
        [tuple(p) for p in preds])
    for key in ('AP50', 'mMR', 'recall'):
        assert out[key] == pytest.approx(expected[key], abs=1e-12)


def test_line_separators_inside_strings_are_accepted(tool, case):
    tmp_path, gt, preds = case
    recs = _records(preds)
    for rec in recs:
        rec['note'] = 'a\u2028b\u2029c\x85d'
    dets = _write_lines(tmp_path / 'dets.odgt', recs)
    loaded = tool.load_crowddet_results(dets, trust_sizes=True)
    assert [p.img_id for p in loaded] == [p[0] for p in preds]
    assert tool.main([gt, dets, '--trust-result-sizes'
                      ])['dets.odgt']['num_predicted'] == 3


@pytest.mark.parametrize('edit,match', [
    (lambda r: r['dtboxes'][0].update(box=[1, 2, 10**400, 4]),
     r'dets\.odgt:2: dtboxes\[0\]\.box must be a finite number'),
    (lambda r: r['dtboxes'][0].update(score=float('inf')),
     r'dets\.odgt:2: dtboxes\[0\]\.score must be a finite number'),
    (lambda r: r.update(height=10**400),
     r'dets\.odgt:2: "height" must be a finite number'),
    (lambda r: r.update(width=0), r'dets\.odgt:2: "height"/"width" must be '
     'positive'),
    (lambda r: r['dtboxes'].append(dict(score=0.5)),
     r'dets\.odgt:2: dtboxes\[\d+\] needs "box"'),
    (lambda r: r.update(dtboxes={}), r'dets\.odgt:2: "dtboxes" must be a '
     'list'),
])
def test_malformed_crowddet_records_name_file_and_line(tool, case, edit,
                                                       match):
    tmp_path, gt, preds = case
    recs = _records(preds)
    if not recs[1]['dtboxes']:
        recs[1]['dtboxes'].append(dict(box=[1, 2, 3, 4], score=0.5))
    edit(recs[1])
    dets = _write_lines(tmp_path / 'dets.odgt', recs)
    with pytest.raises(ValueError, match=match):
        tool.main([gt, dets, '--trust-result-sizes'])


def test_non_utf8_results_name_file_and_line(tool, case):
    tmp_path, gt, preds = case
    path = tmp_path / 'dets.odgt'
    lines = [json.dumps(r).encode() for r in _records(preds)]
    lines[2] = lines[2].replace(b'"ID"', b'"I\xffD"')
    path.write_bytes(b'\n'.join(lines) + b'\n')
    with pytest.raises(ValueError, match=r'dets\.odgt:3: not UTF-8 text'):
        tool.main([gt, str(path), '--trust-result-sizes'])
