"""Hostile or broken CrowdHuman data fails safely: image IDs that are paths,
EXIF-rotated images, boxes outside the image, and malformed files (empty,
huge numbers, non-object fields, non-UTF-8, truncated PNG), each refused with
the file and line; valid JSON with U+2028 / U+0085 in a string is read."""
import builtins
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmdet.registry import TRANSFORMS
from mmdet.utils import register_all_modules
from PIL import Image

import mmlla  # noqa: F401
from mmlla.datasets import CrowdHumanODGTDataset, ODGTFormatError
from mmlla.datasets.formats.odgt import read_odgt
from mmlla.evaluation.functional import load_crowdhuman_gt

register_all_modules(init_default_scope=True)

GOOD = dict(ID='ok', gtboxes=[])


def _image(path, w=64, h=48):
    os.makedirs(osp.dirname(path), exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w, 3), 128, np.uint8))


def _write_lines(root, lines, ids=('ok', ), raw=False):
    """annotation_val.odgt holding ``lines`` and Images/<id>.jpg."""
    for img_id in ids:
        _image(osp.join(root, 'Images', f'{img_id}.jpg'))
    path = osp.join(root, 'annotation_val.odgt')
    mode = 'wb' if raw else 'w'
    with open(path, mode, **({} if raw else dict(encoding='utf-8'))) as f:
        f.write(lines)
    return path


def _build(root, **kwargs):
    kwargs.setdefault('pipeline', [])
    return CrowdHumanODGTDataset(
        data_root=str(root), ann_file='annotation_val.odgt', **kwargs)


class _OpenSpy:
    """Records every path opened through ``open`` and ``PIL.Image.open``."""

    def __init__(self, monkeypatch):
        self.paths = []
        real_open, real_pil = builtins.open, Image.open

        def spy_open(file, *args, **kwargs):
            if isinstance(file, (str, bytes, os.PathLike)):
                self.paths.append(os.fsdecode(file))
            return real_open(file, *args, **kwargs)

        def spy_pil(fp, *args, **kwargs):
            if isinstance(fp, (str, bytes, os.PathLike)):
                self.paths.append(os.fsdecode(fp))
            return real_pil(fp, *args, **kwargs)

        monkeypatch.setattr(builtins, 'open', spy_open)
        monkeypatch.setattr(Image, 'open', spy_pil)

    def images(self):
        return [p for p in self.paths if p.endswith(('.jpg', '.png'))]


# -- 4. image IDs that are paths ---------------------------------------------

PATH_IDS = [
    ('../outside', 'contains a path separator'),
    ('../../outside', 'contains a path separator'),
    ('Images/../../outside', 'contains a path separator'),
    ('sub/inside', 'contains a path separator'),
    ('..\\outside', 'contains a path separator'),
    ('sub\\inside', 'contains a path separator'),
    ('a\x00b', 'contains a NUL character'),
    ('', 'is empty'),
    ('..', 'is a relative path component'),
    ('.', 'is a relative path component'),
    ('C:outside', 'is an absolute or drive-qualified path'),
]


@pytest.mark.parametrize('img_id,reason', PATH_IDS)
def test_path_image_ids_are_refused_with_file_and_line(
        tmp_path, monkeypatch, img_id, reason):
    # Images the path would reach exist, so the old reader loaded them.
    _image(tmp_path / 'outside.jpg')
    _image(tmp_path.parent / 'outside.jpg')
    _image(tmp_path / 'Images' / 'sub' / 'inside.jpg')
    _write_lines(tmp_path, json.dumps(GOOD) + '\n' +
                 json.dumps(dict(ID=img_id, gtboxes=[])) + '\n')
    spy = _OpenSpy(monkeypatch)
    with pytest.raises(ODGTFormatError,
                       match=r'annotation_val\.odgt:2: image ID .* ' + reason):
        _build(tmp_path)
    assert spy.images() == []  # refused before any image is opened
    with pytest.raises(ODGTFormatError, match=r'annotation_val\.odgt:2: '):
        load_crowdhuman_gt(str(tmp_path / 'annotation_val.odgt'))


def test_absolute_path_image_id_is_refused(tmp_path, monkeypatch):
    secret = tmp_path / 'elsewhere' / 'secret'
    _image(str(secret) + '.jpg')  # an absolute ID would read this file
    _write_lines(tmp_path, json.dumps(GOOD) + '\n' +
                 json.dumps(dict(ID=str(secret), gtboxes=[])) + '\n')
    spy = _OpenSpy(monkeypatch)
    with pytest.raises(ODGTFormatError, match=r'annotation_val\.odgt:2: '
                       r'image ID .* contains a path separator'):
        _build(tmp_path)
    assert spy.images() == []
    with pytest.raises(ODGTFormatError, match=r'annotation_val\.odgt:2: '):
        load_crowdhuman_gt(str(tmp_path / 'annotation_val.odgt'))


@pytest.mark.parametrize('raw_id', [['../x'], {'a': 1}, 1.5, True, None])
def test_non_string_ids_are_refused(tmp_path, raw_id):
    _write_lines(tmp_path, json.dumps(GOOD) + '\n' +
                 json.dumps(dict(ID=raw_id, gtboxes=[])) + '\n')
    with pytest.raises(ODGTFormatError, match=r'annotation_val\.odgt:2: "ID" '
                       'must be a string or an integer'):
        _build(tmp_path)


def test_integer_and_unusual_but_plain_ids_are_kept(tmp_path):
    ids = ['273271,c9db000d5146c15', '12', 'a b', '..x', 'x..', 'é']
    lines = [json.dumps(dict(ID=i, gtboxes=[])) for i in ids]
    lines.append(json.dumps(dict(ID=7, gtboxes=[])))
    _write_lines(tmp_path, '\n'.join(lines) + '\n', ids=ids + ['7'])
    ds = _build(tmp_path)
    assert [ds.get_data_info(k)['img_id'] for k in range(len(ds))] == ids + [
        '7'
    ]


# -- 8. EXIF orientation -----------------------------------------------------


def _exif_image(path, w, h, orientation, fmt='JPEG'):
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    os.makedirs(osp.dirname(path), exist_ok=True)
    img.save(path, fmt, exif=exif.tobytes())


LOADERS = [
    dict(),  # mmcv's default: cv2, 'color'
    dict(imdecode_backend='pillow'),
    dict(color_type='color_ignore_orientation'),
    dict(color_type='unchanged'),
    dict(color_type='grayscale'),
    dict(imdecode_backend='pillow', color_type='color_ignore_orientation'),
]


@pytest.mark.parametrize('orientation', [1, 3, 5, 6, 7, 8])
@pytest.mark.parametrize('fmt', ['JPEG', 'PNG'])
@pytest.mark.parametrize('loader', LOADERS)
def test_reported_size_is_the_decoded_size(tmp_path, orientation, fmt,
                                           loader):
    # stored 60 wide, 40 high; orientations 5-8 decode 40 wide, 60 high
    _exif_image(str(tmp_path / 'Images' / 'r.jpg'), 60, 40, orientation, fmt)
    with open(tmp_path / 'annotation_val.odgt', 'w') as f:
        f.write(json.dumps(dict(ID='r', gtboxes=[])) + '\n')
    load = dict(type='LoadImageFromFile', **loader)
    ds = _build(tmp_path, pipeline=[load])
    info = ds.get_data_info(0)
    decoded = TRANSFORMS.build(load)(dict(img_path=info['img_path']))
    assert (info['height'], info['width']) == decoded['img'].shape[:2]
    assert ds[0]['ori_shape'] == (info['height'], info['width'])


def test_exif_rotated_image_keeps_its_boxes(tmp_path):
    """With the header size (60 x 40) a box low in the decoded 40 x 60
    image lies below the image: the pipeline clipped it to nothing."""
    _exif_image(str(tmp_path / 'Images' / 'r.jpg'), 60, 40, 6)
    person = dict(tag='person', fbox=[5, 45, 20, 12])
    with open(tmp_path / 'annotation_val.odgt', 'w') as f:
        f.write(json.dumps(dict(ID='r', gtboxes=[person])) + '\n')
    ds = _build(
        tmp_path,
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations', with_bbox=True),
                  dict(type='PackDetInputs')])
    info = ds.get_data_info(0)
    assert (info['width'], info['height']) == (40, 60)
    sample = ds[0]['data_samples']
    assert sample.ori_shape == (60, 40)
    assert sample.gt_instances.bboxes.tensor.tolist() == [[5, 45, 25, 57]]


# -- 9. boxes entirely outside the image -------------------------------------


def test_boxes_outside_the_image_are_dropped_and_counted(tmp_path):
    def person(fbox, ignore=0):
        return dict(tag='person', fbox=fbox, extra=dict(ignore=ignore))

    boxes = [
        person([10, 10, 20, 20]),  # inside: kept
        person([60, 40, 10, 10]),  # partly inside (4 x 8 px): kept
        person([-30, -30, 31, 31]),  # a 1 x 1 px corner inside: kept
        person([70, 5, 10, 10]),  # right of the 64 px wide image
        person([-30, 5, 20, 10]),  # left of it
        person([5, 48, 10, 10]),  # below (starts at the bottom edge)
        person([5, -20, 10, 20]),  # above (ends at the top edge)
        person([100, 100, 5, 5], ignore=1),  # an ignore box outside
        person([1, 1, 0, 30]),  # empty: dropped, as before
    ]
    _write_lines(tmp_path, json.dumps(dict(ID='ok', gtboxes=boxes)) + '\n')
    with pytest.warns(UserWarning, match=r'dropped 6 degenerate fbox box\(es\)'
                      r'.*5 of them entirely outside the image'):
        ds = _build(tmp_path)
    assert [i['bbox'] for i in ds.get_data_info(0)['instances']] == [
        [10, 10, 30, 30], [60, 40, 70, 50], [-30, -30, 1, 1]
    ]


def test_min_box_size_is_zero(tmp_path):
    from mmlla.datasets import crowdhuman_odgt_dataset
    assert crowdhuman_odgt_dataset.MIN_BOX_SIZE == 0


# -- 10. malformed files -----------------------------------------------------


@pytest.mark.parametrize('content', ['', '\n', '  \n\t\n\r\n'])
def test_empty_annotation_file(tmp_path, content):
    _write_lines(tmp_path, content)
    with pytest.raises(ODGTFormatError, match=r'annotation_val\.odgt:1: the '
                       'annotation file holds no record'):
        _build(tmp_path)
    with pytest.raises(ODGTFormatError, match='holds no record'):
        load_crowdhuman_gt(str(tmp_path / 'annotation_val.odgt'))


@pytest.mark.parametrize('fbox,match', [
    ('[1, 2, 1e400, 4]', r'non-finite "fbox"'),
    ('[-1e400, 2, 3, 4]', r'non-finite "fbox"'),
    ('[1, 2, 1' + '0' * 400 + ', 4]',
     r'non-finite "fbox" .* too large for a float'),
    ('[1, -' + '9' * 400 + ', 3, 4]',
     r'non-finite "fbox" .* too large for a float'),
    ('[1, 2, 3, 1' + '0' * 5000 + ']',
     r'not valid JSON'),  # beyond Python's int parsing
    ('[1e308, 2, 1e308, 4]', r'non-finite "fbox"'),  # x + w overflows
])
def test_numbers_too_large_for_a_float(tmp_path, fbox, match):
    line = '{"ID": "a", "gtboxes": [{"tag": "person", "fbox": ' + fbox + '}]}'
    _write_lines(tmp_path, json.dumps(GOOD) + '\n' + line + '\n',
                 ids=('ok', 'a'))
    prefix = r'annotation_val\.odgt:2: ' + (
        '' if 'JSON' in match else r'image a, box 0: ')
    with pytest.raises(ODGTFormatError, match=prefix + match):
        _build(tmp_path)
    with pytest.raises(ODGTFormatError, match=prefix + match):
        load_crowdhuman_gt(str(tmp_path / 'annotation_val.odgt'))


@pytest.mark.parametrize('field', ['extra', 'head_attr'])
@pytest.mark.parametrize('value', [[], 0, '', None, False, [1], 'x', 5])
def test_extra_and_head_attr_must_be_objects(tmp_path, field, value):
    box = {'tag': 'person', 'fbox': [1, 2, 3, 4], field: value}
    _write_lines(tmp_path, json.dumps(GOOD) + '\n' +
                 json.dumps(dict(ID='a', gtboxes=[box])) + '\n',
                 ids=('ok', 'a'))
    match = (rf'annotation_val\.odgt:2: image a, box 0: field "{field}" '
             'must be an object')
    with pytest.raises(ODGTFormatError, match=match):
        _build(tmp_path)
    with pytest.raises(ODGTFormatError, match=match):
        load_crowdhuman_gt(str(tmp_path / 'annotation_val.odgt'))


@pytest.mark.parametrize('bad', [b'\xff', b'\xc3(', b'\xe2\x82', b'\x80'])
def test_non_utf8_byte_names_file_line_and_column(tmp_path, bad):
    data = (json.dumps(GOOD).encode() + b'\n\n' + b'{"ID": "a' + bad +
            b'", "gtboxes": []}\n')
    _write_lines(tmp_path, data, raw=True)
    with pytest.raises(ODGTFormatError, match=r'annotation_val\.odgt:3: not '
                       r'UTF-8 text \(byte 0x[0-9a-f]{2} at column 10'):
        _build(tmp_path)
    with pytest.raises(ODGTFormatError, match=r'annotation_val\.odgt:3: '):
        load_crowdhuman_gt(str(tmp_path / 'annotation_val.odgt'))


def test_utf8_bom_is_accepted(tmp_path):
    _write_lines(tmp_path, b'\xef\xbb\xbf' + json.dumps(GOOD).encode() + b'\n',
                 raw=True)
    assert len(_build(tmp_path)) == 1


def test_truncated_png_is_caught_when_loading(tmp_path):
    _write_lines(tmp_path, json.dumps(GOOD) + '\n' +
                 json.dumps(dict(ID='p', gtboxes=[])) + '\n')
    path = str(tmp_path / 'Images' / 'p.jpg')  # PNG data in a .jpg file
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (150, 200, 3), dtype=np.uint8)).save(
        path, 'PNG')
    with open(path, 'rb') as f:
        data = f.read()
    assert len(_build(tmp_path)) == 2  # the complete file loads
    for cut in (len(data) // 2, len(data) - 12, len(data) - 1):
        with open(path, 'wb') as f:
            f.write(data[:cut])
        with pytest.raises(ODGTFormatError,
                           match=r'annotation_val\.odgt:2: image .*p\.jpg is '
                           r'truncated \(no PNG IEND chunk\)'):
            _build(tmp_path)


def test_json_line_and_paragraph_separators_in_strings_are_accepted(
        tmp_path):
    """U+2028, U+2029 and U+0085 are legal, unescaped, inside a JSON
    string; str.splitlines() breaks lines there, JSON-lines readers must
    not."""
    box = dict(tag='person', fbox=[1, 2, 30, 40],
               extra=dict(ignore=0, note='a\u2028b\u2029c\x85d'))
    lines = [
        json.dumps(GOOD),
        json.dumps(dict(ID='a', gtboxes=[box]), ensure_ascii=False),
        json.dumps(dict(ID='b\u2028c', gtboxes=[box]), ensure_ascii=False),
    ]
    text = '\r\n'.join(lines) + '\n'
    assert len(text.splitlines()) > 3  # the old reader's split
    path = _write_lines(tmp_path, text, ids=('ok', 'a', 'b\u2028c'))
    ds = _build(tmp_path)
    assert [ds.get_data_info(k)['img_id'] for k in range(3)] == [
        'ok', 'a', 'b\u2028c'
    ]
    assert ds.get_data_info(1)['instances'][0]['bbox'] == [1, 2, 31, 42]
    assert [r.lineno for r in read_odgt(path)] == [1, 2, 3]
    assert list(load_crowdhuman_gt(path)) == ['ok', 'a', 'b\u2028c']


def test_a_line_of_unicode_spaces_is_not_blank(tmp_path):
    # JSON whitespace is space, tab, CR and LF only: a U+2028 between
    # records is an error, not a blank line silently skipped
    _write_lines(tmp_path, json.dumps(GOOD) + '\n\u2028\n')
    with pytest.raises(ODGTFormatError,
                       match=r'annotation_val\.odgt:2: not valid JSON'):
        _build(tmp_path)
