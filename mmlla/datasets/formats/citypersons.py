"""The CityPersons community COCO-style JSON: reader and ignore rule.

The CityPersons annotations (Zhang et al., CVPR 2017) ship as Matlab files;
the evaluation code every public pedestrian detector uses
(``eval_MR_multisetup.py``, copied in CSP, Pedestron, APD, ...) reads them
converted to one COCO-style JSON document (``val_gt.json``)::

    {"categories": [{"id": 1, "name": "pedestrian"}, ...],
     "images": [{"id": 1, "im_name": "frankfurt_000000_000294_leftImg8bit.png",
                 "height": 1024, "width": 2048}, ...],
     "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
                      "iscrowd": 0, "ignore": 0, "bbox": [x, y, w, h],
                      "vis_bbox": [x, y, w, h], "height": 40,
                      "vis_ratio": 0.80}, ...]}

:func:`read_citypersons_json` reads the file strictly and names the file and
the record (``images[3] (id 4)``, ``annotations[17] (id 18, image 4)``) of
any error. The training dataset (``CityPersonsDataset``) and the evaluation
(``mmlla.evaluation.functional.load_citypersons_gt``) both read files with
it and share one ignore rule, :func:`is_citypersons_ignore`.

Conventions accepted:

* the category: ``1`` is a pedestrian; ``0`` (ignore region: fake humans,
  reflections), ``2`` (rider), ``3`` (sitting person), ``4`` (other person
  with an unusual posture) and ``5`` (group of people) are the CityPersons
  classes that are ignored (files that keep every box in category 1 mark
  them with ``ignore: 1``); any other category is refused;
* the image file: ``file_name`` (a relative path under the image folder, as
  Pedestron's and cvpods' conversions write) or ``im_name`` (the bare
  Cityscapes file name, in the folder of its city:
  ``<city>/<city>_<seq>_<frame>_leftImg8bit.png``, as ``val_gt.json``);
* optional per annotation: ``vis_bbox`` (visible box), ``height`` and
  ``vis_ratio`` (read by the evaluation setups; the evaluation requires them),
  ``ignore`` and ``iscrowd`` (0/1 or booleans).
"""
import math
from typing import Dict, List, NamedTuple, Optional

from mmengine.fileio import get

from .common import (AnnotationFormatError, check_image_id,
                     check_relative_path, decode_utf8, loads_json_document,
                     short_repr)

# CityPersons class labels (the `class_label` of the official annotations,
# the category ids of the community JSON).
PEDESTRIAN = 1
IGNORED_CLASSES = {
    0: 'ignore region',
    2: 'rider',
    3: 'sitting person',
    4: 'other person',
    5: 'people group',
}
CATEGORY_NAMES = {PEDESTRIAN: 'pedestrian', **IGNORED_CLASSES}
CATEGORY_LIST = ', '.join(f'{k} {v}'
                          for k, v in sorted(CATEGORY_NAMES.items()))
# Trained / evaluated box per `body`.
BOX_KEYS = {'full': 'bbox', 'visible': 'vis_bbox'}


class CityPersonsFormatError(AnnotationFormatError):
    """A malformed CityPersons JSON file or record."""


class CityPersonsImage(NamedTuple):
    """One validated image record and its annotations.

    Attributes:
        img_id (int): The image's ``id``.
        file (str): Its file, relative to the image folder (``/``-separated,
            never absolute, never with a ``..`` component).
        width (int): ``width`` of the record.
        height (int): ``height`` of the record.
        anns (list[tuple[str, dict]]): Its annotations in file order, each
            with its location for error messages
            (``'<file>: annotations[k] (id i, image j)'``).
        where (str): ``'<file>: images[k] (id i)'``.
    """
    img_id: int
    file: str
    width: int
    height: int
    anns: list
    where: str


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value) -> Optional[float]:
    """``value`` as a finite float, or None (not a number, bool, inf, NaN)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except OverflowError:  # an integer beyond the float range
        return None
    return out if math.isfinite(out) else None


def _flag(record: dict, key: str, where: str) -> bool:
    """An optional 0/1 (or boolean) field; absent is 0."""
    value = record.get(key, 0)
    if value not in (0, 1) or isinstance(value, float):
        raise CityPersonsFormatError(
            f'{where}: "{key}" must be 0 or 1, got {short_repr(value)}')
    return bool(value)


def citypersons_box_xyxy(ann: dict, key: str, where: str) -> List[float]:
    """Read the ``[x, y, w, h]`` box ``ann[key]`` as ``[x1, y1, x2, y2]``.

    Args:
        ann: One annotation record.
        key: ``'bbox'`` or ``'vis_bbox'``.
        where: Location for error messages.

    Returns:
        list[float]: ``[x, y, x + w, y + h]``.

    Raises:
        CityPersonsFormatError: The box is missing, not 4 finite numbers,
            its width or height is negative or its corner overflows.
    """
    box = ann.get(key)
    values = ([_number(v) for v in box]
              if isinstance(box, list) and len(box) == 4 else None)
    if values is None or None in values:
        raise CityPersonsFormatError(
            f'{where}: "{key}" must be [x, y, w, h] (4 finite numbers), got '
            f'{short_repr(box)}')
    x, y, w, h = values
    if w < 0 or h < 0:
        raise CityPersonsFormatError(
            f'{where}: "{key}" {short_repr(box)} has a negative width or '
            'height')
    xyxy = [x, y, x + w, y + h]
    if not all(math.isfinite(v) for v in xyxy):
        raise CityPersonsFormatError(f'{where}: "{key}" {short_repr(box)} '
                                     'overflows')
    return xyxy


def is_citypersons_ignore(ann: dict) -> bool:
    """Whether an annotation is an ignore region (training and evaluation).

    The CityPersons protocol ignores every box that is not a pedestrian:
    ignore regions, riders, sitting persons, other persons and groups (class
    labels 0, 2, 3, 4, 5), whether they carry their class as
    ``category_id`` or sit in category 1 with ``ignore: 1`` (the community
    ``val_gt.json``); ``iscrowd: 1`` (COCO's crowd flag, which Pedestron's
    conversion sets on them) is an ignore region too. The record was
    validated by :func:`read_citypersons_json`.

    Args:
        ann: One annotation record.

    Returns:
        bool: True for an ignore region.
    """
    return (ann['category_id'] != PEDESTRIAN or bool(ann.get('ignore', 0))
            or bool(ann.get('iscrowd', 0)))


def _check_annotation(ann, where: str) -> None:
    """Validate one annotation's fields (not its image reference)."""
    category = ann.get('category_id')
    if not _is_int(category) or category not in CATEGORY_NAMES:
        raise CityPersonsFormatError(
            f'{where}: "category_id" must be a CityPersons class '
            f'({CATEGORY_LIST}), got {short_repr(category)}')
    citypersons_box_xyxy(ann, 'bbox', where)
    if 'vis_bbox' in ann:
        citypersons_box_xyxy(ann, 'vis_bbox', where)
    for key in ('height', 'vis_ratio'):
        if key in ann and _number(ann[key]) is None:
            raise CityPersonsFormatError(
                f'{where}: "{key}" must be a finite number, got '
                f'{short_repr(ann[key])}')
    _flag(ann, 'ignore', where)
    _flag(ann, 'iscrowd', where)


def _image_file(img: dict, where: str) -> str:
    """The image's path relative to the image folder."""
    if 'file_name' in img:
        reason = check_relative_path(img['file_name'])
        if reason is not None:
            raise CityPersonsFormatError(
                f'{where}: "file_name" {short_repr(img["file_name"])} '
                f'{reason}')
        return img['file_name']
    name = img.get('im_name')
    if not isinstance(name, str):
        raise CityPersonsFormatError(
            f'{where}: needs "file_name" (a path under the image folder) or '
            f'"im_name" (a Cityscapes file name), got {short_repr(name)}')
    reason = check_image_id(name)
    if reason is not None:
        raise CityPersonsFormatError(f'{where}: "im_name" {short_repr(name)} '
                                     f'{reason}')
    city = name.split('_', 1)[0]
    if not city or city in ('.', '..') or '_' not in name:
        raise CityPersonsFormatError(
            f'{where}: "im_name" {short_repr(name)} does not start with its '
            'city '
            '(<city>_<seq>_<frame>_leftImg8bit.png)')
    return f'{city}/{name}'


def read_citypersons_json(ann_file: str,
                          backend_args: Optional[dict] = None
                          ) -> List[CityPersonsImage]:
    """Read and validate a CityPersons COCO-style JSON file.

    Args:
        ann_file: Path (any mmengine file backend) of the JSON file.
        backend_args: mmengine file backend arguments.

    Returns:
        list[CityPersonsImage]: One per image, in file order.

    Raises:
        CityPersonsFormatError: The file is not UTF-8 JSON (line and column
            named), is not an object with lists ``images`` and
            ``annotations``, an image or annotation record is malformed or
            repeats an ``id``, an image names a path outside the image
            folder, or an annotation's ``image_id`` is no image of the file;
            the message names the file and the record.
    """
    text = decode_utf8(
        get(ann_file, backend_args=backend_args), ann_file,
        CityPersonsFormatError)
    doc = loads_json_document(text, ann_file, CityPersonsFormatError)
    if not isinstance(doc, dict):
        raise CityPersonsFormatError(
            f'{ann_file}: the document must be a JSON object with "images" '
            'and "annotations"')
    for key in ('images', 'annotations'):
        if not isinstance(doc.get(key), list):
            raise CityPersonsFormatError(
                f'{ann_file}: missing or non-list field "{key}"')
    if not doc['images']:
        raise CityPersonsFormatError(f'{ann_file}: "images" is empty')

    images: Dict[int, CityPersonsImage] = {}
    for k, img in enumerate(doc['images']):
        where = f'{ann_file}: images[{k}]'
        if not isinstance(img, dict):
            raise CityPersonsFormatError(f'{where}: must be a JSON object')
        img_id = img.get('id')
        if not _is_int(img_id):
            raise CityPersonsFormatError(
                f'{where}: "id" must be an integer, got {short_repr(img_id)}')
        where = f'{where} (id {img_id})'
        if img_id in images:
            raise CityPersonsFormatError(
                f'{where}: id {img_id} already used by '
                f'{images[img_id].where[len(ann_file) + 2:]}')
        file = _image_file(img, where)
        size = [img.get('width'), img.get('height')]
        if not all(_is_int(v) and v >= 1 for v in size):
            raise CityPersonsFormatError(
                f'{where}: "width" and "height" must be integers >= 1, got '
                f'{short_repr(size[0])} x {short_repr(size[1])}')
        images[img_id] = CityPersonsImage(img_id, file, size[0], size[1], [],
                                          where)

    ann_ids: Dict[int, int] = {}
    for k, ann in enumerate(doc['annotations']):
        where = f'{ann_file}: annotations[{k}]'
        if not isinstance(ann, dict):
            raise CityPersonsFormatError(f'{where}: must be a JSON object')
        ann_id, img_id = ann.get('id'), ann.get('image_id')
        if not _is_int(ann_id):
            raise CityPersonsFormatError(
                f'{where}: "id" must be an integer, got {short_repr(ann_id)}')
        where = f'{where} (id {ann_id}'
        if not _is_int(img_id) or img_id not in images:
            raise CityPersonsFormatError(
                f'{where}): "image_id" {short_repr(img_id)} is no image of '
                'the '
                'file')
        where = f'{where}, image {img_id})'
        if ann_id in ann_ids:
            raise CityPersonsFormatError(
                f'{where}: id {ann_id} already used by annotations'
                f'[{ann_ids[ann_id]}]')
        ann_ids[ann_id] = k
        _check_annotation(ann, where)
        images[img_id].anns.append((where, ann))
    return list(images.values())


__all__ = [
    'PEDESTRIAN', 'IGNORED_CLASSES', 'CATEGORY_NAMES', 'BOX_KEYS',
    'CityPersonsFormatError', 'CityPersonsImage', 'citypersons_box_xyxy',
    'is_citypersons_ignore', 'read_citypersons_json'
]
