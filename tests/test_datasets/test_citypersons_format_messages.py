"""Every refusal of the CityPersons JSON reader, message by message, and
the records it returns."""
import json

import pytest

from mmlla.datasets.formats.citypersons import (CityPersonsFormatError,
                                                CityPersonsImage,
                                                citypersons_box_xyxy,
                                                is_citypersons_ignore,
                                                read_citypersons_json)

IMG = dict(id=1, im_name='frankfurt_000000_000294_leftImg8bit.png',
           height=1024, width=2048)
ANN = dict(id=1, image_id=1, category_id=1, bbox=[1, 2, 3, 4])
A0 = 'annotations[0] (id 1, image 1)'


def _doc(images=(IMG, ), anns=(), **kw):
    return dict(images=list(images), annotations=list(anns), **kw)


@pytest.mark.parametrize('doc,msg', [
    ([1], 'the document must be a JSON object with "images" and '
     '"annotations"'),
    (dict(images=[]), 'missing or non-list field "annotations"'),
    (dict(images={}, annotations=[]), 'missing or non-list field "images"'),
    (dict(images=[IMG], annotations=None),
     'missing or non-list field "annotations"'),
    (_doc(images=[]), '"images" is empty'),
    (_doc(images=[1]), 'images[0]: must be a JSON object'),
    (_doc(images=[dict(IMG, id='1')]),
     "images[0]: \"id\" must be an integer, got '1'"),
    (_doc(images=[dict(IMG, id=True)]),
     'images[0]: "id" must be an integer, got True'),
    (_doc(images=[IMG, dict(IMG, id=2), dict(IMG, im_name='x_1.png')]),
     'images[2] (id 1): id 1 already used by images[0] (id 1)'),
    (_doc(images=[dict(IMG, file_name='../a.png')]),
     'images[0] (id 1): "file_name" \'../a.png\' has an empty, "." or ".." '
     'component'),
    (_doc(images=[dict(IMG, file_name=None)]),
     'images[0] (id 1): "file_name" None must be a non-empty string'),
    (_doc(images=[dict(id=1, height=1, width=1)]),
     'images[0] (id 1): needs "file_name" (a path under the image folder) '
     'or "im_name" (a Cityscapes file name), got None'),
    (_doc(images=[dict(IMG, im_name=5)]),
     'images[0] (id 1): needs "file_name" (a path under the image folder) '
     'or "im_name" (a Cityscapes file name), got 5'),
    (_doc(images=[dict(IMG, im_name='a/b_c.png')]),
     'images[0] (id 1): "im_name" \'a/b_c.png\' contains a path separator '
     '(an ID is a file name, not a path)'),
    (_doc(images=[dict(IMG, im_name='abc.png')]),
     'images[0] (id 1): "im_name" \'abc.png\' does not start with its city '
     '(<city>_<seq>_<frame>_leftImg8bit.png)'),
    (_doc(images=[dict(IMG, im_name='_abc.png')]),
     'images[0] (id 1): "im_name" \'_abc.png\' does not start with its city '
     '(<city>_<seq>_<frame>_leftImg8bit.png)'),
    (_doc(images=[dict(IMG, im_name='.._x.png')]),
     'images[0] (id 1): "im_name" \'.._x.png\' does not start with its city '
     '(<city>_<seq>_<frame>_leftImg8bit.png)'),
    (_doc(images=[dict(IMG, width=0)]), 'images[0] (id 1): "width" and '
     '"height" must be integers >= 1, got 0 x 1024'),
    (_doc(images=[dict(IMG, height=1.0)]), 'images[0] (id 1): "width" and '
     '"height" must be integers >= 1, got 2048 x 1.0'),
    (_doc(images=[dict(IMG, height=None)]), 'images[0] (id 1): "width" and '
     '"height" must be integers >= 1, got 2048 x None'),
    (_doc(anns=[1]), 'annotations[0]: must be a JSON object'),
    (_doc(anns=[dict(ANN, id=None)]),
     'annotations[0]: "id" must be an integer, got None'),
    (_doc(anns=[dict(ANN, image_id=2)]),
     'annotations[0] (id 1): "image_id" 2 is no image of the file'),
    (_doc(anns=[dict(ANN, image_id='1')]),
     'annotations[0] (id 1): "image_id" \'1\' is no image of the file'),
    (_doc(anns=[ANN, dict(ANN, id=2), ANN]),
     'annotations[2] (id 1, image 1): id 1 already used by annotations[0]'),
    (_doc(anns=[dict(ANN, category_id=6)]),
     A0 + ': "category_id" must be a CityPersons class (0 ignore region, 1 '
     'pedestrian, 2 rider, 3 sitting person, 4 other person, 5 people '
     'group), got 6'),
    (_doc(anns=[dict(ANN, category_id=True)]),
     A0 + ': "category_id" must be a CityPersons class (0 ignore region, 1 '
     'pedestrian, 2 rider, 3 sitting person, 4 other person, 5 people '
     'group), got True'),
    (_doc(anns=[dict(ANN, bbox=[1, 2, 3])]), A0 + ': "bbox" must be [x, y, '
     'w, h] (4 finite numbers), got [1, 2, 3]'),
    (_doc(anns=[dict(ANN, bbox=[1, 2, 3, True])]), A0 + ': "bbox" must be '
     '[x, y, w, h] (4 finite numbers), got [1, 2, 3, True]'),
    (_doc(anns=[dict(ANN, bbox=[1, 2, 3, 10**400])]), A0 + ': "bbox" must '
     'be [x, y, w, h] (4 finite numbers), got [1, 2, 3, 1' + '0' * 66 +
     '...'),
    (_doc(anns=[dict(ANN, bbox=[1, 2, -3, 4])]), A0 + ': "bbox" [1, 2, -3, '
     '4] has a negative width or height'),
    (_doc(anns=[dict(ANN, bbox=[1, 2, 3, -0.5])]), A0 + ': "bbox" [1, 2, 3, '
     '-0.5] has a negative width or height'),
    (_doc(anns=[dict(ANN, bbox=[1e308, 2, 1e308, 4])]), A0 + ': "bbox" '
     '[1e+308, 2, 1e+308, 4] overflows'),
    (_doc(anns=[dict(ANN, bbox=[1, 1e308, 3, 1e308])]), A0 + ': "bbox" '
     '[1, 1e+308, 3, 1e+308] overflows'),
    (_doc(anns=[dict(ANN, vis_bbox=None)]), A0 + ': "vis_bbox" must be [x, '
     'y, w, h] (4 finite numbers), got None'),
    (_doc(anns=[dict(ANN, height='x')]),
     A0 + ': "height" must be a finite number, got \'x\''),
    (_doc(anns=[dict(ANN, vis_ratio=None)]),
     A0 + ': "vis_ratio" must be a finite number, got None'),
    (_doc(anns=[dict(ANN, ignore=2)]),
     A0 + ': "ignore" must be 0 or 1, got 2'),
    (_doc(anns=[dict(ANN, iscrowd=1.0)]),
     A0 + ': "iscrowd" must be 0 or 1, got 1.0'),
    (_doc(anns=[dict(ANN, iscrowd=None)]),
     A0 + ': "iscrowd" must be 0 or 1, got None'),
])
def test_refusals_name_the_file_and_record(tmp_path, doc, msg):
    path = tmp_path / 'gt.json'
    path.write_text(json.dumps(doc))
    with pytest.raises(CityPersonsFormatError) as info:
        read_citypersons_json(str(path))
    assert str(info.value) == f'{path}: {msg}'


def test_syntax_and_encoding_errors(tmp_path):
    path = tmp_path / 'gt.json'
    path.write_text('{"images":\n [1,]}')
    with pytest.raises(CityPersonsFormatError, match=(
            f'^{path}:2:5: not valid JSON \\(Expecting value\\)$')):
        read_citypersons_json(str(path))
    path.write_bytes(b'{"images": "\xff"}')
    with pytest.raises(CityPersonsFormatError, match=(
            f'^{path}:1: not UTF-8 text \\(byte 0xff at column 13')):
        read_citypersons_json(str(path))


def test_records(tmp_path):
    second = dict(ANN, id=2, image_id=2, ignore=True, iscrowd=0,
                  vis_bbox=[0, 0, 1, 1], height=40, vis_ratio=0.5)
    third = dict(ANN, id=3, category_id=0, bbox=[0.5, 0, 0, 0])
    path = tmp_path / 'gt.json'
    path.write_text(json.dumps(_doc(
        images=[IMG, dict(IMG, id=2, file_name='a/b.png', width=1,
                          height=1)],
        anns=[ANN, second, third])))
    f = str(path)
    assert read_citypersons_json(f) == [
        CityPersonsImage(1, 'frankfurt/' + IMG['im_name'], 2048, 1024,
                         [(f'{f}: ' + A0, ANN),
                          (f'{f}: annotations[2] (id 3, image 1)', third)],
                         f'{f}: images[0] (id 1)'),
        CityPersonsImage(2, 'a/b.png', 1, 1,
                         [(f'{f}: annotations[1] (id 2, image 2)', second)],
                         f'{f}: images[1] (id 2)'),
    ]


def test_box_and_ignore_rule():
    assert citypersons_box_xyxy(dict(bbox=[1, 2, 3, 4]), 'bbox', 'w') == \
        [1.0, 2.0, 4.0, 6.0]
    assert citypersons_box_xyxy(dict(v=[0.5, 0, 0, 0]), 'v', 'w') == \
        [0.5, 0.0, 0.5, 0.0]
    with pytest.raises(CityPersonsFormatError, match=r'^w: "bbox" must be '
                       r'\[x, y, w, h\] \(4 finite numbers\), got '
                       r'\(1, 2, 3, 4\)$'):
        citypersons_box_xyxy(dict(bbox=(1, 2, 3, 4)), 'bbox', 'w')
    with pytest.raises(CityPersonsFormatError, match=r'got \[1, 2, 3, nan\]'):
        citypersons_box_xyxy(dict(bbox=[1, 2, 3, float('nan')]), 'bbox', 'w')
    for ann, ignore in [(dict(category_id=1), False),
                        (dict(category_id=1, ignore=0, iscrowd=False), False),
                        (dict(category_id=1, ignore=1), True),
                        (dict(category_id=1, iscrowd=True), True),
                        (dict(category_id=0), True),
                        (dict(category_id=5, ignore=0), True)]:
        assert is_citypersons_ignore(ann) is ignore, ann


def test_duplicate_id_message_with_a_colon_in_the_path(tmp_path):
    """The earlier record is named by its place in the file, whatever the
    annotation path holds (a path with ": " was cut at its first one)."""
    folder = tmp_path / 'run: 2'
    folder.mkdir()
    path = folder / 'gt.json'
    path.write_text(json.dumps(_doc(images=[IMG, dict(IMG, id=2), IMG])))
    with pytest.raises(CityPersonsFormatError) as info:
        read_citypersons_json(str(path))
    assert str(info.value) == (f'{path}: images[2] (id 1): id 1 already '
                               'used by images[0] (id 1)')


@pytest.mark.parametrize('name', ['._x_leftImg8bit.png',
                                  '.._x_leftImg8bit.png'])
def test_a_dot_city_is_refused(tmp_path, name):
    path = tmp_path / 'gt.json'
    path.write_text(json.dumps(_doc(images=[dict(IMG, im_name=name)])))
    with pytest.raises(CityPersonsFormatError) as info:
        read_citypersons_json(str(path))
    assert str(info.value) == (
        f'{path}: images[0] (id 1): "im_name" {name!r} does not start with '
        'its city (<city>_<seq>_<frame>_leftImg8bit.png)')


def test_a_non_integer_annotation_id_is_named(tmp_path):
    path = tmp_path / 'gt.json'
    path.write_text(json.dumps(_doc(anns=[dict(ANN, id='x')])))
    with pytest.raises(CityPersonsFormatError) as info:
        read_citypersons_json(str(path))
    assert str(info.value).endswith(
        ': annotations[0]: "id" must be an integer, got \'x\'')
