"""CityPersons in the community's COCO-style JSON as an MMDetection dataset.

mmdet's ``CocoDataset`` could load such a file but knows neither the ignore
flag nor the ignored classes (it would train on riders and groups as
pedestrians), and like every COCO reader it stops at the first malformed
record without naming it. The format (the strict reader that names the file
and the record of any error, and the ignore rule
:func:`~mmlla.datasets.formats.citypersons.is_citypersons_ignore`, both
shared with the evaluation) is :mod:`mmlla.datasets.formats.citypersons`;
this module adds the images.
"""
import os.path as osp
import warnings
from typing import List, Optional

from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS
from mmengine.fileio import exists

from .formats.citypersons import (BOX_KEYS, CityPersonsFormatError,
                                  CityPersonsImage, citypersons_box_xyxy,
                                  is_citypersons_ignore,
                                  read_citypersons_json)
from .formats.common import MIN_BOX_SIZE


@DATASETS.register_module()
class CityPersonsDataset(BaseDetDataset):
    """CityPersons from its community COCO-style JSON.

    ``data_root/<ann_file>`` (e.g. ``annotations/train_gt.json``) and the
    images under ``data_root/<data_prefix['img']>`` (e.g.
    ``leftImg8bit/train/``), found by each image's ``file_name`` or
    ``im_name`` (see :mod:`mmlla.datasets.formats.citypersons`).
    Pedestrians (category 1, not ignored) are instances of class 0; every
    box :func:`is_citypersons_ignore` names (ignored classes, ``ignore`` or
    ``iscrowd`` set) is an *ignored instance* (``ignore_flag=1``, label -1),
    which mmdet's ``PackDetInputs`` moves to ``ignored_instances`` so that
    dense heads receive it as ``batch_gt_instances_ignore``.

    Image sizes are those of the JSON records (the images are not opened;
    a missing image is an error naming its record). A box that is empty, or
    has nothing left once clipped to the image, is dropped (one warning
    counts them). An instance holds what training uses: ``bbox``,
    ``bbox_label`` and ``ignore_flag`` (the evaluation reads ``height``,
    ``vis_ratio`` and the visible box from the annotation file itself).

    Args:
        body: Which box is trained on: ``'full'`` (``bbox``, default) or
            ``'visible'`` (``vis_bbox``; every annotation must have one).
        **kwargs: Everything :class:`mmdet.datasets.BaseDetDataset` takes
            (``data_root``, ``ann_file``, ``data_prefix=dict(img=...)``,
            ``pipeline``, ``filter_cfg``, ``test_mode``, ...).
            ``filter_cfg=dict(filter_empty_gt=True)`` drops, in training,
            the images without any pedestrian (ignore regions do not count).
    """

    # 'person', as CrowdHumanODGTDataset: a model trained on either data set
    # has the same single class.
    METAINFO = {'classes': ('person', ), 'palette': [(220, 20, 60)]}

    def __init__(self, *args, body: str = 'full', **kwargs) -> None:
        if body not in BOX_KEYS:
            raise ValueError(f'body must be one of {sorted(BOX_KEYS)}, '
                             f'got {body!r}')
        self.body = body
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Read ``self.ann_file`` (:func:`read_citypersons_json`).

        Returns:
            list[dict]: One data info per image, in file order.

        Raises:
            CityPersonsFormatError: A malformed file or record (file and
                record named).
            FileNotFoundError: An image is missing (file and record named).
        """
        images = read_citypersons_json(self.ann_file, self.backend_args)
        self._num_degenerate = 0
        data_list = [self._parse_image(img) for img in images]
        if self._num_degenerate:
            warnings.warn(
                f'{self.ann_file}: dropped {self._num_degenerate} '
                f'"{BOX_KEYS[self.body]}" box(es) with width or height <= '
                f'{MIN_BOX_SIZE:g} px once clipped to the image')
        return data_list

    def _parse_image(self, img: CityPersonsImage) -> dict:
        # read_citypersons_json refused paths leading out of the folder.
        img_path = osp.join(self.data_prefix.get('img', ''), img.file)
        if not exists(img_path, backend_args=self.backend_args):
            raise FileNotFoundError(f'{img.where}: image {img_path} not '
                                    'found')
        instances = []
        for where, ann in img.anns:
            inst = self._parse_annotation(ann, where, img.width, img.height)
            if inst is not None:
                instances.append(inst)
        return dict(
            img_id=img.img_id,
            img_path=img_path,
            width=img.width,
            height=img.height,
            instances=instances)

    def _parse_annotation(self, ann: dict, where: str, width: int,
                          height: int) -> Optional[dict]:
        key = BOX_KEYS[self.body]
        if key not in ann:
            raise CityPersonsFormatError(
                f'{where}: no "{key}" (body={self.body!r} trains on it)')
        bbox = citypersons_box_xyxy(ann, key, where)
        x1, y1, x2, y2 = bbox
        inside = min(min(x2, width) - max(x1, 0), min(y2, height) - max(y1, 0))
        if inside <= MIN_BOX_SIZE:
            self._num_degenerate += 1
            return None
        ignore = is_citypersons_ignore(ann)
        inst = dict(
            bbox=bbox,
            bbox_label=-1 if ignore else 0,
            ignore_flag=int(ignore))
        if 'vis_bbox' in ann:  # validated even when not trained on
            citypersons_box_xyxy(ann, 'vis_bbox', where)
        return inst

    def filter_data(self) -> List[dict]:
        """Drop training images without a pedestrian with
        ``filter_cfg=dict(filter_empty_gt=True)``; keep all otherwise."""
        if (self.test_mode or not self.filter_cfg
                or not self.filter_cfg.get('filter_empty_gt', False)):
            return self.data_list
        return [
            info for info in self.data_list
            if any(not inst['ignore_flag'] for inst in info['instances'])
        ]
