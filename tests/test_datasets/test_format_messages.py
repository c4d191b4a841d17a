"""Every refusal of the annotation readers, message by message.

The messages are the contract of mmlla/datasets/formats: each names the
file, the line or record, the field and the bad value, so that a user can
fix the file without reading the code.
"""
import json
import sys

import pytest

from mmlla.datasets.formats.common import (
    AnnotationFormatError, check_image_id, check_relative_path, decode_utf8,
    loads_json_document, loads_json_line, short_repr, split_json_lines)
from mmlla.datasets.formats.odgt import (ODGTFormatError, ODGTRecord,
                                         odgt_box_xyxy, odgt_ignore_flag,
                                         read_odgt)


# --- common ---
def test_short_repr():
    assert short_repr('a' * 78) == repr('a' * 78)  # 80 characters
    assert short_repr('a' * 79) == "'" + 'a' * 76 + '...'
    assert len(short_repr(list(range(100)))) == 80
    assert short_repr([1, 2], limit=5) == '[1, 2]'[:2] + '...'
    assert short_repr([1, 2], limit=6) == '[1, 2]'


def test_decode_utf8():
    assert decode_utf8(b'\xef\xbb\xbfab\xc3\xa9', 'f') == 'ab\u00e9'
    assert decode_utf8(b'a\xef\xbb\xbf', 'f') == 'a\ufeff'  # only leading
    with pytest.raises(AnnotationFormatError, match=(
            r'^f.txt:3: not UTF-8 text \(byte 0xe9 at column 4: invalid '
            r'continuation byte\)$')):
        decode_utf8(b'one\ntwo\nabc\xe9x\n', 'f.txt')
    with pytest.raises(KeyError, match=r'f:1: not UTF-8 text \(byte 0xff at '
                       'column 1'):
        decode_utf8(b'\xffa\n', 'f', KeyError)
    # a BOM is not counted as a column
    with pytest.raises(AnnotationFormatError, match='f:1: .* column 2'):
        decode_utf8(b'\xef\xbb\xbfa\xff', 'f')


def test_split_json_lines():
    text = '{"a": "x\u2028y"}\r\n \t\r\n\n\u00a0\n{"b": 1}'
    assert list(split_json_lines(text)) == [
        (1, '{"a": "x\u2028y"}\r'), (4, '\u00a0'), (5, '{"b": 1}')]
    assert list(split_json_lines('')) == []


def test_loads_json_line():
    assert loads_json_line('{"a": [1]}', 'f:2') == {'a': [1]}
    with pytest.raises(AnnotationFormatError, match=(
            r'^f:2: not valid JSON \(Expecting value: line 1 column 7 '
            r'\(char 6\)\)$')):
        loads_json_line('{"a": }', 'f:2')
    with pytest.raises(KeyError, match='f:3: not valid JSON'):
        loads_json_line('[' * (sys.getrecursionlimit() + 10), 'f:3', KeyError)
    with pytest.raises(AnnotationFormatError, match=r'^f:4: not valid JSON '
                       r'\(Exceeds the limit'):
        loads_json_line('1' * 5000, 'f:4')


def test_loads_json_document():
    assert loads_json_document('\n{"a": 1}\n', 'f') == {'a': 1}
    with pytest.raises(AnnotationFormatError, match=(
            r"^f.json:2:5: not valid JSON \(Expecting ',' delimiter\)$")):
        loads_json_document('{"a":\n [1 2]}', 'f.json')
    with pytest.raises(KeyError, match=r'f.json: not valid JSON \(Exceeds'):
        loads_json_document('1' * 5000, 'f.json', KeyError)
    with pytest.raises(AnnotationFormatError, match=r'^f.json: not valid '
                       r'JSON \(maximum recursion depth'):
        loads_json_document('[' * (sys.getrecursionlimit() + 10), 'f.json')


@pytest.mark.parametrize('img_id,reason', [
    ('273271,c9db000d5146c15', None), ('a..b', None), ('.a', None),
    ('', 'is empty'), ('a\0b', 'contains a NUL character'),
    ('a/b', 'contains a path separator (an ID is a file name, not a path)'),
    ('a\\b', 'contains a path separator (an ID is a file name, not a path)'),
    ('.', 'is a relative path component'),
    ('..', 'is a relative path component'),
    ('C:x', 'is an absolute or drive-qualified path'),
])
def test_check_image_id(img_id, reason):
    assert check_image_id(img_id) == reason


@pytest.mark.parametrize('path,reason', [
    ('a/b.png', None), ('b.png', None), ('a/.b.png', None),
    ('', 'must be a non-empty string'), (None, 'must be a non-empty string'),
    (7, 'must be a non-empty string'),
    ('a\0.png', 'contains a NUL character'),
    ('a\\b.png', 'contains a backslash (use / to separate folders)'),
    ('/a/b.png', 'is an absolute or drive-qualified path'),
    ('C:a.png', 'is an absolute or drive-qualified path'),
    ('a//b.png', 'has an empty, "." or ".." component'),
    ('a/./b.png', 'has an empty, "." or ".." component'),
    ('../b.png', 'has an empty, "." or ".." component'),
    ('a/', 'has an empty, "." or ".." component'),
])
def test_check_relative_path(path, reason):
    assert check_relative_path(path) == reason


# --- .odgt ---
def _read(tmp_path, text):
    path = tmp_path / 'a.odgt'
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path), path


OK = '{"ID": "x", "gtboxes": []}\n'


@pytest.mark.parametrize('text,msg', [
    (b'', '{f}:1: the annotation file holds no record (it is empty or '
     'blank)'),
    (b' \n\t\r\n', '{f}:1: the annotation file holds no record (it is empty '
     'or blank)'),
    (OK + '[1]\n', '{f}:2: a record must be a JSON object'),
    (OK + '{"gtboxes": []}', '{f}:2: missing field "ID"'),
    ('{"ID": true, "gtboxes": []}', '{f}:1: "ID" must be a string or an '
     'integer, got True'),
    ('{"ID": 1.5, "gtboxes": []}', '{f}:1: "ID" must be a string or an '
     'integer, got 1.5'),
    ('{"ID": null, "gtboxes": []}', '{f}:1: "ID" must be a string or an '
     'integer, got None'),
    ('{"ID": "", "gtboxes": []}', "{f}:1: image ID '' is empty"),
    ('{"ID": "a/b", "gtboxes": []}', "{f}:1: image ID 'a/b' contains a path "
     'separator (an ID is a file name, not a path)'),
    ('{"ID": 7, "gtboxes": []}\n\n{"ID": "7", "gtboxes": []}',
     "{f}:3: image ID '7' already appears on line 1"),
    ('{"ID": "a"}', '{f}:1: image a: missing or non-list field "gtboxes"'),
    ('{"ID": "a", "gtboxes": {}}', '{f}:1: image a: missing or non-list '
     'field "gtboxes"'),
    ('{"ID": "a", "gtboxes": [1]}', '{f}:1: image a, box 0: missing field '
     '"tag"'),
    ('{"ID": "a", "gtboxes": [{"tag": "person"}, {}]}',
     '{f}:1: image a, box 1: missing field "tag"'),
    ('{"ID": "a", "gtboxes": [{"tag": "p", "extra": null}]}',
     '{f}:1: image a, box 0: field "extra" must be an object, got None'),
    ('{"ID": "a", "gtboxes": [{"tag": "p", "extra": {}, "head_attr": 0}]}',
     '{f}:1: image a, box 0: field "head_attr" must be an object, got 0'),
    (b'{"ID": "a",\xff "gtboxes": []}', '{f}:1: not UTF-8 text (byte 0xff at '
     'column 12: invalid start byte)'),
    ('{"ID": "a", "gtboxes": [}', '{f}:1: not valid JSON (Expecting value: '
     'line 1 column 25 (char 24))'),
])
def test_read_odgt_refusals(tmp_path, text, msg):
    name, _ = _read(tmp_path, text)
    with pytest.raises(ODGTFormatError) as info:
        read_odgt(name)
    assert str(info.value) == msg.format(f=name)


def test_read_odgt_records(tmp_path):
    boxes = [dict(tag='person', fbox=[1, 2, 3, 4], extra={}),
             dict(tag='mask', fbox=[0, 0, 1, 1], head_attr=dict(ignore=1))]
    text = ('\ufeff\n' + json.dumps(dict(ID=12, gtboxes=[])) + '\r\n \n' +
            json.dumps(dict(ID='b\u2028c', gtboxes=boxes)) + '\n')
    name, path = _read(tmp_path, text)
    assert read_odgt(name) == [
        ODGTRecord(2, '12', [], f'{name}:2: image 12'),
        ODGTRecord(4, 'b\u2028c', boxes, f'{name}:4: image b\u2028c'),
    ]


def test_odgt_ignore_flag():
    assert odgt_ignore_flag(dict(extra=dict(ignore=1)), 'extra') is True
    assert odgt_ignore_flag(dict(extra=dict(ignore=-1)), 'extra') is True
    assert odgt_ignore_flag(dict(extra=dict(ignore=0)), 'extra') is False
    assert odgt_ignore_flag(dict(extra={}), 'extra') is False
    assert odgt_ignore_flag(dict(extra=None), 'extra') is False
    assert odgt_ignore_flag({}, 'head_attr') is False
    assert odgt_ignore_flag(dict(extra=dict(ignore=1)), 'head_attr') is False


@pytest.mark.parametrize('ann,key,fallback,out', [
    (dict(fbox=[1, 2, 3, 4]), 'fbox', False, [1.0, 2.0, 4.0, 6.0]),
    (dict(fbox=(1.5, 2, 0, 0)), 'fbox', False, [1.5, 2.0, 1.5, 2.0]),
    (dict(fbox=[1, 2, 3, 4]), 'vbox', True, [1.0, 2.0, 4.0, 6.0]),
    (dict(fbox=[1, 2, 3, 4], vbox=[0, 0, 1, 1]), 'vbox', True,
     [0.0, 0.0, 1.0, 1.0]),
    (dict(fbox=[-5, -5, 2, 2]), 'fbox', False, [-5.0, -5.0, -3.0, -3.0]),
])
def test_odgt_box_xyxy(ann, key, fallback, out):
    xyxy = odgt_box_xyxy(ann, key, 'w', fallback)
    assert xyxy == out and all(type(v) is float for v in xyxy)


@pytest.mark.parametrize('ann,key,fallback,msg', [
    (dict(fbox=[1, 2, 3, 4]), 'vbox', False,
     'w: field "vbox" must be [x, y, w, h], got None'),
    (dict(vbox=[1, 2, 3, 4]), 'hbox', True,
     'w: field "fbox" must be [x, y, w, h], got None'),
    (dict(fbox=[1, 2, 3]), 'fbox', False,
     'w: field "fbox" must be [x, y, w, h], got [1, 2, 3]'),
    (dict(fbox=[1, 2, 3, 4, 5]), 'fbox', False,
     'w: field "fbox" must be [x, y, w, h], got [1, 2, 3, 4, 5]'),
    (dict(fbox=[1, 2, 3, '4']), 'fbox', False,
     "w: field \"fbox\" must be [x, y, w, h], got [1, 2, 3, '4']"),
    (dict(fbox=[1, 2, True, 4]), 'fbox', False,
     'w: field "fbox" must be [x, y, w, h], got [1, 2, True, 4]'),
    (dict(fbox='1234'), 'fbox', False,
     "w: field \"fbox\" must be [x, y, w, h], got '1234'"),
    (dict(fbox=[1, 2, 10**400, 4]), 'fbox', False,
     f'w: non-finite "fbox" {short_repr([1, 2, 10**400, 4])} (a value is '
     'too large for a float)'),
    (dict(fbox=(1, 2, float('inf'), 4)), 'fbox', False,
     'w: non-finite "fbox" [1, 2, inf, 4]'),
    (dict(fbox=[1, float('nan'), 3, 4]), 'fbox', False,
     'w: non-finite "fbox" [1, nan, 3, 4]'),
    (dict(fbox=[1e308, 2, 1e308, 4]), 'fbox', False,
     'w: non-finite "fbox" [1e+308, 2, 1e+308, 4]'),
    (dict(fbox=[1, -1e308, 3, -1e308]), 'fbox', False,
     'w: non-finite "fbox" [1, -1e+308, 3, -1e+308]'),
])
def test_odgt_box_refusals(ann, key, fallback, msg):
    with pytest.raises(ODGTFormatError) as info:
        odgt_box_xyxy(ann, key, 'w', fallback)
    assert str(info.value) == msg
