"""What cannot be scored honestly is refused by the offline tool
(tools/analysis_tools/eval_crowdhuman.py), with the file and the line, entry
or record.

Image sizes decide the clipping: a results file that lies about them is
refused when the images are given, and a CrowdDet-style file whose sizes
cannot be checked is refused unless the user trusts it explicitly."""
import json
import math
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from eval_tool_cases import (  # noqa: F401 (the fixture tool)
    random_case, tool, write_odgt)

from mmlla.datasets import ODGTFormatError
from mmlla.evaluation import CrowdHumanMRMetric


@pytest.fixture
def case(tmp_path):
    records, preds = random_case(np.random.default_rng(17), 3)
    gt = write_odgt(tmp_path / 'gt.odgt', records)
    img_dir = tmp_path / 'Images'
    img_dir.mkdir()
    for img_id, (h, w), _, _ in preds:
        Image.new('RGB', (w, h)).save(img_dir / f'{img_id}.jpg')
    return tmp_path, gt, preds, str(img_dir)


def crowddet(preds, sizes=True):
    out = []
    for img_id, (h, w), boxes, scores in preds:
        rec = dict(ID=img_id, dtboxes=[
            dict(box=[float(b[0]), float(b[1]), float(b[2] - b[0]),
                      float(b[3] - b[1])], score=float(s))
            for b, s in zip(boxes, scores)])
        if sizes:
            rec.update(height=h, width=w)
        out.append(rec)
    return out


def write_lines(path, lines):
    with open(path, 'w') as f:
        for line in lines:
            f.write((line if isinstance(line, str) else json.dumps(line)) +
                    '\n')
    return str(path)


def write_pickle(path, preds, **overrides):
    entries = [
        dict(img_id=i, ori_shape=s, pred_instances=dict(
            bboxes=torch.from_numpy(np.asarray(b, np.float32)),
            scores=torch.from_numpy(np.asarray(sc, np.float32))))
        for i, s, b, sc in preds
    ]
    for k, v in overrides.items():
        entries[int(k)].update(v)
    with open(path, 'wb') as f:
        pickle.dump(entries, f)
    return str(path)


# ----------------------------------------------------- image sizes (tool)


def test_lying_sizes_are_refused(tool, case, capsys):
    """Every image claimed 1 x 1: all boxes clip to [0,0,1,1] and random
    boxes would match every GT."""
    tmp_path, gt, preds, img_dir = case
    rng = np.random.default_rng(0)
    recs = crowddet(preds)
    for rec in recs:
        rec.update(height=1, width=1)
        for det in rec['dtboxes']:
            det['box'] = rng.uniform(0, 300, 4).tolist()
    liar = write_lines(tmp_path / 'liar.odgt', recs)
    # without the images: its sizes cannot be checked
    with pytest.raises(ValueError, match=r'liar\.odgt:1: the image sizes of '
                       r'.*cannot be checked: pass --img-dir'):
        tool.main([gt, liar])
    # with the images: the claim is checked
    h, w = preds[0][1]
    with pytest.raises(ValueError, match=rf"liar\.odgt:1: image 'img00000' "
                       rf'is {h} x {w} \(height x width\) in .*Images, but '
                       r'the results file says 1 x 1'):
        tool.main([gt, liar, '--img-dir', img_dir])
    # trusted on request only, and then the lie pays: why it is refused
    honest = write_lines(tmp_path / 'honest.odgt',
                         [dict(r, height=s[0], width=s[1])
                          for r, (_, s, _, _) in zip(recs, preds)])
    outs = tool.main([gt, liar, honest, '--trust-result-sizes'])
    assert outs['liar.odgt']['AP50'] > 0.5
    assert outs['honest.odgt']['AP50'] < 0.1
    assert outs['liar.odgt']['sizes'] == 'claimed, unchecked'
    assert '| liar.odgt | 3 |' in capsys.readouterr().out


def test_sizes_come_from_the_images(tool, case):
    tmp_path, gt, preds, img_dir = case
    expected = CrowdHumanMRMetric(gt).compute_metrics(
        [tuple(p) for p in preds])
    with_sizes = write_lines(tmp_path / 'a.odgt', crowddet(preds))
    without = write_lines(tmp_path / 'b.odgt', crowddet(preds, sizes=False))
    pkl = write_pickle(tmp_path / 'c.pkl', preds)
    outs = tool.main([gt, with_sizes, without, pkl, '--img-dir', img_dir])
    for out in outs.values():
        assert out['sizes'] == 'images'
        for key in ('AP50', 'mMR', 'recall'):
            assert out[key] == pytest.approx(expected[key], abs=1e-12)


def test_pickle_sizes_checked_against_images(tool, case, capsys):
    tmp_path, gt, preds, img_dir = case
    h, w = preds[2][1]
    pkl = write_pickle(tmp_path / 'dets.pkl', preds,
                       **{'2': dict(ori_shape=(h, w + 1))})
    with pytest.raises(ValueError, match=r"dets\.pkl: entry 2: image "
                       rf"'img00002' is {h} x {w} .* says {h} x {w + 1}"):
        tool.main([gt, pkl, '--img-dir', img_dir])
    # without --img-dir a pickle's sizes cannot be checked: refused, unless
    # the user says to trust them (then said to be unchecked)
    with pytest.raises(ValueError, match=r'dets\.pkl.*cannot be checked'):
        tool.main([gt, pkl])
    out = tool.main([gt, pkl, '--trust-result-sizes'])['dets.pkl']
    printed = capsys.readouterr().out
    assert out['sizes'] == 'claimed, unchecked'
    assert 'sizes from the results file, unchecked' in printed
    assert '| claimed, unchecked |' in printed


# --------------------------------------------- malformed results (tool)


def _edit_second(recs, edit):
    if not recs[1]['dtboxes']:
        recs[1]['dtboxes'].append(dict(box=[1, 2, 3, 4], score=0.5))
    edit(recs[1])
    return recs


@pytest.mark.parametrize('edit,match', [
    (lambda r: r['dtboxes'][0].update(score=float('nan')),
     r'dtboxes\[0\]\.score must be a finite number, got nan'),
    (lambda r: r['dtboxes'][0].update(box=[1, float('inf'), 3, 4]),
     r'dtboxes\[0\]\.box must be a finite number, got inf'),
    (lambda r: r['dtboxes'][0].update(box=[1, '2', 3, 4]),
     r"dtboxes\[0\]\.box must be a finite number, got '2'"),
    (lambda r: r['dtboxes'][0].update(score='0.9'),
     r"dtboxes\[0\]\.score must be a finite number, got '0\.9'"),
    (lambda r: r['dtboxes'][0].update(score=True),
     r'dtboxes\[0\]\.score must be a finite number, got True'),
    (lambda r: r['dtboxes'][0].pop('score'), r'dtboxes\[0\] has no "score"'),
    (lambda r: r['dtboxes'][0].update(box=[1, 2, 3]),
     r'dtboxes\[0\] needs "box": \[x, y, w, h\] \(4 numbers\)'),
    (lambda r: r['dtboxes'][0].update(box=[1, 2, 3, 4, 5]),
     r'dtboxes\[0\] needs "box"'),
    (lambda r: r['dtboxes'][0].update(box='1 2 3 4'),
     r'dtboxes\[0\] needs "box"'),
    (lambda r: r['dtboxes'].append([1, 2, 3, 4, .5]),
     r'dtboxes\[\d+\] must be an object'),
    (lambda r: r['dtboxes'][0].update(box=[1e308, 2, 1e308, 4]),
     r'dtboxes\[0\]\.box corner x \+ w or y \+ h is not finite'),
    (lambda r: r.update(height=480.5), r'"height"/"width" must be positive '
     'integers'),
    (lambda r: r.pop('width'), r'"height" and "width" come together'),
    (lambda r: r.update(ID=[1]), r'"ID" must be a string or an integer'),
])
def test_malformed_records_name_file_and_line(tool, case, edit, match):
    tmp_path, gt, preds, img_dir = case
    dets = write_lines(tmp_path / 'dets.odgt',
                       _edit_second(crowddet(preds), edit))
    with pytest.raises(ValueError, match=r'dets\.odgt:2: ' + match):
        tool.main([gt, dets, '--img-dir', img_dir])


def test_malformed_files_name_file_and_line_or_record(tool, case):
    tmp_path, gt, preds, img_dir = case
    recs = crowddet(preds)
    bad = write_lines(tmp_path / 'a.odgt',
                      [recs[0], recs[1], '{"ID": "img00002", "dtb'])
    with pytest.raises(ValueError, match=r'a\.odgt:3: not valid JSON'):
        tool.main([gt, bad, '--img-dir', img_dir])
    lst = tmp_path / 'b.json'
    lst.write_text(json.dumps([recs[0], 7, recs[2]]))
    with pytest.raises(ValueError, match=r'b\.json: record 1: a record must '
                       r'be a JSON object, got 7'):
        tool.main([gt, str(lst), '--img-dir', img_dir])
    num = tmp_path / 'c.json'
    num.write_text('42')
    with pytest.raises(ValueError, match=r'c\.json: not a JSON record or '
                       r'list of records \(got 42\)'):
        tool.main([gt, str(num), '--img-dir', img_dir])
    twice = write_lines(tmp_path / 'd.odgt', [recs[0], recs[1], recs[0]])
    with pytest.raises(ValueError, match=r"d\.odgt:3: image ID 'img00000' "
                       r'already has predictions \(.*d\.odgt:1\)'):
        tool.main([gt, twice, '--img-dir', img_dir])


@pytest.mark.parametrize('override,match', [
    (dict(pred_instances=dict(bboxes=torch.tensor([[0., 0, float('nan'), 1]]),
                              scores=torch.tensor([.5]))),
     r'entry 1: detection 0 has a non-finite box'),
    (dict(pred_instances=dict(bboxes=torch.ones(2, 4),
                              scores=torch.tensor([.5, float('inf')]))),
     r'entry 1: detection 1 has a non-finite score'),
    (dict(pred_instances=dict(bboxes=torch.ones(3, 4),
                              scores=torch.ones(2))),
     r'entry 1: 3 boxes but 2 scores'),
    (dict(pred_instances=dict(bboxes=torch.ones(3, 5),
                              scores=torch.ones(3))),
     r'entry 1: boxes must be \(D, 4\)'),
    (dict(pred_instances=dict(bboxes=torch.ones(3, 4))),
     r"entry 1: not a detection result .*KeyError\('scores'\)"),
    (dict(ori_shape=(0, 10)), r'entry 1: the image size must be two '
     r'integers >= 1'),
])
def test_malformed_pickles_name_file_and_entry(tool, case, override, match):
    tmp_path, gt, preds, _ = case
    pkl = write_pickle(tmp_path / 'dets.pkl', preds, **{'1': override})
    with pytest.raises(ValueError, match=r'dets\.pkl: ' + match):
        tool.main([gt, pkl, '--trust-result-sizes'])


@pytest.mark.parametrize('box,match', [
    ('[1, NaN, 3, 4]', r'non-finite "fbox"'),
    ('[1, 2, Infinity, 4]', r'non-finite "fbox"'),
    ('[1, "2", 3, 4]', r'field "fbox" must be \[x, y, w, h\]'),
    ('[1, 2, 3]', r'field "fbox" must be \[x, y, w, h\]'),
    ('[1, 2, 3, 4, 5]', r'field "fbox" must be \[x, y, w, h\]'),
])
def test_malformed_ground_truth_names_file_and_line(tool, case, box, match):
    tmp_path, _, preds, img_dir = case
    gt = tmp_path / 'bad_gt.odgt'
    gt.write_text('{"ID": "img00000", "gtboxes": []}\n'
                  '{"ID": "img00001", "gtboxes": [{"tag": "person", '
                  f'"fbox": {box}}}]}}\n')
    dets = write_lines(tmp_path / 'dets.odgt', crowddet(preds[:2]))
    with pytest.raises(ODGTFormatError, match=r'bad_gt\.odgt:2: image '
                       r'img00001, box 0: ' + match):
        tool.main([str(gt), dets, '--img-dir', img_dir])
    gt.write_text('{"ID": "img00000", "gtboxes": [{"fbox": [1, 2, 3, 4]}]}\n')
    with pytest.raises(ODGTFormatError, match=r'bad_gt\.odgt:1: image '
                       r'img00000, box 0: missing field "tag"'):
        tool.main([str(gt), dets, '--img-dir', img_dir])


@pytest.mark.parametrize('thr', ['0', '1', '1.5', '-0.2', 'nan', 'half'])
def test_tool_iou_thr_outside_open_unit_interval(tool, case, capsys, thr):
    _, gt, _, _ = case
    with pytest.raises(SystemExit) as exc:
        tool.main([gt, 'x.pkl', '--iou-thr', thr])
    assert exc.value.code == 2
    assert '--iou-thr' in capsys.readouterr().err


def test_empty_and_partial_results_warn_with_counts(tool, case, capsys):
    tmp_path, gt, preds, img_dir = case
    empty = tmp_path / 'empty.odgt'
    empty.write_text('')
    empty_list = tmp_path / 'empty.json'
    empty_list.write_text('[]')
    part = write_lines(tmp_path / 'part.odgt', crowddet(preds[:1]))
    outs = tool.main([gt, str(empty), str(empty_list), part, '--img-dir',
                      img_dir])
    printed = capsys.readouterr().out
    assert printed.count('holds no prediction: all 3 images of') == 2
    assert 'Warning: 2 of the 3 images of' in printed and '(1 have)' in \
        printed
    for name in ('empty.odgt', 'empty.json'):
        out = outs[name]
        assert (out['AP50'], out['mMR'], out['recall']) == (0.0, 1.0, 0.0)
        assert out['num_imgs'] == 3 and out['num_gts'] > 0
    assert outs['part.odgt']['num_predicted'] == 1


def test_background_boxes_in_the_tool(tool, tmp_path, capsys):
    """A background box (tag 'background', extra.ignore 0): in AP / mMR it
    is matched like an ignore region (a detection on it is dropped) and
    counted as a GT (recall 1 / 2); CrowdDet's JI matches it (k 2)."""
    gt = write_odgt(tmp_path / 'gt.odgt', [dict(ID='a', gtboxes=[
        dict(tag='person', fbox=[0, 0, 10, 20], extra=dict(ignore=0)),
        dict(tag='background', fbox=[50, 0, 10, 20], extra=dict(ignore=0)),
    ])])
    dets = write_lines(tmp_path / 'dets.odgt', [dict(
        ID='a', height=100, width=100, dtboxes=[
            dict(box=[0, 0, 10, 20], score=0.9),
            dict(box=[50, 0, 10, 20], score=0.8)])])
    out = tool.main([gt, dets, '--trust-result-sizes', '--ji'])['dets.odgt']
    # kept list: one TP (the background detection is dropped, not an FP)
    assert out['num_gts'] == 2 and len(out['scores']) == 1
    assert out['recall'] == 0.5
    assert out['AP50'] == 0.0  # one point: no segment (CrowdDet's AP)
    assert out['mMR'] == pytest.approx(0.5)  # fppi 0: miss rate .5 at all
    assert out['JI'] == pytest.approx(2 / (2 + 1e-6))
    assert ('| dets.odgt | 1 | 0.00 | 50.00 | 50.00 | 100.00 | claimed, '
            'unchecked |') in capsys.readouterr().out
    assert not math.isnan(out['mMR'])
