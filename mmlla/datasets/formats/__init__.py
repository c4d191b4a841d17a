"""Readers of the annotation formats (no dataset class here).

The datasets (``mmlla.datasets``) and the evaluation (``mmlla.evaluation``)
both read annotation files through these modules, so that a format, its
error messages and its ignore rules are defined once.
"""
from .citypersons import (CityPersonsFormatError, is_citypersons_ignore,
                          read_citypersons_json)
from .common import (AnnotationFormatError, check_image_id,
                     check_relative_path, decode_utf8, split_json_lines)
from .odgt import (BODY_KEYS, ODGTFormatError, ODGTRecord, eval_tag,
                   is_train_ignore, odgt_box_xyxy, read_odgt)

__all__ = [
    'AnnotationFormatError', 'check_image_id', 'check_relative_path',
    'decode_utf8', 'split_json_lines', 'BODY_KEYS', 'ODGTFormatError',
    'ODGTRecord', 'read_odgt', 'odgt_box_xyxy', 'is_train_ignore',
    'eval_tag', 'CityPersonsFormatError', 'read_citypersons_json',
    'is_citypersons_ignore'
]
