"""The CrowdHuman ``.odgt`` format: reader, body keys and ignore rules.

One JSON object per non-blank line, in UTF-8::

    {"ID": "273271,c9db000d5146c15", "gtboxes": [
        {"tag": "person", "fbox": [x, y, w, h], "vbox": [...],
         "hbox": [...], "extra": {"ignore": 0}, "head_attr": {"ignore": 0}},
        {"tag": "mask", "fbox": [...], "extra": {"ignore": 1}}, ...]}

Both the training dataset (``CrowdHumanODGTDataset``) and the evaluation
(``mmlla.evaluation.functional.load_crowdhuman_gt``) read files with
:func:`read_odgt` and boxes with :func:`odgt_box_xyxy`. The two ignore rules
are different on purpose (``docs/algorithms.md`` section 6, "Ignore
regions") and both are defined here: :func:`is_train_ignore` for training,
:func:`eval_tag` for evaluation.
"""
import math
from typing import List, NamedTuple, Optional

from mmengine.fileio import get

from .common import (AnnotationFormatError, check_image_id, decode_utf8,
                     loads_json_line, short_repr, split_json_lines)

# The box of each body part: ``body`` argument -> ``.odgt`` field.
BODY_KEYS = {'full': 'fbox', 'visible': 'vbox', 'head': 'hbox'}
# CrowdDet's evaluation tags of a box (see eval_tag).
PERSON, BACKGROUND, IGNORE = 1, 0, -1
EVAL_CLASS_TAGS = {'person': PERSON, 'background': BACKGROUND}


class ODGTFormatError(AnnotationFormatError):
    """A malformed record in a CrowdHuman ``.odgt`` annotation file."""


class ODGTRecord(NamedTuple):
    """One validated line of a ``.odgt`` file (see :func:`read_odgt`).

    Attributes:
        lineno (int): 1-based line number.
        img_id (str): The record's ``ID`` as a string.
        gtboxes (list[dict]): Its boxes; each is a dict with a ``tag``.
        where (str): ``'<file>:<line>: image <ID>'``, the prefix of error
            messages about this record.
    """
    lineno: int
    img_id: str
    gtboxes: list
    where: str


def check_body(body: str) -> str:
    """``body`` if it names a box of :data:`BODY_KEYS`, else a ValueError.

    Args:
        body (str): ``'full'``, ``'visible'`` or ``'head'``.

    Returns:
        str: ``body``.
    """
    if body not in BODY_KEYS:
        raise ValueError(f'body must be one of {sorted(BODY_KEYS)}, '
                         f'got {body!r}')
    return body


def read_odgt(ann_file: str,
              backend_args: Optional[dict] = None) -> List[ODGTRecord]:
    """Read and validate every record of a CrowdHuman ``.odgt`` file.

    One JSON object per non-blank line, ``{"ID": ..., "gtboxes": [{"tag":
    ..., ...}, ...]}``, in UTF-8. Lines end at ``\\n`` only (a U+2028 or
    U+0085 inside a JSON string is part of its record). The boxes'
    coordinates are validated when read, by :func:`odgt_box_xyxy`.

    Args:
        ann_file (str): Path (any mmengine file backend) of the file.
        backend_args (dict, optional): mmengine file backend arguments.

    Returns:
        list[ODGTRecord]: One per record, in file order.

    Raises:
        ODGTFormatError: The file is not UTF-8 or holds no record, a line is
            not a JSON object, misses ``ID`` or a list ``gtboxes``, the
            ``ID`` is not a string or integer or is a path
            (:func:`~mmlla.datasets.formats.common.check_image_id`), a box
            is not an object with a ``tag``, its ``extra`` / ``head_attr``
            is not an object, or an ID repeats; the message names the file
            and the 1-based line number.
    """
    text = decode_utf8(
        get(ann_file, backend_args=backend_args), ann_file, ODGTFormatError)
    records, seen = [], {}
    for lineno, line in split_json_lines(text):
        loc = f'{ann_file}:{lineno}'
        record = loads_json_line(line, loc, ODGTFormatError)
        if not isinstance(record, dict):
            raise ODGTFormatError(f'{loc}: a record must be a JSON object')
        if 'ID' not in record:
            raise ODGTFormatError(f'{loc}: missing field "ID"')
        raw_id = record['ID']
        if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
            raise ODGTFormatError(f'{loc}: "ID" must be a string or an '
                                  f'integer, got {short_repr(raw_id)}')
        img_id = str(raw_id)
        reason = check_image_id(img_id)
        if reason is not None:
            raise ODGTFormatError(f'{loc}: image ID {short_repr(img_id)} '
                                  f'{reason}')
        if img_id in seen:
            raise ODGTFormatError(
                f'{loc}: image ID {img_id!r} already appears on line '
                f'{seen[img_id]}')
        seen[img_id] = lineno
        where = f'{loc}: image {img_id}'
        gtboxes = record.get('gtboxes')
        if not isinstance(gtboxes, list):
            raise ODGTFormatError(
                f'{where}: missing or non-list field "gtboxes"')
        for k, ann in enumerate(gtboxes):
            if not isinstance(ann, dict) or 'tag' not in ann:
                raise ODGTFormatError(
                    f'{where}, box {k}: missing field "tag"')
            for field in ('extra', 'head_attr'):
                # Absent is fine; present, it must be an object (null, [],
                # 0 and "" included: they are not objects).
                if field in ann and not isinstance(ann[field], dict):
                    raise ODGTFormatError(
                        f'{where}, box {k}: field "{field}" must be an '
                        f'object, got {short_repr(ann[field])}')
        records.append(ODGTRecord(lineno, img_id, gtboxes, where))
    if not records:
        raise ODGTFormatError(
            f'{ann_file}:1: the annotation file holds no record (it is '
            'empty or blank)')
    return records


def odgt_ignore_flag(ann: dict, field: str) -> bool:
    """Whether ``ann[field]['ignore']`` is non-zero (absent counts as 0).

    Args:
        ann (dict): One entry of a record's ``gtboxes``.
        field (str): ``'extra'`` or ``'head_attr'``; :func:`read_odgt`
            checked that it is an object when present.

    Returns:
        bool: True when the flag is set.
    """
    return (ann.get(field) or {}).get('ignore', 0) != 0


def odgt_box_xyxy(ann: dict,
                  key: str,
                  where: str,
                  fbox_fallback: bool = False) -> List[float]:
    """Read the ``[x, y, w, h]`` box ``ann[key]`` as ``[x1, y1, x2, y2]``.

    Args:
        ann (dict): One entry of a record's ``gtboxes``.
        key (str): ``'fbox'``, ``'vbox'`` or ``'hbox'``.
        where (str): Location for error messages (``file:line: image ID,
            box k``).
        fbox_fallback (bool): Read ``fbox`` when ``key`` is absent (ignore
            regions, e.g. ``mask`` boxes, often carry only their ``fbox``).

    Returns:
        list[float]: ``[x, y, x + w, y + h]`` (no "- 1").

    Raises:
        ODGTFormatError: The box is missing, not 4 numbers, not finite (an
            integer too large for a float included) or its corner
            ``x + w`` / ``y + h`` overflows.
    """
    if fbox_fallback and key not in ann:
        key = 'fbox'
    box = ann.get(key)
    if (not isinstance(box, (list, tuple)) or len(box) != 4 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool)
            for v in box)):
        raise ODGTFormatError(
            f'{where}: field "{key}" must be [x, y, w, h], got '
            f'{short_repr(box)}')
    try:
        x, y, w, h = (float(v) for v in box)
    except OverflowError:  # an integer beyond the float range
        raise ODGTFormatError(
            f'{where}: non-finite "{key}" {short_repr(list(box))} (a value '
            'is too large for a float)') from None
    xyxy = [x, y, x + w, y + h]
    if not all(math.isfinite(v) for v in xyxy):
        raise ODGTFormatError(f'{where}: non-finite "{key}" '
                              f'{short_repr(list(box))}')
    return xyxy


def is_train_ignore(ann: dict, body: str = 'full') -> bool:
    """Whether a ``.odgt`` box is an ignore region in training.

    ``docs/algorithms.md`` section 6, "Ignore regions": in training, a box
    whose ``extra.ignore`` is non-zero is an ignore region, whatever its tag
    (as cvpods, which does not look at the tag; on the official files every
    ``mask`` box has ignore 1). So a ``mask`` box with ``extra.ignore`` 0 is
    a person GT, and a ``person`` box with ``extra.ignore`` 1 is ignored.

    This is not the evaluation rule (:func:`eval_tag`), which also ignores
    every box whose tag is neither ``person`` nor ``background``.

    With ``body='head'`` a box whose ``head_attr.ignore`` is non-zero is
    also ignored (the person's head is not visible or not annotated).
    Section 6 is silent on this; the rule is kept as in CrowdDet's and
    mmdet's head evaluation.

    Args:
        ann (dict): One entry of a record's ``gtboxes``.
        body (str): ``'full'``, ``'visible'`` or ``'head'``.

    Returns:
        bool: True for an ignore region.
    """
    if odgt_ignore_flag(ann, 'extra'):
        return True
    return body == 'head' and odgt_ignore_flag(ann, 'head_attr')


def eval_tag(ann: dict, body: str = 'full') -> int:
    """The evaluation tag of one ``.odgt`` box: person, background or ignore.

    ``docs/algorithms.md`` section 6, "Ignore regions": in evaluation, a box
    whose tag is neither ``person`` nor ``background``, or whose
    ``extra.ignore`` is non-zero, is an ignore region; a ``background`` box
    is matched like an ignore region but counted as ground truth, as in
    CrowdDet's and mmdet's code.

    As CrowdDet's and mmdet's ``load_gt_boxes``: ``person`` -> 1
    (:data:`PERSON`), ``background`` -> 0 (:data:`BACKGROUND`), any other
    tag -> -1 (:data:`IGNORE`), and -1 whenever ``extra.ignore`` is
    non-zero. In matching only tag 1 boxes can be matched; every other box
    (0 and -1) is an ignore region for the IoA test. The number of ground
    truths (recall denominator, mMR) counts the boxes of tag > -1, persons
    and background boxes alike.

    This is not the training rule (:func:`is_train_ignore`), which does not
    look at the tag.

    With ``body='head'`` a box whose ``head_attr.ignore`` is non-zero is -1
    too (mmdet's head evaluation; section 6 is silent on head boxes).

    Args:
        ann (dict): One entry of a record's ``gtboxes``.
        body (str): ``'full'``, ``'visible'`` or ``'head'``.

    Returns:
        int: 1 (person), 0 (background) or -1 (ignore).
    """
    tag = EVAL_CLASS_TAGS.get(ann['tag'], IGNORE)
    if odgt_ignore_flag(ann, 'extra'):
        tag = IGNORE
    if body == 'head' and odgt_ignore_flag(ann, 'head_attr'):
        tag = IGNORE
    return tag


__all__ = [
    'BODY_KEYS', 'PERSON', 'BACKGROUND', 'IGNORE', 'EVAL_CLASS_TAGS',
    'ODGTFormatError', 'ODGTRecord', 'check_body', 'read_odgt',
    'odgt_ignore_flag', 'odgt_box_xyxy', 'is_train_ignore', 'eval_tag'
]
