"""CityPersonsDataset: where its images are looked up, and the exact
messages of its own refusals (file, record and field named)."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmdet.utils import register_all_modules

import mmlla  # noqa: F401
import mmlla.datasets.citypersons_dataset as cp_module
from mmlla.datasets import CityPersonsDataset, CityPersonsFormatError

register_all_modules(init_default_scope=True)

IM = 'frankfurt_000000_000294_leftImg8bit.png'
ANN = dict(id=1, image_id=1, category_id=1, bbox=[10, 20, 30, 60])


def _write(root, anns, im_name=IM, image=True):
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    if image:
        path = osp.join(root, 'leftImg8bit', 'val', 'frankfurt', IM)
        os.makedirs(osp.dirname(path), exist_ok=True)
        cv2.imwrite(path, np.zeros((8, 8, 3), np.uint8))
    doc = dict(images=[dict(id=1, im_name=im_name, height=100, width=200)],
               annotations=anns)
    ann_file = osp.join(root, 'annotations', 'val_gt.json')
    with open(ann_file, 'w') as f:
        json.dump(doc, f)
    return ann_file


def _build(root, **kwargs):
    kwargs.setdefault('data_prefix', dict(img='leftImg8bit/val/'))
    return CityPersonsDataset(data_root=str(root) + '/', pipeline=[],
                              ann_file='annotations/val_gt.json', **kwargs)


def test_missing_image_message(tmp_path):
    ann_file = _write(tmp_path, [ANN], im_name='lindau_0_1_leftImg8bit.png')
    img = f'{tmp_path}/leftImg8bit/val/lindau/lindau_0_1_leftImg8bit.png'
    with pytest.raises(FileNotFoundError) as info:
        _build(tmp_path)
    assert str(info.value) == f'{ann_file}: images[0] (id 1): image {img} ' \
        'not found'


def test_missing_visible_box_message(tmp_path):
    ann_file = _write(tmp_path, [ANN])
    with pytest.raises(CityPersonsFormatError) as info:
        _build(tmp_path, body='visible')
    assert str(info.value) == (
        f'{ann_file}: annotations[0] (id 1, image 1): no "vis_bbox" '
        "(body='visible' trains on it)")


def test_without_an_image_prefix_paths_are_the_records(tmp_path,
                                                       monkeypatch):
    """data_prefix without 'img': the record's file, as it is."""
    _write(tmp_path, [ANN])
    monkeypatch.chdir(tmp_path / 'leftImg8bit' / 'val')
    ds = _build(tmp_path, data_prefix=dict())
    assert ds.get_data_info(0)['img_path'] == f'frankfurt/{IM}'


def test_image_lookup_uses_the_backend_args(tmp_path, monkeypatch):
    _write(tmp_path, [ANN])
    calls = []
    monkeypatch.setattr(cp_module, 'exists', lambda path, backend_args=None:
                        calls.append((path, backend_args)) or True)
    read = cp_module.read_citypersons_json
    monkeypatch.setattr(cp_module, 'read_citypersons_json',
                        lambda f, backend_args=None: calls.append(
                            (f, backend_args)) or read(f, backend_args))
    backend = dict(backend='local')
    ds = _build(tmp_path, backend_args=backend)
    assert calls == [
        (f'{tmp_path}/annotations/val_gt.json', backend),
        (f'{tmp_path}/leftImg8bit/val/frankfurt/{IM}', backend)]
    assert ds.get_data_info(0)['instances'] == [
        dict(bbox=[10.0, 20.0, 40.0, 80.0], bbox_label=0, ignore_flag=0)]


def test_boxes_are_dropped_only_with_nothing_left_in_the_image(tmp_path):
    boxes = {1: [0, 0, 0.5, 10], 2: [0, 0, 10, 0.5], 3: [10, 150, 10, 10],
             4: [250, 10, 10, 10], 5: [-20, 10, 10, 10], 6: [10, -30, 5, 20],
             7: [199.5, 99.5, 10, 10], 8: [-5, -5, 5.5, 5.5]}
    ann_file = _write(tmp_path, [dict(ANN, id=k, bbox=b)
                                 for k, b in boxes.items()])
    with pytest.warns(UserWarning) as record:
        ds = _build(tmp_path)
    assert [inst['bbox'] for inst in ds.get_data_info(0)['instances']] == [
        [0.0, 0.0, 0.5, 10.0], [0.0, 0.0, 10.0, 0.5],
        [199.5, 99.5, 209.5, 109.5], [-5.0, -5.0, 0.5, 0.5]]
    assert [str(w.message) for w in record
            if 'dropped' in str(w.message)] == [
        f'{ann_file}: dropped 4 "bbox" box(es) with width or height <= 0 px '
        'once clipped to the image']


def test_positional_ann_file_and_filter_cfg_without_empty_gt(tmp_path):
    _write(tmp_path, [dict(ANN, ignore=1)])
    ds = CityPersonsDataset('annotations/val_gt.json',
                            data_root=str(tmp_path) + '/', pipeline=[],
                            data_prefix=dict(img='leftImg8bit/val/'),
                            filter_cfg=dict(min_size=32))
    assert len(ds) == 1  # no filter_empty_gt: the image stays
    assert ds.get_data_info(0)['instances'][0]['ignore_flag'] == 1
