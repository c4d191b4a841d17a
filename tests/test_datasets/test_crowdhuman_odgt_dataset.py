import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmdet.registry import DATASETS
from mmdet.utils import register_all_modules

import mmlla  # noqa: F401
from mmlla.datasets import CrowdHumanODGTDataset, ODGTFormatError

register_all_modules(init_default_scope=True)


def _person(fbox, vbox=None, hbox=None, ignore=0, head_ignore=0):
    return dict(tag='person', fbox=fbox, vbox=vbox or fbox,
                hbox=hbox or [fbox[0], fbox[1], 10, 10],
                head_attr=dict(ignore=head_ignore), extra=dict(ignore=ignore))


def _write(root, records, sizes=None, raw_lines=None):
    """Write Images/<ID>.jpg of the given (w, h) and annotation_val.odgt."""
    os.makedirs(osp.join(root, 'Images'), exist_ok=True)
    for rec in records:
        w, h = (sizes or {}).get(rec['ID'], (64, 48))
        cv2.imwrite(osp.join(root, 'Images', rec['ID'] + '.jpg'),
                    np.full((h, w, 3), 128, np.uint8))
    lines = raw_lines if raw_lines is not None else [
        json.dumps(r) for r in records
    ]
    with open(osp.join(root, 'annotation_val.odgt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')


def _build(root, **kwargs):
    kwargs.setdefault('pipeline', [])
    return CrowdHumanODGTDataset(
        data_root=str(root), ann_file='annotation_val.odgt', **kwargs)


def test_boxes_ignore_regions_and_sizes(tmp_path):
    recs = [
        dict(ID='a', gtboxes=[
            _person([10, 20, 30, 60], vbox=[12, 22, 20, 30],
                    hbox=[15, 20, 8, 9]),
            dict(tag='mask', fbox=[0, 0, 5, 5], vbox=[0, 0, 5, 5],
                 hbox=[0, 0, 5, 5], extra=dict(ignore=1)),
            _person([40, 5, 10, 20], ignore=1),
        ]),
        dict(ID='b', gtboxes=[]),  # an image with no person is legal
    ]
    _write(tmp_path, recs, sizes={'a': (70, 50), 'b': (33, 21)})
    ds = _build(tmp_path)
    assert len(ds) == 2
    a, b = ds.get_data_info(0), ds.get_data_info(1)
    # sizes come from the image headers
    assert (a['width'], a['height']) == (70, 50)
    assert (b['width'], b['height']) == (33, 21)
    assert b['instances'] == []
    assert a['img_path'] == osp.join(str(tmp_path), 'Images', 'a.jpg')
    inst = a['instances']
    assert inst[0]['bbox'] == [10, 20, 40, 80]  # xywh -> xyxy
    # the visible and head boxes are what body='visible' / 'head' train on
    # (an instance holds only the trained box)
    assert _build(tmp_path, body='visible').get_data_info(0)['instances'][
        0]['bbox'] == [12, 22, 32, 52]
    assert _build(tmp_path, body='head').get_data_info(0)['instances'][0][
        'bbox'] == [15, 20, 23, 29]
    assert set(inst[0]) == {'bbox', 'bbox_label', 'ignore_flag'}
    assert (inst[0]['bbox_label'], inst[0]['ignore_flag']) == (0, 0)
    # extra.ignore != 0 makes both an ignore region (the mask box and the
    # person)
    assert [(i['bbox_label'], i['ignore_flag']) for i in inst[1:]] == [
        (-1, 1), (-1, 1)
    ]


def _spec_train_ignore(ann, body):
    """docs/algorithms.md §6 restated: in training a box is an ignore
    region iff its extra.ignore is non-zero, whatever its tag; with the head
    box also iff its head_attr.ignore is non-zero (kept, §6 is silent)."""
    if ann.get('extra', {}).get('ignore', 0) != 0:
        return True
    return body == 'head' and ann.get('head_attr', {}).get('ignore', 0) != 0


def test_training_ignore_rule_is_extra_ignore_not_tag(tmp_path):
    boxes = [
        dict(tag='mask', fbox=[0, 0, 20, 40], extra=dict(ignore=0)),
        dict(tag='person', fbox=[0, 0, 20, 40], extra=dict(ignore=1)),
        dict(tag='background', fbox=[0, 0, 20, 40], extra=dict(ignore=0)),
        dict(tag='mask', fbox=[0, 0, 20, 40]),  # no extra: ignore 0
        dict(tag='person', fbox=[0, 0, 20, 40], extra=dict(ignore=2)),
        dict(tag='mask', fbox=[0, 0, 20, 40], extra=dict(ignore=1)),
    ]
    _write(tmp_path, [dict(ID='a', gtboxes=boxes)])
    inst = _build(tmp_path).get_data_info(0)['instances']
    # a mask box with ignore 0 is a person GT; a person with ignore 1 not
    assert [i['ignore_flag'] for i in inst] == [0, 1, 0, 0, 1, 1]
    assert [i['bbox_label'] for i in inst] == [0, -1, 0, 0, -1, -1]


@pytest.mark.parametrize('body', ['full', 'visible', 'head'])
def test_training_ignore_rule_random_against_spec(tmp_path, body):
    rng = np.random.default_rng(5)
    records = []
    for n in range(4):
        boxes = []
        for _ in range(30):
            x, y = (float(v) for v in rng.integers(0, 40, 2))
            ann = dict(tag=str(rng.choice(['person', 'mask', 'background',
                                           'other'])),
                       fbox=[x, y, 12, 30], vbox=[x, y, 10, 20],
                       hbox=[x, y, 6, 6])
            if rng.random() < 0.8:
                ann['extra'] = dict(ignore=int(rng.integers(0, 2)))
            if rng.random() < 0.8:
                ann['head_attr'] = dict(ignore=int(rng.integers(0, 2)))
            boxes.append(ann)
        records.append(dict(ID=f'i{n}', gtboxes=boxes))
    _write(tmp_path, records)
    ds = _build(tmp_path, body=body)
    key = dict(full='fbox', visible='vbox', head='hbox')[body]
    for k, rec in enumerate(records):
        inst = ds.get_data_info(k)['instances']
        expected = [_spec_train_ignore(a, body) for a in rec['gtboxes']]
        assert [bool(i['ignore_flag']) for i in inst] == expected
        assert [i['bbox_label'] for i in inst] == [-1 if e else 0
                                                   for e in expected]
        assert [i['bbox'] for i in inst] == [
            [a[key][0], a[key][1], a[key][0] + a[key][2],
             a[key][1] + a[key][3]] for a in rec['gtboxes']]
    assert 0 < sum(i['ignore_flag'] for k in range(4)
                   for i in ds.get_data_info(k)['instances']) < 120


def test_images_with_only_ignore_boxes_or_no_boxes_stay(tmp_path):
    recs = [
        dict(ID='only_ignore', gtboxes=[
            dict(tag='mask', fbox=[2, 2, 20, 30], extra=dict(ignore=1)),
            _person([30, 5, 10, 30], ignore=1)]),
        dict(ID='none', gtboxes=[]),
        dict(ID='one', gtboxes=[_person([5, 5, 20, 30])]),
    ]
    _write(tmp_path, recs)
    ds = _build(
        tmp_path, filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations', with_bbox=True),
                  dict(type='PackDetInputs')])
    assert len(ds) == 3
    assert [ds.get_data_info(k)['img_id'] for k in range(3)] == [
        'only_ignore', 'none', 'one']
    only_ignore = ds[0]['data_samples']
    assert only_ignore.gt_instances.bboxes.shape == (0, 4)
    assert only_ignore.ignored_instances.bboxes.shape == (2, 4)
    none = ds[1]['data_samples']
    assert none.gt_instances.bboxes.shape == (0, 4)
    assert none.ignored_instances.bboxes.shape == (0, 4)


@pytest.mark.parametrize('body,expected', [('full', [10, 20, 40, 80]),
                                           ('visible', [12, 22, 32, 52]),
                                           ('head', [15, 20, 23, 29])])
def test_body_selection(tmp_path, body, expected):
    _write(tmp_path, [dict(ID='a', gtboxes=[
        _person([10, 20, 30, 60], vbox=[12, 22, 20, 30], hbox=[15, 20, 8, 9])
    ])])
    assert _build(tmp_path, body=body).get_data_info(0)['instances'][0][
        'bbox'] == expected


def test_head_ignore_only_for_head_boxes(tmp_path):
    _write(tmp_path, [dict(ID='a', gtboxes=[
        _person([10, 20, 30, 60], head_ignore=1)])])
    assert _build(tmp_path).get_data_info(0)['instances'][0][
        'ignore_flag'] == 0
    assert _build(tmp_path, body='head').get_data_info(0)['instances'][0][
        'ignore_flag'] == 1


def test_unknown_body_rejected(tmp_path):
    _write(tmp_path, [dict(ID='a', gtboxes=[])])
    with pytest.raises(ValueError, match='body must be one of'):
        _build(tmp_path, body='torso')


def test_degenerate_boxes_dropped_with_one_counting_warning(tmp_path):
    _write(tmp_path, [
        dict(ID='a', gtboxes=[_person([1, 1, 0, 30]), _person([1, 1, 20, 0]),
                              _person([1, 1, 20, -3]), _person([1, 1, 9, 9]),
                              _person([1, 1, 0.5, 30])])
    ])
    # empty boxes (zero or negative width / height) go; a thin one stays
    with pytest.warns(UserWarning, match=r'dropped 3 degenerate fbox'):
        ds = _build(tmp_path)
    assert [i['bbox'] for i in ds.get_data_info(0)['instances']] == [
        [1, 1, 10, 10], [1, 1, 1.5, 31]
    ]


@pytest.mark.parametrize('line,match', [
    ('{"ID": "a", "gtboxes": [', r'annotation_val.odgt:2: not valid JSON'),
    ('{"gtboxes": []}', r'annotation_val.odgt:2: missing field "ID"'),
    ('{"ID": "a"}', r'annotation_val.odgt:2: image a: missing or non-list'),
    ('{"ID": "a", "gtboxes": [{"fbox": [1, 2, 3, 4]}]}',
     r':2: image a, box 0: missing field "tag"'),
    ('{"ID": "a", "gtboxes": [{"tag": "person", "vbox": [1, 2, 3, 4]}]}',
     r':2: image a, box 0: field "fbox" must be \[x, y, w, h\]'),
    ('{"ID": "a", "gtboxes": [{"tag": "person", "fbox": [1, 2, 3]}]}',
     r':2: image a, box 0: field "fbox"'),
    ('{"ID": "a", "gtboxes": [{"tag": "person", "fbox": [1, NaN, 3, 4]}]}',
     r':2: image a, box 0: non-finite "fbox"'),
    ('{"ID": "a", "gtboxes": [{"tag": "person", "fbox": [1, 2, Infinity, 4]}]}',
     r':2: image a, box 0: non-finite "fbox"'),
    ('{"ID": "ok", "gtboxes": []}', r':2: image ID \'ok\' already appears on '
     'line 1'),
    ('{"ID": "a", "gtboxes": [{"tag": "person", "fbox": [1, 2, 3, 4], '
     '"extra": [1]}]}', r':2: image a, box 0: field "extra" must be an '
     'object'),
])
def test_malformed_line_names_file_and_line(tmp_path, line, match):
    good = dict(ID='ok', gtboxes=[])
    _write(tmp_path, [good, dict(ID='a', gtboxes=[])],
           raw_lines=[json.dumps(good), line])
    with pytest.raises(ODGTFormatError, match=match):
        _build(tmp_path)


def test_missing_and_corrupt_images(tmp_path):
    _write(tmp_path, [dict(ID='a', gtboxes=[])])
    with open(osp.join(tmp_path, 'annotation_val.odgt'), 'a') as f:
        f.write(json.dumps(dict(ID='gone', gtboxes=[])) + '\n')
    with pytest.raises(FileNotFoundError,
                       match=r'annotation_val.odgt:2: image .*gone.jpg'):
        _build(tmp_path)
    with open(osp.join(tmp_path, 'Images', 'gone.jpg'), 'wb') as f:
        f.write(b'not a jpeg at all')
    with pytest.raises(ODGTFormatError, match=r':2: image .*gone.jpg cannot'):
        _build(tmp_path)


def test_reads_nothing_into_the_data_folder(synthetic_root):
    before = sorted(os.listdir(synthetic_root))
    ds = CrowdHumanODGTDataset(
        data_root=synthetic_root, ann_file='annotation_train.odgt',
        pipeline=[])
    assert len(ds) == 8
    assert sorted(os.listdir(synthetic_root)) == before


def test_ignored_instances_reach_the_data_sample(synthetic_root):
    ds = DATASETS.build(
        dict(type='CrowdHumanODGTDataset', data_root=synthetic_root,
             ann_file='annotation_train.odgt',
             pipeline=[dict(type='LoadImageFromFile'),
                       dict(type='LoadAnnotations', with_bbox=True),
                       dict(type='PackDetInputs')]))
    n_ignore = [sum(i['ignore_flag'] for i in ds.get_data_info(k)['instances'])
                for k in range(len(ds))]
    k = int(np.argmax(n_ignore))
    assert n_ignore[k] > 0, 'the synthetic set should hold ignore regions'
    info = ds.get_data_info(k)
    sample = ds[k]['data_samples']
    n_person = len(info['instances']) - n_ignore[k]
    assert sample.gt_instances.bboxes.shape == (n_person, 4)
    assert (sample.gt_instances.labels == 0).all()
    assert sample.ignored_instances.bboxes.shape == (n_ignore[k], 4)
    assert sample.metainfo['ori_shape'] == (info['height'], info['width'])


def test_truncated_jpeg_is_caught_when_loading(tmp_path):
    _write(tmp_path, [dict(ID='a', gtboxes=[]), dict(ID='b', gtboxes=[])],
           sizes={'b': (200, 150)})
    path = osp.join(tmp_path, 'Images', 'b.jpg')
    rng = np.random.default_rng(0)
    cv2.imwrite(path, rng.integers(0, 255, (150, 200, 3), dtype=np.uint8))
    with open(path, 'rb') as f:
        data = f.read()
    _build(tmp_path)  # complete files load
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])  # an interrupted download
    with pytest.raises(ODGTFormatError,
                       match=r'annotation_val.odgt:2: image .*b.jpg is '
                       r'truncated'):
        _build(tmp_path)
