"""Synthetic CrowdHuman: crowds of textured figures in the official layout.

Real CrowdHuman cannot be downloaded on a test machine, so tests, the quick
start and the benchmarks run on this generator's output. It writes exactly
what :class:`CrowdHumanODGTDataset` and the CrowdHuman metric read:
``Images/<ID>.jpg``, ``annotation_train.odgt`` and ``annotation_val.odgt``.

Each image holds a crowd of 5 to 60 people drawn back to front (people lower
in the image are closer, bigger and drawn later), so they occlude each other
heavily. Every person is a distinguishable figure (skin-toned head, textured
shirt, trousers, arms) on a cluttered background that also holds person-like
distractors (poles, blobs). Some images hold a dense group of tiny people that
is not labelled person by person but marked by a ``mask`` ignore region, as
CrowdHuman does. The boxes follow the drawing order:

* ``fbox``: the full extent of the figure, even where it leaves the image or
  is hidden by people in front of it;
* ``vbox``: the bounding box of the figure's pixels still visible in the image;
* ``hbox``: the head's box.

The output depends only on the arguments: each image draws from its own
random generator seeded by ``(seed, split, index)``.
"""
import json
import multiprocessing
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmengine.utils import ProgressBar

MIN_PEOPLE = 5
MAX_PEOPLE = 60
# A person is labelled when at least this share of its pixels stays visible;
# fully hidden figures are not annotated (CrowdHuman annotators cannot see them).
MIN_VISIBLE_FRACTION = 0.05
# Probability that an image holds a dense unlabelled group (an ignore region).
IGNORE_GROUP_PROB = 0.35
# The smallest image side the generator can draw: the background's clutter
# rectangles take a side in [10, side // 3), which needs side // 3 > 10.
MIN_IMAGE_SIZE = 33

SKIN_TONES = np.array([[198, 224, 255], [150, 190, 235], [110, 150, 200],
                       [70, 100, 150], [45, 65, 100]], dtype=np.float64)  # BGR


@dataclass(frozen=True)
class CrowdProfile:
    """How crowded the generated images are.

    Attributes:
        min_people (int): Fewest people drawn in an image.
        max_people (int): Most people drawn in an image (hidden ones are
            not labelled, so the labelled count is a little lower).
        max_groups (int): People cluster around 1..``max_groups`` centres.
        spread (float): Standard deviation of a person's horizontal
            distance from its group centre, as a fraction of the width.
        ignore_prob (float): Probability of each unlabelled dense group
            (an ignore region).
        max_ignore_groups (int): How many times that draw is made.
        behind_prob (float): Probability that a person gets somebody
            standing right behind them (same place, nearly the same size):
            the near-duplicate pairs (full-body IoU > 0.9) of real crowds.
        ignore_scale (float): Size of an ignore group, relative to the
            default (20-40% of the width, 12-20% of the height).
        foot_max (float): The lowest feet, as a fraction of the height
            (above 1: the closest people are cut off by the image's bottom
            edge, their full box leaves the image).
        occluders (int): Foreground objects (boards, cars, railings)
            drawn over the people, hiding parts of them: up to this many.
    """
    min_people: int
    max_people: int
    max_groups: int
    spread: float
    ignore_prob: float
    max_ignore_groups: int
    behind_prob: float
    ignore_scale: float = 1.0
    foot_max: float = 1.08
    occluders: int = 0


# The default: dense, strongly overlapping crowds (tests and the quick start).
DENSE = CrowdProfile(
    min_people=MIN_PEOPLE,
    max_people=MAX_PEOPLE,
    max_groups=3,
    spread=0.22,
    ignore_prob=IGNORE_GROUP_PROB,
    max_ignore_groups=1,
    behind_prob=0.0)
# Closer to CrowdHuman's train set where it matters for assignment (people
# per image, pairs of overlapping full boxes, near-duplicates, ignore
# regions); tools/analysis_tools/crowd_study.py prints the comparison.
CROWDHUMAN_LIKE = CrowdProfile(
    min_people=8,
    max_people=56,
    max_groups=4,
    spread=0.42,
    ignore_prob=0.8,
    max_ignore_groups=8,
    behind_prob=0.02,
    ignore_scale=0.4,
    foot_max=1.5,
    occluders=8)
PROFILES = {'dense': DENSE, 'crowdhuman': CROWDHUMAN_LIKE}


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A (h, w, 3) uint8 clothing texture: solid, stripes, checks or dots."""
    base = rng.integers(0, 256, 3).astype(np.float64)
    other = rng.integers(0, 256, 3).astype(np.float64)
    kind = rng.integers(0, 4)
    yy, xx = np.mgrid[0:h, 0:w]
    period = int(rng.integers(3, 9))
    if kind == 0:
        mask = np.zeros((h, w), bool)
    elif kind == 1:
        mask = (yy // period) % 2 == 0
    elif kind == 2:
        mask = ((yy // period) + (xx // period)) % 2 == 0
    else:
        mask = ((yy % period) < 2) & ((xx % period) < 2)
    tex = np.where(mask[..., None], other, base)
    tex += rng.normal(0, 12, (h, w, 3))
    return np.clip(tex, 0, 255).astype(np.uint8)


def _background(rng: np.random.Generator, width: int,
                height: int) -> np.ndarray:
    """A cluttered background: a gradient, shapes, person-like distractors."""
    top = rng.integers(0, 256, 3).astype(np.float64)
    bottom = rng.integers(0, 256, 3).astype(np.float64)
    t = np.linspace(0, 1, height)[:, None, None]
    img = (top * (1 - t) + bottom * t) * np.ones((1, width, 1))
    img = img.astype(np.uint8)
    for _ in range(int(rng.integers(8, 20))):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        kind = rng.integers(0, 4)
        if kind == 0:
            w, h = rng.integers(10, width // 3), rng.integers(10, height // 3)
            cv2.rectangle(img, (x, y), (int(x + w), int(y + h)), color, -1)
        elif kind == 1:
            cv2.circle(img, (x, y), int(rng.integers(4, 30)), color, -1)
        elif kind == 2:  # a pole: vertical, leg-like
            w = int(rng.integers(2, 7))
            cv2.rectangle(img, (x, 0), (x + w, height), color, -1)
        else:  # a head-like blob on a stick
            r = int(rng.integers(3, 10))
            cv2.circle(img, (x, y), r, color, -1)
            cv2.line(img, (x, y), (x, int(y + 4 * r)), color, max(1, r // 2))
    noise = rng.normal(0, 8, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def _draw_person(img: np.ndarray, id_map: np.ndarray, pid: int, cx: float,
                 foot_y: float, height: float,
                 rng: np.random.Generator) -> Tuple[List[float], List[float]]:
    """Draw one figure into ``img`` and write ``pid`` into ``id_map``.

    Returns:
        tuple: the full box and the head box, both ``[x1, y1, x2, y2]`` in
        continuous pixel coordinates, possibly outside the image.
    """
    H, W = id_map.shape
    h = height
    w = 0.42 * h
    top = foot_y - h
    mask = np.zeros((H, W), np.uint8)
    # Part geometry, as fractions of the figure's height.
    head_r = 0.085 * h
    head_c = (cx + rng.uniform(-0.03, 0.03) * h, top + head_r)
    torso = (cx - 0.16 * h, top + 2 * head_r, cx + 0.16 * h, top + 0.58 * h)
    leg_w = 0.11 * h
    legs = [(cx - 0.15 * h, torso[3], cx - 0.15 * h + leg_w, foot_y),
            (cx + 0.15 * h - leg_w, torso[3], cx + 0.15 * h, foot_y)]
    arm_t = max(1, int(round(0.06 * h)))
    arm_swing = rng.uniform(-0.06, 0.06) * h
    arms = [((torso[0], torso[1] + 0.02 * h),
             (cx - w / 2 + arm_swing, top + 0.55 * h)),
            ((torso[2], torso[1] + 0.02 * h),
             (cx + w / 2 - arm_swing, top + 0.55 * h))]

    def r(v):
        return int(round(v))

    skin = SKIN_TONES[rng.integers(0, len(SKIN_TONES))] + rng.normal(0, 8, 3)
    skin = tuple(int(c) for c in np.clip(skin, 0, 255))
    # The shirt texture covers the torso and arms only (a full-image texture
    # per person made generation several times slower).
    sx0 = max(0, r(min(torso[0], arms[0][1][0]) - arm_t))
    sx1 = min(W, r(max(torso[2], arms[1][1][0]) + arm_t) + 1)
    sy0 = max(0, r(torso[1] - arm_t))
    sy1 = min(H, r(torso[3] + arm_t) + 1)
    pants_color = tuple(int(c) for c in rng.integers(0, 160, 3))
    hair = tuple(int(c) for c in rng.integers(0, 90, 3))

    # Legs and trousers.
    part = np.zeros((H, W), np.uint8)
    for x1, y1, x2, y2 in legs:
        cv2.rectangle(part, (r(x1), r(y1)), (r(x2), r(y2)), 1, -1)
    img[part > 0] = pants_color
    mask |= part
    # Arms (shirt-coloured sleeves) and torso with the shirt texture.
    part = np.zeros((H, W), np.uint8)
    for p, q in arms:
        cv2.line(part, (r(p[0]), r(p[1])), (r(q[0]), r(q[1])), 1, arm_t)
    cv2.rectangle(part, (r(torso[0]), r(torso[1])), (r(torso[2]), r(torso[3])),
                  1, -1)
    if sx1 > sx0 and sy1 > sy0:
        roi = part[sy0:sy1, sx0:sx1] > 0
        shirt = _texture(rng, sy1 - sy0, sx1 - sx0)
        img[sy0:sy1, sx0:sx1][roi] = shirt[roi]
    mask |= part
    # Hands.
    part = np.zeros((H, W), np.uint8)
    for _, q in arms:
        cv2.circle(part, (r(q[0]), r(q[1])), max(1, arm_t // 2 + 1), 1, -1)
    img[part > 0] = skin
    mask |= part
    # Head: face, then hair on top.
    part = np.zeros((H, W), np.uint8)
    cv2.ellipse(part, (r(head_c[0]), r(head_c[1])),
                (max(1, r(0.8 * head_r)), max(1, r(head_r))), 0, 0, 360, 1,
                -1)
    img[part > 0] = skin
    mask |= part
    hair_part = np.zeros((H, W), np.uint8)
    cv2.ellipse(hair_part, (r(head_c[0]), r(head_c[1] - 0.3 * head_r)),
                (max(1, r(0.82 * head_r)), max(1, r(0.7 * head_r))), 0, 180,
                360, 1, -1)
    img[hair_part > 0] = hair
    id_map[mask > 0] = pid

    xs = [torso[0], torso[2], cx - w / 2 + arm_swing, cx + w / 2 - arm_swing,
          legs[0][0], legs[1][2], head_c[0] - 0.8 * head_r,
          head_c[0] + 0.8 * head_r]
    fbox = [min(xs) - arm_t / 2, top, max(xs) + arm_t / 2, foot_y]
    # Rasterisation can reach a pixel beyond the geometry: the full box also
    # covers every drawn pixel, so the visible box always lies inside it.
    ys_drawn, xs_drawn = np.nonzero(mask)
    if len(xs_drawn):
        fbox = [min(fbox[0], xs_drawn.min()), min(fbox[1], ys_drawn.min()),
                max(fbox[2], xs_drawn.max() + 1),
                max(fbox[3], ys_drawn.max() + 1)]
    hbox = [head_c[0] - 0.82 * head_r, head_c[1] - head_r,
            head_c[0] + 0.82 * head_r, head_c[1] + head_r]
    return fbox, hbox


def _draw_occluder(img: np.ndarray, id_map: np.ndarray,
                   rng: np.random.Generator) -> None:
    """Draw a foreground object over the people and clear it from
    ``id_map``: a wide low board (a car, a railing) from the bottom edge,
    or a tall narrow one (a pillar, a sign)."""
    H, W = id_map.shape
    color = tuple(int(c) for c in rng.integers(0, 256, 3))
    if rng.random() < 0.5:
        w, h = rng.uniform(0.2, 0.5) * W, rng.uniform(0.1, 0.3) * H
        x, y = rng.uniform(-0.1 * W, W - 0.5 * w), H - h
    else:
        w, h = rng.uniform(0.04, 0.1) * W, rng.uniform(0.3, 0.9) * H
        x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
    x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
    x1, y1 = min(W, int(round(x + w))), min(H, int(round(y + h)))
    if x1 > x0 and y1 > y0:
        patch = _texture(rng, y1 - y0, x1 - x0)
        img[y0:y1, x0:x1] = (0.5 * patch + 0.5 * np.array(color)).astype(
            np.uint8)
        id_map[y0:y1, x0:x1] = 0


def _xywh(box: Sequence[float]) -> List[float]:
    x1, y1, x2, y2 = box
    return [round(float(x1), 1), round(float(y1), 1),
            round(float(x2 - x1), 1), round(float(y2 - y1), 1)]


def check_image_size(width, height) -> None:
    """Refuse an image size the generator cannot draw.

    Args:
        width: Image width in pixels.
        height: Image height in pixels.

    Raises:
        ValueError: A side is not an integer or is smaller than
            :data:`MIN_IMAGE_SIZE` (zero and negative sizes included).
    """
    for name, side in (('width', width), ('height', height)):
        if isinstance(side, bool) or not isinstance(side, (int, np.integer)):
            raise ValueError(f'image {name} must be an integer, got '
                             f'{side!r}')
        if side < MIN_IMAGE_SIZE:
            raise ValueError(
                f'image {name} {side} is too small: a synthetic crowd '
                f'needs at least {MIN_IMAGE_SIZE} x {MIN_IMAGE_SIZE} pixels')


def get_profile(profile: Union[str, CrowdProfile]) -> CrowdProfile:
    """A :class:`CrowdProfile`, given one or its name in :data:`PROFILES`.

    Raises:
        ValueError: An unknown name.
    """
    if isinstance(profile, CrowdProfile):
        return profile
    if profile not in PROFILES:
        raise ValueError(f'unknown crowd profile {profile!r}; choose one of '
                         f'{sorted(PROFILES)}')
    return PROFILES[profile]


def make_synthetic_image(
        rng: np.random.Generator,
        width: int,
        height: int,
        image_id: str,
        profile: Union[str, CrowdProfile] = DENSE) -> Tuple[np.ndarray, Dict]:
    """Draw one crowded image and its CrowdHuman annotation record.

    Args:
        rng: The generator all randomness of this image comes from.
        width: Image width in pixels.
        height: Image height in pixels.
        image_id: The record's ``ID``.
        profile: How crowded (a :class:`CrowdProfile` or a name of
            :data:`PROFILES`). The default draws exactly what this
            generator always drew.

    Returns:
        tuple: The BGR image (height, width, 3) and the ``.odgt`` record.

    Raises:
        ValueError: The size is too small (:func:`check_image_size`).
    """
    check_image_size(width, height)
    profile = get_profile(profile)
    img = _background(rng, width, height)
    id_map = np.zeros((height, width), np.int32)
    gtboxes = []

    # A far, dense, unlabelled group first (behind everybody): an ignore
    # region in the CrowdHuman sense.
    for _ in range(profile.max_ignore_groups):
        if rng.random() >= profile.ignore_prob:
            continue
        gw = rng.uniform(0.2, 0.4) * width * profile.ignore_scale
        gh = rng.uniform(0.12, 0.2) * height * profile.ignore_scale
        gx = rng.uniform(0, width - gw)
        gy = rng.uniform(0, 0.5 * height)
        for _ in range(int(rng.integers(12, 25))):
            ph = rng.uniform(0.6, 1.0) * gh
            px = rng.uniform(gx + 0.2 * ph, gx + gw - 0.2 * ph)
            # pid -1: drawn, but belonging to nobody labelled.
            _draw_person(img, id_map, -1, px, gy + gh, ph, rng)
        gtboxes.append(
            dict(tag='mask', fbox=_xywh([gx, gy, gx + gw, gy + gh]),
                 vbox=_xywh([gx, gy, gx + gw, gy + gh]),
                 hbox=_xywh([gx, gy, gx + gw, gy + gh]),
                 extra=dict(ignore=1)))

    num = int(rng.integers(profile.min_people, profile.max_people + 1))
    # People stand on a ground plane: lower feet -> closer -> taller.
    foot_y = np.sort(
        rng.uniform(0.3 * height, profile.foot_max * height, num))
    scale = rng.uniform(0.8, 1.25, num)
    heights = (0.08 + 0.4 * foot_y / height) * height * scale
    # Crowds cluster: centres around a few group positions.
    n_groups = int(rng.integers(1, profile.max_groups + 1))
    group_x = rng.uniform(0.1 * width, 0.9 * width, n_groups)
    cx = group_x[rng.integers(0, n_groups, num)] + rng.normal(
        0, profile.spread * width, num)
    cx = np.clip(cx, -0.05 * width, 1.05 * width)

    if profile.behind_prob > 0:
        # somebody right behind (drawn first, so mostly hidden): nearly the
        # same place and size, a little higher up (further away)
        behind = np.nonzero(rng.random(num) < profile.behind_prob)[0]
        foot_y = np.concatenate([foot_y, foot_y[behind] - 0.01 * height])
        heights = np.concatenate([heights, heights[behind] * 0.97])
        cx = np.concatenate(
            [cx, cx[behind] + rng.normal(0, 0.02, len(behind)) * heights[
                behind]])
        order = np.argsort(foot_y, kind='stable')
        foot_y, heights, cx = foot_y[order], heights[order], cx[order]
        num = len(foot_y)

    people = []
    for i in range(num):
        fbox, hbox = _draw_person(img, id_map, i + 1, float(cx[i]),
                                  float(foot_y[i]), float(heights[i]), rng)
        people.append((fbox, hbox))

    for _ in range(int(rng.integers(0, profile.occluders + 1))
                   if profile.occluders else 0):
        _draw_occluder(img, id_map, rng)

    areas = np.bincount(id_map.ravel()[id_map.ravel() > 0],
                        minlength=num + 1)
    for i, (fbox, hbox) in enumerate(people):
        pid = i + 1
        if areas[pid] == 0:
            continue
        ys, xs = np.nonzero(id_map == pid)
        full_area = (fbox[2] - fbox[0]) * (fbox[3] - fbox[1])
        visible = areas[pid] / max(full_area * 0.55, 1.0)  # figure fill ~55%
        if visible < MIN_VISIBLE_FRACTION:
            continue
        vbox = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        head_visible = (hbox[0] < width and hbox[2] > 0 and hbox[1] < height
                        and hbox[3] > 0)
        gtboxes.append(
            dict(tag='person', fbox=_xywh(fbox), vbox=_xywh(vbox),
                 hbox=_xywh(hbox),
                 head_attr=dict(ignore=0 if head_visible else 1,
                                occ=0, unsure=0),
                 extra=dict(box_id=len(gtboxes), occ=int(visible < 0.7),
                            ignore=0)))
    record = dict(ID=image_id, gtboxes=gtboxes)
    return img, record


def _write_image(job: tuple) -> str:
    """Draw and write one image; its ``.odgt`` line."""
    img_dir, seed, split, split_idx, i, width, height, profile = job
    rng = np.random.default_rng([seed, split_idx, i])
    image_id = f'synth_{split}_{seed}_{i:06d}'
    img, record = make_synthetic_image(rng, width, height, image_id, profile)
    cv2.imwrite(
        osp.join(img_dir, f'{image_id}.jpg'), img,
        [cv2.IMWRITE_JPEG_QUALITY, 92])
    return json.dumps(record)


def make_synthetic_crowdhuman(out_dir: str,
                              num_train: int,
                              num_val: int,
                              seed: int = 0,
                              img_size: Tuple[int, int] = (320, 240),
                              show_progress: bool = True,
                              profile: Union[str, CrowdProfile] = DENSE,
                              num_workers: int = 0) -> Dict[str, str]:
    """Write a synthetic crowd data set in the exact CrowdHuman layout.

    Args:
        out_dir: Folder to write ``Images/``, ``annotation_train.odgt`` and
            ``annotation_val.odgt`` into (created if missing).
        num_train: Number of training images.
        num_val: Number of validation images.
        seed: Seed; the same arguments give byte-identical output.
        img_size: ``(width, height)`` of every image.
        show_progress: Show mmengine's progress bar.
        profile: How crowded (:func:`make_synthetic_image`); the default
            keeps the output of earlier versions.
        num_workers: Processes that draw images in parallel (0: none);
            the output does not depend on it.

    Returns:
        dict: Paths of the two annotation files, keys ``'train'``/``'val'``.

    Raises:
        ValueError: A negative count, an image size the generator cannot
            draw (:func:`check_image_size`) or an unknown profile; nothing
            is written then.
    """
    profile = get_profile(profile)
    if num_train < 0 or num_val < 0:
        raise ValueError('num_train and num_val must be >= 0, got '
                         f'{num_train} and {num_val}')
    if len(img_size) != 2:
        raise ValueError(f'img_size must be (width, height), got {img_size!r}')
    width, height = img_size
    check_image_size(width, height)
    img_dir = osp.join(out_dir, 'Images')
    os.makedirs(img_dir, exist_ok=True)
    bar: Optional[ProgressBar] = (
        ProgressBar(num_train + num_val) if show_progress else None)
    paths = {}
    for split_idx, (split, count) in enumerate((('train', num_train),
                                                ('val', num_val))):
        jobs = [(img_dir, seed, split, split_idx, i, width, height, profile)
                for i in range(count)]
        if num_workers > 0 and count > 1:
            # every image has its own generator: the output is the same
            with multiprocessing.get_context('spawn').Pool(
                    num_workers) as pool:
                lines = []
                for line in pool.imap(_write_image, jobs, chunksize=8):
                    lines.append(line)
                    if bar is not None:
                        bar.update()
        else:
            lines = []
            for job in jobs:
                lines.append(_write_image(job))
                if bar is not None:
                    bar.update()
        path = osp.join(out_dir, f'annotation_{split}.odgt')
        with open(path, 'w') as f:
            f.write('\n'.join(lines) + ('\n' if lines else ''))
        paths[split] = path
    if bar is not None:
        print()
    return paths
