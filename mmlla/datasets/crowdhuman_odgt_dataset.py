"""CrowdHuman ``.odgt`` annotations as an MMDetection dataset.

mmdet ships ``CrowdHumanDataset``; we do not reuse it because it decodes every
image once to learn its size and then writes a cache file into the data folder,
stops at the first malformed line without saying where, and can only train on
the full-body box. This dataset reads the sizes from the image headers (PIL
opens a JPEG lazily, reading only its header), writes nothing, names the file
and line of any malformed record, and can train on the full, visible or head
box.

The strict record reader (:func:`read_odgt`, :func:`odgt_box_xyxy`) is shared
with the evaluation (``mmlla.evaluation.functional.load_crowdhuman_gt``); the
training ignore rule lives in :func:`is_train_ignore` only.
"""
import json
import math
import os.path as osp
import warnings
from typing import List, NamedTuple, Optional

from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS
from mmengine.fileio import get_local_path, get_text
from mmengine.utils import ProgressBar
from PIL import Image

BODY_KEYS = {'full': 'fbox', 'visible': 'vbox', 'head': 'hbox'}
# Boxes no wider or taller than this (pixels) are empty: dropped at load, as
# the reference drops the boxes left empty (docs: algorithms.md section 6);
# any box with an area is kept, however thin.
MIN_BOX_SIZE = 0.0
# Show the progress bar only for files at least this long (lines).
PROGRESS_MIN_LINES = 1000
# A complete JPEG ends with the EOI marker; some writers pad a few bytes after
# it, so the marker is looked for in the file's last bytes.
JPEG_EOI = b'\xff\xd9'
JPEG_TAIL_BYTES = 1024


class ODGTFormatError(ValueError):
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


def read_odgt(ann_file: str,
              backend_args: Optional[dict] = None) -> List[ODGTRecord]:
    """Read and validate every record of a CrowdHuman ``.odgt`` file.

    One JSON object per non-blank line, ``{"ID": ..., "gtboxes": [{"tag":
    ..., ...}, ...]}``. The boxes' coordinates are validated when read, by
    :func:`odgt_box_xyxy`.

    Args:
        ann_file: Path (any mmengine file backend) of the ``.odgt`` file.
        backend_args: mmengine file backend arguments.

    Returns:
        list[ODGTRecord]: One per record, in file order.

    Raises:
        ODGTFormatError: A line is not a JSON object, misses ``ID`` or a
            list ``gtboxes``, a box is not an object with a ``tag``, its
            ``extra`` / ``head_attr`` is not an object, or an ID repeats;
            the message names the file and the 1-based line number.
    """
    text = get_text(ann_file, backend_args=backend_args)
    records, seen = [], {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        loc = f'{ann_file}:{lineno}'
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ODGTFormatError(f'{loc}: not valid JSON ({e})') from None
        if not isinstance(record, dict):
            raise ODGTFormatError(f'{loc}: a record must be a JSON object')
        if 'ID' not in record:
            raise ODGTFormatError(f'{loc}: missing field "ID"')
        img_id = str(record['ID'])
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
                if not isinstance(ann.get(field) or {}, dict):
                    raise ODGTFormatError(
                        f'{where}, box {k}: field "{field}" must be an '
                        f'object, got {ann[field]!r}')
        records.append(ODGTRecord(lineno, img_id, gtboxes, where))
    return records


def odgt_ignore_flag(ann: dict, field: str) -> bool:
    """Whether ``ann[field]['ignore']`` is non-zero (absent counts as 0).

    ``field`` is ``'extra'`` or ``'head_attr'``; :func:`read_odgt` checked
    that it is an object when present.
    """
    return (ann.get(field) or {}).get('ignore', 0) != 0


def odgt_box_xyxy(ann: dict,
                  key: str,
                  where: str,
                  fbox_fallback: bool = False) -> List[float]:
    """Read the ``[x, y, w, h]`` box ``ann[key]`` as ``[x1, y1, x2, y2]``.

    Args:
        ann: One entry of a record's ``gtboxes``.
        key: ``'fbox'``, ``'vbox'`` or ``'hbox'``.
        where: Location for error messages (``file:line: image ID, box k``).
        fbox_fallback: Read ``fbox`` when ``key`` is absent (ignore regions,
            e.g. ``mask`` boxes, often carry only their ``fbox``).

    Returns:
        list[float]: ``[x, y, x + w, y + h]`` (no "- 1").

    Raises:
        ODGTFormatError: The box is missing, not 4 numbers, or not finite.
    """
    if fbox_fallback and key not in ann:
        key = 'fbox'
    box = ann.get(key)
    if (not isinstance(box, (list, tuple)) or len(box) != 4 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool)
            for v in box)):
        raise ODGTFormatError(
            f'{where}: field "{key}" must be [x, y, w, h], got {box!r}')
    if not all(math.isfinite(v) for v in box):
        raise ODGTFormatError(f'{where}: non-finite "{key}" {list(box)}')
    x, y, w, h = (float(v) for v in box)
    return [x, y, x + w, y + h]


def is_train_ignore(ann: dict, body: str = 'full') -> bool:
    """Whether a ``.odgt`` box is an ignore region in training.

    ``docs/algorithms.md`` §6: "Ignore regions: in training, a box whose
    `extra.ignore` is non-zero (cvpods does not look at the tag; on the
    official files every `mask` box has ignore 1)". The tag is not looked
    at: a ``mask`` box with ``extra.ignore`` 0 is a person GT, a ``person``
    box with ``extra.ignore`` 1 is ignored.

    With ``body='head'`` a box whose ``head_attr.ignore`` is non-zero is
    also ignored (the person's head is not visible or not annotated). §6 is
    silent on this; the rule is kept as in CrowdDet's and mmdet's head
    evaluation.

    Args:
        ann: One entry of a record's ``gtboxes``.
        body: ``'full'``, ``'visible'`` or ``'head'``.

    Returns:
        bool: True for an ignore region.
    """
    if odgt_ignore_flag(ann, 'extra'):
        return True
    return body == 'head' and odgt_ignore_flag(ann, 'head_attr')


@DATASETS.register_module()
class CrowdHumanODGTDataset(BaseDetDataset):
    """CrowdHuman in its official layout.

    ``data_root/annotation_{train,val}.odgt`` (one JSON record per line) and
    ``data_root/Images/<ID>.jpg``. A box is an *ignored instance*
    (``ignore_flag=1``, label -1) when :func:`is_train_ignore` says so: its
    ``extra.ignore`` is non-zero, whatever its tag (``docs/algorithms.md``
    §6, as cvpods); every other box, ``mask``-tagged ones included, is a
    person. mmdet's ``PackDetInputs`` moves ignored instances to
    ``data_sample.ignored_instances``, so they reach dense heads as
    ``batch_gt_instances_ignore``. Images with only ignore boxes or no box
    at all stay in the dataset. Every instance also keeps its ``fbox``,
    ``vbox`` and ``hbox`` (xyxy) for pipelines that need them.

    Args:
        body: Which box is trained on: ``'full'`` (``fbox``, default),
            ``'visible'`` (``vbox``) or ``'head'`` (``hbox``). With ``'head'``
            a box whose ``head_attr.ignore`` is non-zero is also ignored (§6
            is silent on head boxes; CrowdDet's and mmdet's head rule is
            kept).
        **kwargs: Everything :class:`mmdet.datasets.BaseDetDataset` takes
            (``data_root``, ``ann_file``, ``data_prefix=dict(img='Images/')``,
            ``pipeline``, ``filter_cfg``, ``test_mode``, ...).
    """

    METAINFO = {'classes': ('person', ), 'palette': [(220, 20, 60)]}

    def __init__(self, *args, body: str = 'full', **kwargs) -> None:
        if body not in BODY_KEYS:
            raise ValueError(f'body must be one of {sorted(BODY_KEYS)}, '
                             f'got {body!r}')
        self.body = body
        kwargs.setdefault('data_prefix', dict(img='Images/'))
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Parse every line of ``self.ann_file`` (:func:`read_odgt`).

        Returns:
            list[dict]: One data info per image, in file order.

        Raises:
            ODGTFormatError: A line is not valid JSON or misses a field; the
                message names the file and the 1-based line number.
            FileNotFoundError: An image is missing (file and line named).
        """
        records = read_odgt(self.ann_file, self.backend_args)
        bar = ProgressBar(len(records)) if len(
            records) >= PROGRESS_MIN_LINES else None
        data_list = []
        self._num_degenerate = 0
        for record in records:
            if bar is not None:
                bar.update()
            data_list.append(self._parse_record(record))
        if bar is not None:
            print()
        if self._num_degenerate:
            warnings.warn(
                f'{self.ann_file}: dropped {self._num_degenerate} degenerate '
                f'{BODY_KEYS[self.body]} box(es) with width or height <= '
                f'{MIN_BOX_SIZE:g} px')
        return data_list

    def _error(self, lineno: int, msg: str) -> ODGTFormatError:
        return ODGTFormatError(f'{self.ann_file}:{lineno}: {msg}')

    def _parse_record(self, record: ODGTRecord) -> dict:
        img_path = osp.join(self.data_prefix['img'], f'{record.img_id}.jpg')
        width, height = self._image_size(img_path, record.lineno)
        instances = []
        for k, ann in enumerate(record.gtboxes):
            inst = self._parse_box(ann, f'{record.where}, box {k}')
            if inst is not None:
                instances.append(inst)
        return dict(
            img_id=record.img_id,
            img_path=img_path,
            height=height,
            width=width,
            instances=instances)

    def _image_size(self, img_path: str, lineno: int):
        try:
            with get_local_path(img_path,
                                backend_args=self.backend_args) as path:
                with Image.open(path) as img:  # reads the header only
                    width, height = img.size
                    is_jpeg = img.format == 'JPEG'
                if is_jpeg and not self._jpeg_is_complete(path):
                    raise self._error(
                        lineno, f'image {img_path} is truncated (no JPEG end '
                        'marker): re-download or re-extract it')
        except FileNotFoundError:
            raise FileNotFoundError(
                f'{self.ann_file}:{lineno}: image {img_path} not found'
            ) from None
        except (OSError, SyntaxError) as e:
            raise self._error(
                lineno, f'image {img_path} cannot be read ({e})') from None
        return width, height

    @staticmethod
    def _jpeg_is_complete(path: str) -> bool:
        # Decoding every image to validate it would take minutes on the full
        # set; a truncated download or extraction lacks the end marker, which
        # one seek finds (0xFFD9 cannot occur inside entropy-coded data).
        with open(path, 'rb') as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - JPEG_TAIL_BYTES))
            return JPEG_EOI in f.read()

    def _parse_box(self, ann: dict, where: str) -> Optional[dict]:
        ignore = is_train_ignore(ann, self.body)
        bbox = odgt_box_xyxy(
            ann, BODY_KEYS[self.body], where, fbox_fallback=ignore)
        if min(bbox[2] - bbox[0], bbox[3] - bbox[1]) <= MIN_BOX_SIZE:
            self._num_degenerate += 1
            return None
        inst = dict(
            bbox=bbox,
            bbox_label=-1 if ignore else 0,
            ignore_flag=int(ignore))
        for other in BODY_KEYS.values():
            if other in ann:
                inst[other] = odgt_box_xyxy(ann, other, where)
        return inst
