import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmdet.registry import DATASETS
from mmdet.utils import register_all_modules

import mmlla  # noqa: F401
from mmlla.datasets import CityPersonsDataset, CityPersonsFormatError
from mmlla.evaluation.functional import load_citypersons_gt
from mmlla.testing import make_synthetic_citypersons

register_all_modules(init_default_scope=True)

IM = 'frankfurt_000000_000294_leftImg8bit.png'


def _ann(ann_id, img_id=1, bbox=(10, 20, 30, 60), **kw):
    out = dict(id=ann_id, image_id=img_id, category_id=1, iscrowd=0,
               ignore=0, bbox=list(bbox), vis_bbox=list(bbox),
               height=60, vis_ratio=1.0)
    out.update(kw)
    return out


def _write(root, doc, images=(f'frankfurt/{IM}', )):
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    for rel in images:
        path = osp.join(root, 'leftImg8bit', 'val', rel)
        os.makedirs(osp.dirname(path), exist_ok=True)
        cv2.imwrite(path, np.zeros((8, 8, 3), np.uint8))
    text = doc if isinstance(doc, str) else json.dumps(doc)
    with open(osp.join(root, 'annotations', 'val_gt.json'), 'w') as f:
        f.write(text)
    return osp.join(root, 'annotations', 'val_gt.json')


def _doc(anns, **img):
    image = dict(id=1, im_name=IM, height=100, width=200)
    image.update(img)
    return dict(images=[image], annotations=anns)


def _build(root, **kwargs):
    kwargs.setdefault('pipeline', [])
    return CityPersonsDataset(
        data_root=str(root) + '/', ann_file='annotations/val_gt.json',
        data_prefix=dict(img='leftImg8bit/val/'), **kwargs)


def test_pedestrians_ignored_classes_and_flags(tmp_path):
    anns = [
        _ann(1, bbox=[10, 20, 30, 60], vis_bbox=[12, 20, 20, 60],
             vis_ratio=0.6667),
        _ann(2, category_id=2),  # rider
        _ann(3, category_id=5),  # people group
        _ann(4, category_id=0),  # ignore region
        _ann(5, ignore=1),  # val_gt.json style: category 1, ignore 1
        _ann(6, iscrowd=True),  # Pedestron's conversion style
    ]
    _write(tmp_path, _doc(anns))
    ds = _build(tmp_path)
    info = ds.get_data_info(0)
    # sizes from the file; the image in the folder of its city
    assert (info['width'], info['height'], info['img_id']) == (200, 100, 1)
    assert info['img_path'].endswith(f'leftImg8bit/val/frankfurt/{IM}')
    insts = info['instances']
    assert [i['ignore_flag'] for i in insts] == [0, 1, 1, 1, 1, 1]
    assert [i['bbox_label'] for i in insts] == [0, -1, -1, -1, -1, -1]
    assert insts[0]['bbox'] == [10, 20, 40, 80]
    # what training uses, no copies of the record's other fields
    assert set(insts[0]) == {'bbox', 'bbox_label', 'ignore_flag'}
    # body='visible' trains on vis_bbox
    ds = _build(tmp_path, body='visible')
    assert ds.get_data_info(0)['instances'][0]['bbox'] == [12, 20, 32, 80]
    # through the registry and mmdet's loading / packing
    ds = DATASETS.build(
        dict(type='CityPersonsDataset', data_root=str(tmp_path) + '/',
             ann_file='annotations/val_gt.json',
             data_prefix=dict(img='leftImg8bit/val/'),
             pipeline=[dict(type='LoadImageFromFile'),
                       dict(type='LoadAnnotations', with_bbox=True),
                       dict(type='PackDetInputs')]))
    sample = ds[0]['data_samples']
    assert len(sample.gt_instances) == 1
    assert len(sample.ignored_instances) == 5


def test_file_name_layout_degenerate_boxes_and_empty_filter(tmp_path):
    doc = dict(images=[
        dict(id=7, file_name='a/b.png', height=50, width=60),
        dict(id=9, file_name='c.png', height=50, width=60),
    ], annotations=[
        _ann(1, 7, bbox=[10, 10, 5, 20]),
        _ann(2, 7, bbox=[70, 10, 5, 5]),  # outside the 60 px wide image
        _ann(3, 7, bbox=[10, 10, 0, 5]),  # empty
        _ann(4, 9, category_id=3),  # only an ignored sitting person
    ])
    _write(tmp_path, doc, images=['a/b.png', 'c.png'])
    with pytest.warns(UserWarning, match='dropped 2 "bbox" box'):
        ds = _build(tmp_path)
    assert [d['img_id'] for d in ds] == [7, 9]
    assert ds.get_data_info(0)['img_path'].endswith('leftImg8bit/val/a/b.png')
    assert len(ds.get_data_info(0)['instances']) == 1
    # filter_empty_gt drops the image without a pedestrian (training only)
    with pytest.warns(UserWarning):
        ds = _build(tmp_path, filter_cfg=dict(filter_empty_gt=True))
    assert [ds.get_data_info(i)['img_id'] for i in range(len(ds))] == [7]
    with pytest.warns(UserWarning):
        ds = _build(tmp_path, filter_cfg=dict(filter_empty_gt=True),
                    test_mode=True)
    assert len(ds) == 2


@pytest.mark.parametrize('doc, message', [
    ('{"images": [}', r'val_gt.json:1:13: not valid JSON'),
    ('[]', 'must be a JSON object'),
    (dict(images=[]), 'missing or non-list field "annotations"'),
    (dict(images=[], annotations=[]), '"images" is empty'),
    (_doc([], id='1'), r'images\[0\]: "id" must be an integer'),
    (dict(images=[dict(id=1, im_name=IM, height=1, width=1)] * 2,
          annotations=[]), r'images\[1\] \(id 1\): id 1 already used by '
     r'images\[0\]'),
    (_doc([], im_name='../../etc/passwd'), 'contains a path separator'),
    (_doc([], im_name='nocity.png'), 'does not start with its city'),
    (_doc([], file_name='../x.png'), r'"file_name" .* "\.\." component'),
    (_doc([], file_name='/abs/x.png'), 'absolute'),
    (_doc([], file_name='a\\x.png'), 'backslash'),
    (_doc([], height=0), '"width" and "height" must be integers >= 1'),
    (_doc([_ann(1, img_id=3)]), r'annotations\[0\] \(id 1\): "image_id" 3 '
     'is no image'),
    (_doc([_ann(1), _ann(1)]), r'annotations\[1\] \(id 1, image 1\): id 1 '
     r'already used by annotations\[0\]'),
    (_doc([_ann(1, category_id=6)]), r'"category_id" must be a CityPersons '
     r'class \(0 ignore region, 1 pedestrian, 2 rider'),
    (_doc([_ann(1, bbox=[1, 2, 3])]), r'"bbox" must be \[x, y, w, h\]'),
    (_doc([_ann(1, bbox=[1, 2, 3, float('nan')])]), r'4 finite numbers'),
    (_doc([_ann(1, bbox=[1, 2, -3, 4])]), 'negative width or height'),
    (_doc([_ann(1, vis_bbox=[1, 2, True, 4])]), r'"vis_bbox" must be'),
    (_doc([_ann(1, vis_ratio='0.5')]), '"vis_ratio" must be a finite num'),
    (_doc([_ann(1, ignore=2)]), '"ignore" must be 0 or 1'),
    (_doc([_ann(1, iscrowd=0.0)]), '"iscrowd" must be 0 or 1'),
])
def test_malformed_files_name_the_record(tmp_path, doc, message):
    _write(tmp_path, doc)
    with pytest.raises(CityPersonsFormatError, match=message):
        _build(tmp_path)


def test_missing_image_and_missing_visible_box(tmp_path):
    _write(tmp_path, _doc([_ann(1)], im_name='lindau_0_1_leftImg8bit.png'))
    with pytest.raises(FileNotFoundError,
                       match=r'images\[0\] \(id 1\): image .*lindau/lindau_'):
        _build(tmp_path)
    ann = _ann(1)
    del ann['vis_bbox']
    _write(tmp_path, _doc([ann]))
    assert len(_build(tmp_path).get_data_info(0)['instances']) == 1
    with pytest.raises(CityPersonsFormatError, match='no "vis_bbox"'):
        _build(tmp_path, body='visible')
    with pytest.raises(ValueError, match='body'):
        _build(tmp_path, body='head')


def test_synthetic_citypersons(tmp_path):
    paths = make_synthetic_citypersons(str(tmp_path / 'a'), 2, 3, seed=3,
                                       show_progress=False)
    again = make_synthetic_citypersons(str(tmp_path / 'b'), 2, 3, seed=3,
                                       show_progress=False)
    with open(paths['val'], 'rb') as f1, open(again['val'], 'rb') as f2:
        assert f1.read() == f2.read()
    doc = json.load(open(paths['val']))
    assert [im['id'] for im in doc['images']] == [1, 2, 3]
    anns = doc['annotations']
    assert [a['id'] for a in anns] == list(range(1, len(anns) + 1))
    for a in anns:
        x, y, w, h = a['bbox']
        assert a['height'] == h
        if a['category_id'] in (1, 2):  # full box: visibility from the boxes
            vx, vy, vw, vh = a['vis_bbox']
            assert a['vis_ratio'] == pytest.approx(vw * vh / (w * h),
                                                   abs=1e-6)
            assert x <= vx and y <= vy and vx + vw <= x + w + 1e-6
        else:
            assert a['bbox'] == a['vis_bbox'] and a['vis_ratio'] == 1
        assert a['ignore'] == int(a['category_id'] != 1) or (
            a['category_id'] == 1 and a['ignore'] == 1)
    ds = CityPersonsDataset(
        data_root=str(tmp_path / 'a') + '/',
        ann_file='annotations/val_gt.json',
        data_prefix=dict(img='leftImg8bit/val/'), pipeline=[],
        test_mode=True)
    assert len(ds) == 3
    assert cv2.imread(ds.get_data_info(0)['img_path']).shape == (240, 320, 3)
    gts = load_citypersons_gt(paths['val'])
    assert sum(len(g.ignore) for g in gts.values()) == len(anns)
    # over a larger draw every convention shows up
    many = make_synthetic_citypersons(str(tmp_path / 'c'), 0, 12, seed=0,
                                      show_progress=False)
    anns = json.load(open(many['val']))['annotations']
    kinds = {(a['category_id'], a['ignore']) for a in anns}
    assert {(1, 0), (1, 1), (2, 1), (3, 1), (5, 1)} <= kinds
    with pytest.raises(ValueError, match='too small'):
        make_synthetic_citypersons(str(tmp_path / 'd'), 1, 1,
                                   img_size=(20, 20))
