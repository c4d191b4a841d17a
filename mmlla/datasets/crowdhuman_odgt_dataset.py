"""CrowdHuman ``.odgt`` annotations as an MMDetection dataset.

mmdet ships ``CrowdHumanDataset``; we do not reuse it because it decodes every
image once to learn its size and then writes a cache file into the data folder,
stops at the first malformed line without saying where, and can only train on
the full-body box. This dataset reads the sizes from the image headers (PIL
opens a JPEG lazily, reading only its header), writes nothing, names the file
and line of any malformed record, and can train on the full, visible or head
box.
"""
import json
import math
import os.path as osp
import warnings
from typing import List, Optional

from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS
from mmengine.fileio import get_local_path, get_text
from mmengine.utils import ProgressBar
from PIL import Image

BODY_KEYS = {'full': 'fbox', 'visible': 'vbox', 'head': 'hbox'}
PERSON_TAG = 'person'
# Boxes no wider or taller than this (pixels) cannot be learned or matched.
MIN_BOX_SIZE = 1.0
# Show the progress bar only for files at least this long (lines).
PROGRESS_MIN_LINES = 1000
# A complete JPEG ends with the EOI marker; some writers pad a few bytes after
# it, so the marker is looked for in the file's last bytes.
JPEG_EOI = b'\xff\xd9'
JPEG_TAIL_BYTES = 1024


class ODGTFormatError(ValueError):
    """A malformed record in a CrowdHuman ``.odgt`` annotation file."""


@DATASETS.register_module()
class CrowdHumanODGTDataset(BaseDetDataset):
    """CrowdHuman in its official layout.

    ``data_root/annotation_{train,val}.odgt`` (one JSON record per line) and
    ``data_root/Images/<ID>.jpg``. A box whose tag is not ``person`` or whose
    ``extra.ignore`` is non-zero becomes an *ignored instance*
    (``ignore_flag=1``, label -1): mmdet's ``PackDetInputs`` moves it to
    ``data_sample.ignored_instances``, so it reaches dense heads as
    ``batch_gt_instances_ignore``. Every instance also keeps its ``fbox``,
    ``vbox`` and ``hbox`` (xyxy) for pipelines that need them.

    Args:
        body: Which box is trained on: ``'full'`` (``fbox``, default),
            ``'visible'`` (``vbox``) or ``'head'`` (``hbox``). With ``'head'``
            a person whose ``head_attr.ignore`` is non-zero is also ignored.
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
        """Parse every line of ``self.ann_file``.

        Returns:
            list[dict]: One data info per image, in file order.

        Raises:
            ODGTFormatError: A line is not valid JSON or misses a field; the
                message names the file and the 1-based line number.
            FileNotFoundError: An image is missing (file and line named).
        """
        lines = get_text(self.ann_file, backend_args=self.backend_args)
        lines = lines.splitlines()
        bar = ProgressBar(len(lines)) if len(
            lines) >= PROGRESS_MIN_LINES else None
        data_list = []
        self._num_degenerate = 0
        seen = {}
        for lineno, line in enumerate(lines, start=1):
            if bar is not None:
                bar.update()
            if not line.strip():
                continue
            info = self._parse_line(line, lineno)
            if info['img_id'] in seen:
                raise ODGTFormatError(
                    f'{self.ann_file}:{lineno}: image ID {info["img_id"]!r} '
                    f'already appears on line {seen[info["img_id"]]}')
            seen[info['img_id']] = lineno
            data_list.append(info)
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

    def _parse_line(self, line: str, lineno: int) -> dict:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise self._error(lineno, f'not valid JSON ({e})') from None
        if not isinstance(record, dict):
            raise self._error(lineno, 'a record must be a JSON object')
        if 'ID' not in record:
            raise self._error(lineno, 'missing field "ID"')
        img_id = str(record['ID'])
        gtboxes = record.get('gtboxes')
        if not isinstance(gtboxes, list):
            raise self._error(lineno, f'image {img_id}: missing or non-list '
                              'field "gtboxes"')
        img_path = osp.join(self.data_prefix['img'], f'{img_id}.jpg')
        width, height = self._image_size(img_path, lineno)
        instances = []
        for k, ann in enumerate(gtboxes):
            inst = self._parse_box(ann, lineno, f'image {img_id}, box {k}')
            if inst is not None:
                instances.append(inst)
        return dict(
            img_id=img_id,
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

    def _read_box(self, ann: dict, key: str, lineno: int, where: str):
        box = ann.get(key)
        if (not isinstance(box, (list, tuple)) or len(box) != 4
                or not all(isinstance(v, (int, float)) for v in box)):
            raise self._error(
                lineno, f'{where}: field "{key}" must be [x, y, w, h], '
                f'got {box!r}')
        if not all(math.isfinite(v) for v in box):
            raise self._error(lineno,
                              f'{where}: non-finite "{key}" {list(box)}')
        x, y, w, h = (float(v) for v in box)
        return [x, y, x + w, y + h]

    def _parse_box(self, ann, lineno: int, where: str) -> Optional[dict]:
        if not isinstance(ann, dict) or 'tag' not in ann:
            raise self._error(lineno, f'{where}: missing field "tag"')
        extra = ann.get('extra') or {}
        ignore = ann['tag'] != PERSON_TAG or extra.get('ignore', 0) != 0
        key = BODY_KEYS[self.body]
        if self.body == 'head' and not ignore:
            ignore = (ann.get('head_attr') or {}).get('ignore', 0) != 0
        # Ignore regions (``mask``) may come with only their ``fbox``.
        if ignore and key not in ann:
            key = 'fbox'
        bbox = self._read_box(ann, key, lineno, where)
        if bbox[2] - bbox[0] <= MIN_BOX_SIZE or bbox[3] - bbox[1] <= MIN_BOX_SIZE:
            self._num_degenerate += 1
            return None
        inst = dict(
            bbox=bbox,
            bbox_label=-1 if ignore else 0,
            ignore_flag=int(ignore))
        for other in BODY_KEYS.values():
            if other in ann:
                inst[other] = self._read_box(ann, other, lineno, where)
        return inst
