"""Synthetic CityPersons: the synthetic crowds in the CityPersons layout.

Real CityPersons cannot be downloaded on a test machine, so the CityPersons
tests and tiny configs run on this generator's output. It draws the images
with :func:`mmlla.testing.make_synthetic_image` (the synthetic crowd
generator) and writes exactly what :class:`CityPersonsDataset` and the
CityPersons metric read::

    out_dir/leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    out_dir/annotations/{train,val}_gt.json

in the community ``val_gt.json`` format (``im_name``, 1-based ids). Every
drawn person becomes an annotation: ``bbox`` its full box, ``vis_bbox`` its
visible box, ``height`` the full box's height and ``vis_ratio`` the visible
box's area over the full box's (CityPersons' definitions). Some people are
given one of the ignored CityPersons classes, as the real data has them
(riders keep their full box; sitting and other persons, like the real ones,
are boxed by their visible box with ``vis_ratio`` 1), a few pedestrians carry
``ignore: 1`` in category 1 (as ``val_gt.json`` marks its ignored boxes), and
each crowd's dense unlabelled group becomes a ``people group`` (class 5).

The output depends only on the arguments: each image draws from its own
random generators seeded by ``(seed, split, index)``.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.utils import ProgressBar

from mmlla.datasets.formats.citypersons import CATEGORY_NAMES, PEDESTRIAN
from .synthetic_crowd import check_image_size, make_synthetic_image

CITY = 'synthtown'
# Probability that a drawn person is given each ignored class (the rest are
# pedestrians); rider, sitting person, other person, ignore region.
CLASS_PROBS = {2: 0.06, 3: 0.04, 4: 0.03, 0: 0.02}
# Probability that a pedestrian carries `ignore: 1` in category 1.
IGNORE_FLAG_PROB = 0.03
# Classes annotated with their visible box (CityPersons' "else" case: only
# pedestrians and riders have a full-body box).
VISIBLE_BOX_CLASSES = (0, 3, 4, 5)
GROUP = 5
# The class stream of an image's generator (the image's own drawing uses
# the seed (seed, split, index) of the crowd generator).
CLASS_STREAM = 1
PNG_COMPRESSION = 1
DIGITS = 6


def _xywh_area(box: Sequence[float]) -> float:
    return float(box[2]) * float(box[3])


def image_annotations(record: dict, rng: np.random.Generator, img_id: int,
                      first_ann_id: int) -> List[dict]:
    """CityPersons annotations of one synthetic crowd record.

    Args:
        record: A record of :func:`make_synthetic_image` (``gtboxes`` with
            ``fbox``/``vbox`` in ``[x, y, w, h]``; the dense group is the
            ``mask`` box).
        rng: Draws each person's class.
        img_id: The image's id.
        first_ann_id: The id of the first annotation.

    Returns:
        list[dict]: The annotations, ids counting up from ``first_ann_id``.
    """
    anns = []
    classes = np.array(sorted(CLASS_PROBS))
    cum = np.cumsum([CLASS_PROBS[c] for c in classes])
    for box in record['gtboxes']:
        fbox, vbox = [float(v) for v in box['fbox']], [
            float(v) for v in box['vbox']
        ]
        if box['tag'] == 'mask':
            category, ignore = GROUP, 1
        else:
            k = int(np.searchsorted(cum, rng.random(), side='right'))
            category = int(classes[k]) if k < len(classes) else PEDESTRIAN
            ignore = int(category != PEDESTRIAN
                         or rng.random() < IGNORE_FLAG_PROB)
        if category in VISIBLE_BOX_CLASSES:
            bbox, vis_ratio = vbox, 1.0
        else:
            bbox = fbox
            full = _xywh_area(fbox)
            vis_ratio = min(_xywh_area(vbox) / full, 1.0) if full > 0 else 0.0
        anns.append(
            dict(
                id=first_ann_id + len(anns),
                image_id=img_id,
                category_id=category,
                iscrowd=0,
                ignore=ignore,
                bbox=bbox,
                vis_bbox=vbox,
                height=bbox[3],
                vis_ratio=round(vis_ratio, DIGITS)))
    return anns


def make_synthetic_citypersons(out_dir: str,
                               num_train: int,
                               num_val: int,
                               seed: int = 0,
                               img_size: Tuple[int, int] = (320, 240),
                               show_progress: bool = True) -> Dict[str, str]:
    """Write a synthetic data set in the CityPersons layout.

    Args:
        out_dir: Folder to write ``leftImg8bit/`` and ``annotations/`` into
            (created if missing).
        num_train: Number of training images.
        num_val: Number of validation images.
        seed: Seed; the same arguments give byte-identical output.
        img_size: ``(width, height)`` of every image.
        show_progress: Show mmengine's progress bar.

    Returns:
        dict: Paths of the two annotation files, keys ``'train'``/``'val'``.

    Raises:
        ValueError: A negative count, or an image size the generator cannot
            draw; nothing is written then.
    """
    if num_train < 0 or num_val < 0:
        raise ValueError('num_train and num_val must be >= 0, got '
                         f'{num_train} and {num_val}')
    if len(img_size) != 2:
        raise ValueError(f'img_size must be (width, height), got {img_size!r}')
    width, height = img_size
    check_image_size(width, height)
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    bar: Optional[ProgressBar] = (
        ProgressBar(num_train + num_val) if show_progress else None)
    categories = [
        dict(id=k, name=v) for k, v in sorted(CATEGORY_NAMES.items())
    ]
    paths = {}
    for split_idx, (split, count) in enumerate((('train', num_train),
                                                ('val', num_val))):
        img_dir = osp.join(out_dir, 'leftImg8bit', split, CITY)
        os.makedirs(img_dir, exist_ok=True)
        images, annotations = [], []
        for i in range(count):
            # The crowd generator's own seeding: the same pictures as
            # make_synthetic_crowdhuman with the same seed.
            rng = np.random.default_rng([seed, split_idx, i])
            im_name = f'{CITY}_{seed:06d}_{i:06d}_leftImg8bit.png'
            img, record = make_synthetic_image(rng, width, height, im_name)
            cv2.imwrite(
                osp.join(img_dir, im_name), img,
                [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
            img_id = i + 1
            images.append(
                dict(id=img_id, im_name=im_name, height=height, width=width))
            class_rng = np.random.default_rng(
                [seed, split_idx, i, CLASS_STREAM])
            annotations += image_annotations(record, class_rng, img_id,
                                             len(annotations) + 1)
            if bar is not None:
                bar.update()
        path = osp.join(out_dir, 'annotations', f'{split}_gt.json')
        with open(path, 'w') as f:
            json.dump(
                dict(
                    categories=categories,
                    images=images,
                    annotations=annotations), f)
        paths[split] = path
    if bar is not None:
        print()
    return paths
