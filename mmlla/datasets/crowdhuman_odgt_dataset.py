"""CrowdHuman ``.odgt`` annotations as an MMDetection dataset.

mmdet ships ``CrowdHumanDataset``; we do not reuse it because it decodes every
image once to learn its size and then writes a cache file into the data folder,
stops at the first malformed line without saying where, and can only train on
the full-body box. This dataset reads the sizes from the image headers (PIL
opens a JPEG lazily, reading only its header; the EXIF orientation the loader
applies is read there too), writes nothing, names the file and line of any
malformed record, and can train on the full, visible or head box.

The strict record reader (:func:`read_odgt`, :func:`odgt_box_xyxy`) is shared
with the evaluation (``mmlla.evaluation.functional.load_crowdhuman_gt``); the
training ignore rule lives in :func:`is_train_ignore` only.
"""
import codecs
import json
import math
import ntpath
import os.path as osp
import warnings
from typing import List, NamedTuple, Optional, Tuple

from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS
from mmengine.fileio import get, get_local_path
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
# A complete PNG ends with its IEND chunk: length 0, type, CRC (always the
# same 12 bytes); looked for in the same tail window.
PNG_IEND = b'\x00\x00\x00\x00IEND\xaeB`\x82'
# The EXIF orientation tag. Orientations 5 to 8 are transposed (rotated by 90
# or 270 degrees, possibly mirrored): the decoded image is H x W, not W x H.
EXIF_ORIENTATION = 0x0112
TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)
# The JSON whitespace (RFC 8259): the only characters a blank line may hold.
# str.strip() would also strip U+2028, U+0085, ... which JSON does not allow
# between values.
JSON_WHITESPACE = ' \t\r\n'
# Image IDs name a file under the image folder (<ID>.jpg): they must not
# name a path that could lead out of it.
PATH_SEPARATORS = ('/', '\\')


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


def check_image_id(img_id: str) -> Optional[str]:
    """Why ``img_id`` cannot name an image file, or None when it can.

    An image ID names the file ``<ID>.jpg`` inside the image folder, so it
    must be a plain file-name stem: not empty, without a path separator
    (``/`` or ``\\``, hence never an absolute path), a NUL character or a
    drive prefix (``C:``), and not ``.`` or ``..``.

    Args:
        img_id: The image ID, as a string.

    Returns:
        str | None: The reason it is refused, e.g. ``'contains a path
        separator'``; None for a valid ID.
    """
    if not img_id:
        return 'is empty'
    if '\0' in img_id:
        return 'contains a NUL character'
    if any(sep in img_id for sep in PATH_SEPARATORS):
        return 'contains a path separator (an ID is a file name, not a path)'
    if img_id in ('.', '..'):
        return 'is a relative path component'
    if osp.isabs(img_id) or ntpath.splitdrive(img_id)[0]:
        return 'is an absolute or drive-qualified path'
    return None


def decode_utf8(data: bytes, name: str) -> str:
    """Decode a text file's bytes as UTF-8 (a leading BOM is dropped).

    Args:
        data: The file's content.
        name: The file's name, for error messages.

    Returns:
        str: The text.

    Raises:
        ODGTFormatError: A byte sequence is not UTF-8; the message names the
            file, the 1-based line and column, and the byte.
    """
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError as e:
        lineno = data.count(b'\n', 0, e.start) + 1
        col = e.start - (data.rfind(b'\n', 0, e.start) + 1) + 1
        raise ODGTFormatError(
            f'{name}:{lineno}: not UTF-8 text (byte 0x{data[e.start]:02x} '
            f'at column {col}: {e.reason})') from None


def split_json_lines(text: str):
    """``(lineno, line)`` of every non-blank line of a JSON-lines text.

    Lines end at ``\\n`` only (``\\r\\n`` too: the ``\\r`` is JSON
    whitespace); unlike ``str.splitlines`` this does not break a record at a
    U+2028, U+2029 or U+0085 inside one of its strings, which JSON allows
    unescaped.
    A line is blank when it holds JSON whitespace only.
    """
    for lineno, line in enumerate(text.split('\n'), start=1):
        if line.strip(JSON_WHITESPACE):
            yield lineno, line


def _short(value, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def read_odgt(ann_file: str,
              backend_args: Optional[dict] = None) -> List[ODGTRecord]:
    """Read and validate every record of a CrowdHuman ``.odgt`` file.

    One JSON object per non-blank line, ``{"ID": ..., "gtboxes": [{"tag":
    ..., ...}, ...]}``, in UTF-8. Lines end at ``\\n`` only (a U+2028 or
    U+0085 inside a JSON string is part of its record). The boxes'
    coordinates are validated when read, by :func:`odgt_box_xyxy`.

    Args:
        ann_file: Path (any mmengine file backend) of the ``.odgt`` file.
        backend_args: mmengine file backend arguments.

    Returns:
        list[ODGTRecord]: One per record, in file order.

    Raises:
        ODGTFormatError: The file is not UTF-8 or holds no record, a line is
            not a JSON object, misses ``ID`` or a list ``gtboxes``, the
            ``ID`` is not a string or integer or is a path
            (:func:`check_image_id`), a box is not an object with a ``tag``,
            its ``extra`` / ``head_attr`` is not an object, or an ID
            repeats; the message names the file and the 1-based line number.
    """
    text = decode_utf8(get(ann_file, backend_args=backend_args), ann_file)
    records, seen = [], {}
    for lineno, line in split_json_lines(text):
        loc = f'{ann_file}:{lineno}'
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as e:
            # ValueError: JSONDecodeError, or an integer of more digits
            # than Python converts.
            raise ODGTFormatError(f'{loc}: not valid JSON ({e})') from None
        if not isinstance(record, dict):
            raise ODGTFormatError(f'{loc}: a record must be a JSON object')
        if 'ID' not in record:
            raise ODGTFormatError(f'{loc}: missing field "ID"')
        raw_id = record['ID']
        if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
            raise ODGTFormatError(f'{loc}: "ID" must be a string or an '
                                  f'integer, got {_short(raw_id)}')
        img_id = str(raw_id)
        reason = check_image_id(img_id)
        if reason is not None:
            raise ODGTFormatError(f'{loc}: image ID {_short(img_id)} '
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
                        f'object, got {_short(ann[field])}')
        records.append(ODGTRecord(lineno, img_id, gtboxes, where))
    if not records:
        raise ODGTFormatError(
            f'{ann_file}:1: the annotation file holds no record (it is '
            'empty or blank)')
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
            f'{_short(box)}')
    try:
        x, y, w, h = (float(v) for v in box)
    except OverflowError:  # an integer beyond the float range
        raise ODGTFormatError(
            f'{where}: non-finite "{key}" {_short(list(box))} (a value is '
            'too large for a float)') from None
    xyxy = [x, y, x + w, y + h]
    if not all(math.isfinite(v) for v in xyxy):
        raise ODGTFormatError(f'{where}: non-finite "{key}" '
                              f'{_short(list(box))}')
    return xyxy


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


def exif_orientation_mode(color_type='color',
                          imdecode_backend: str = 'cv2') -> Optional[str]:
    """How mmcv's ``LoadImageFromFile`` applies the EXIF orientation.

    ``mmcv.imfrombytes`` rotates an image by its EXIF orientation tag with
    the ``cv2`` backend (OpenCV's ``imdecode`` does, unless the flag is
    ``unchanged`` or ``*_ignore_orientation``) and with the ``pillow``
    backend for ``color`` / ``grayscale`` (``ImageOps.exif_transpose``,
    which also reads an XMP orientation); ``turbojpeg`` and ``tifffile``
    do not rotate.

    Args:
        color_type: ``LoadImageFromFile.color_type`` (a flag name of
            ``mmcv.imread`` or an OpenCV ``IMREAD_*`` integer).
        imdecode_backend: ``LoadImageFromFile.imdecode_backend``.

    Returns:
        str | None: ``'cv2'``, ``'pillow'`` or None (not applied).
    """
    if imdecode_backend == 'pillow':
        return 'pillow' if color_type in ('color', 'grayscale') else None
    if imdecode_backend != 'cv2':
        return None
    if isinstance(color_type, str):
        return 'cv2' if color_type in ('color', 'grayscale') else None
    import cv2
    if color_type == cv2.IMREAD_UNCHANGED or (color_type
                                              & cv2.IMREAD_IGNORE_ORIENTATION):
        return None
    return 'cv2'


def read_image_header(path: str,
                      orientation: Optional[str] = 'cv2'
                      ) -> Tuple[int, int, str]:
    """The size an image decodes to, from its header only.

    PIL reports the stored size; a decoder that applies the EXIF
    orientation returns a transposed image for orientations 5 to 8, so its
    width and height are swapped here too.

    Args:
        path: A local image file.
        orientation: Which decoder's EXIF rule to follow
            (:func:`exif_orientation_mode`): ``'cv2'`` (the orientation tag
            of the EXIF block in the header, as OpenCV), ``'pillow'`` (PIL's
            ``getexif``, XMP included, as ``ImageOps.exif_transpose``) or
            None (the stored size).

    Returns:
        tuple[int, int, str]: ``(width, height, format)`` of the decoded
        image, format as PIL names it (``'JPEG'``, ``'PNG'``, ...).

    Raises:
        OSError: PIL cannot identify the file.
    """
    with Image.open(path) as img:  # reads the header only
        width, height = img.size
        fmt = img.format or ''
        value = None
        if orientation == 'pillow':
            value = img.getexif().get(EXIF_ORIENTATION)
        elif orientation is not None and img.info.get('exif'):
            # The EXIF block in the header (JPEG APP1, PNG eXIf before the
            # image data, ...): what OpenCV reads.
            exif = Image.Exif()
            try:
                exif.load(img.info['exif'])
                value = exif.get(EXIF_ORIENTATION)
            except Exception:  # a corrupt EXIF block: OpenCV ignores it
                value = None
    if value in TRANSPOSING_ORIENTATIONS:
        width, height = height, width
    return width, height, fmt


def image_is_complete(path: str, fmt: str) -> bool:
    """Whether a JPEG or PNG file ends as a complete one does.

    Decoding every image to validate it would take minutes on the full
    set; a truncated download or extraction lacks the end marker (JPEG EOI,
    which cannot occur inside entropy-coded data; PNG IEND chunk), which one
    seek finds. Other formats are not checked.
    """
    end = {'JPEG': JPEG_EOI, 'MPO': JPEG_EOI, 'PNG': PNG_IEND}.get(fmt)
    if end is None:
        return True
    with open(path, 'rb') as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - JPEG_TAIL_BYTES))
        return end in f.read()


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

    ``height`` / ``width`` are those of the decoded image: read from the
    header, with width and height swapped for EXIF orientations 5 to 8 when
    the pipeline's ``LoadImageFromFile`` applies the orientation (mmcv's
    default). A box that is empty, or has nothing left once clipped to the
    image, is dropped (one warning counts them); the kept boxes are stored
    as annotated. Image IDs that are paths (``../x``, ``/abs``, ``a/b``,
    ``a\\b``, NUL, empty) are refused (:func:`check_image_id`): no file
    outside the image folder is ever opened.

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

        Image sizes are those the pipeline's ``LoadImageFromFile`` decodes
        (EXIF orientation applied as it applies it), read from the headers.
        Boxes that are empty, or have nothing left once clipped to the
        image, are dropped, with one warning counting them.

        Returns:
            list[dict]: One data info per image, in file order.

        Raises:
            ODGTFormatError: A line is not valid JSON or misses a field, an
                image ID is a path, or an image is unreadable or truncated;
                the message names the file and the 1-based line number.
            FileNotFoundError: An image is missing (file and line named).
        """
        records = read_odgt(self.ann_file, self.backend_args)
        self._orientation = self._loader_orientation()
        bar = ProgressBar(len(records)) if len(
            records) >= PROGRESS_MIN_LINES else None
        data_list = []
        self._num_degenerate = 0
        self._num_outside = 0
        for record in records:
            if bar is not None:
                bar.update()
            data_list.append(self._parse_record(record))
        if bar is not None:
            print()
        if self._num_degenerate:
            outside = (f', {self._num_outside} of them entirely outside the '
                       'image' if self._num_outside else '')
            warnings.warn(
                f'{self.ann_file}: dropped {self._num_degenerate} degenerate '
                f'{BODY_KEYS[self.body]} box(es) with width or height <= '
                f'{MIN_BOX_SIZE:g} px once clipped to the image{outside}')
        return data_list

    def _loader_orientation(self) -> Optional[str]:
        """The EXIF rule of the pipeline's image loader (default: mmcv's)."""
        from mmcv.transforms import LoadImageFromFile
        for transform in getattr(self.pipeline, 'transforms', []):
            if isinstance(transform, LoadImageFromFile):
                return exif_orientation_mode(transform.color_type,
                                             transform.imdecode_backend)
        return exif_orientation_mode()

    def _error(self, lineno: int, msg: str) -> ODGTFormatError:
        return ODGTFormatError(f'{self.ann_file}:{lineno}: {msg}')

    def _parse_record(self, record: ODGTRecord) -> dict:
        # read_odgt refused IDs that are paths: the image lies in the folder.
        img_path = osp.join(self.data_prefix['img'], f'{record.img_id}.jpg')
        width, height = self._image_size(img_path, record.lineno)
        instances = []
        for k, ann in enumerate(record.gtboxes):
            inst = self._parse_box(ann, f'{record.where}, box {k}', width,
                                   height)
            if inst is not None:
                instances.append(inst)
        return dict(
            img_id=record.img_id,
            img_path=img_path,
            height=height,
            width=width,
            instances=instances)

    def _image_size(self, img_path: str, lineno: int) -> Tuple[int, int]:
        orientation = getattr(self, '_orientation', exif_orientation_mode())
        try:
            with get_local_path(img_path,
                                backend_args=self.backend_args) as path:
                width, height, fmt = read_image_header(path, orientation)
                if not image_is_complete(path, fmt):
                    marker = 'IEND chunk' if fmt == 'PNG' else 'end marker'
                    raise self._error(
                        lineno, f'image {img_path} is truncated (no {fmt} '
                        f'{marker}): re-download or re-extract it')
        except FileNotFoundError:
            raise FileNotFoundError(
                f'{self.ann_file}:{lineno}: image {img_path} not found'
            ) from None
        except (OSError, SyntaxError, ValueError,
                Image.DecompressionBombError) as e:
            if isinstance(e, ODGTFormatError):
                raise
            raise self._error(
                lineno, f'image {img_path} cannot be read ({e})') from None
        return width, height

    def _parse_box(self, ann: dict, where: str, width: int,
                   height: int) -> Optional[dict]:
        ignore = is_train_ignore(ann, self.body)
        bbox = odgt_box_xyxy(
            ann, BODY_KEYS[self.body], where, fbox_fallback=ignore)
        # The box is kept as annotated (the pipeline clips it); it is
        # dropped when it is empty or nothing of it is left in the image.
        x1, y1, x2, y2 = bbox
        inside = min(min(x2, width) - max(x1, 0), min(y2, height) - max(y1, 0))
        if inside <= MIN_BOX_SIZE:
            self._num_degenerate += 1
            if min(x2 - x1, y2 - y1) > MIN_BOX_SIZE:
                self._num_outside += 1
            return None
        inst = dict(
            bbox=bbox,
            bbox_label=-1 if ignore else 0,
            ignore_flag=int(ignore))
        for other in BODY_KEYS.values():
            if other in ann:
                inst[other] = odgt_box_xyxy(ann, other, where)
        return inst
