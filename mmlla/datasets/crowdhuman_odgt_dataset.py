"""CrowdHuman ``.odgt`` annotations as an MMDetection dataset.

mmdet ships ``CrowdHumanDataset``; we do not reuse it because it decodes every
image once to learn its size and then writes a cache file into the data folder,
stops at the first malformed line without saying where, and can only train on
the full-body box. This dataset reads the sizes from the image headers (PIL
opens a JPEG lazily, reading only its header; the EXIF orientation the loader
applies is read there too), writes nothing, names the file and line of any
malformed record, and can train on the full, visible or head box.

The ``.odgt`` format itself (the strict reader, the body keys and the
training and evaluation ignore rules) is :mod:`mmlla.datasets.formats.odgt`,
which the evaluation reads files with too; this module adds the images.
"""
import os.path as osp
import warnings
from typing import List, Optional, Tuple

from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS
from mmengine.fileio import get_local_path
from mmengine.utils import ProgressBar
from PIL import Image

from .formats.common import MIN_BOX_SIZE
from .formats.odgt import (BODY_KEYS, ODGTFormatError, ODGTRecord,
                           check_body, is_train_ignore, odgt_box_xyxy,
                           read_odgt)

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
    (``ignore_flag=1``, label -1) when
    :func:`~mmlla.datasets.formats.odgt.is_train_ignore` says so: its
    ``extra.ignore`` is non-zero, whatever its tag (``docs/algorithms.md``
    section 6, as cvpods); every other box, ``mask``-tagged ones included, is a
    person. mmdet's ``PackDetInputs`` moves ignored instances to
    ``data_sample.ignored_instances``, so they reach dense heads as
    ``batch_gt_instances_ignore``. Images with only ignore boxes or no box
    at all stay in the dataset.

    ``height`` / ``width`` are those of the decoded image: read from the
    header, with width and height swapped for EXIF orientations 5 to 8 when
    the pipeline's ``LoadImageFromFile`` applies the orientation (mmcv's
    default). A box that is empty, or has nothing left once clipped to the
    image, is dropped (one warning counts them); the kept boxes are stored
    as annotated. Image IDs that are paths (``../x``, ``/abs``, ``a/b``,
    ``a\\b``, NUL, empty) are refused
    (:func:`~mmlla.datasets.formats.common.check_image_id`): no file outside
    the image folder is ever opened.

    Args:
        body: Which box is trained on: ``'full'`` (``fbox``, default),
            ``'visible'`` (``vbox``) or ``'head'`` (``hbox``). With ``'head'``
            a box whose ``head_attr.ignore`` is non-zero is also ignored
            (section 6 is silent on head boxes; CrowdDet's and mmdet's
            head rule is kept).
        **kwargs: Everything :class:`mmdet.datasets.BaseDetDataset` takes
            (``data_root``, ``ann_file``, ``data_prefix=dict(img='Images/')``,
            ``pipeline``, ``filter_cfg``, ``test_mode``, ...).
    """

    METAINFO = {'classes': ('person', ), 'palette': [(220, 20, 60)]}

    def __init__(self, *args, body: str = 'full', **kwargs) -> None:
        self.body = check_body(body)
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
        return dict(
            bbox=bbox, bbox_label=-1 if ignore else 0, ignore_flag=int(ignore))
