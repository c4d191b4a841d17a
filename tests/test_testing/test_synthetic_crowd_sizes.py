"""The synthetic generator refuses image sizes it cannot draw before writing
anything."""
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from mmlla.testing import make_synthetic_crowdhuman, make_synthetic_image
from mmlla.testing.synthetic_crowd import MIN_IMAGE_SIZE, check_image_size


@pytest.mark.parametrize('size', [
    (0, 240), (320, 0), (0, 0), (-320, 240), (320, -1),
    (MIN_IMAGE_SIZE - 1, 240), (320, MIN_IMAGE_SIZE - 1), (10, 10), (1, 1),
    (320.0, 240), (True, 240), ('320', 240),
])
def test_impossible_sizes_are_refused_before_writing(tmp_path, size):
    out = tmp_path / 'out'
    with pytest.raises(ValueError, match=r'image (width|height) .*(too small'
                       r'|must be an integer)'):
        make_synthetic_crowdhuman(str(out), 1, 1, img_size=size,
                                  show_progress=False)
    assert not out.exists()  # nothing written, not even the folder
    with pytest.raises(ValueError):
        make_synthetic_image(np.random.default_rng(0), *size, 'x')


def test_img_size_needs_two_values(tmp_path):
    with pytest.raises(ValueError, match=r'img_size must be \(width, '
                       r'height\)'):
        make_synthetic_crowdhuman(str(tmp_path / 'o'), 1, 1,
                                  img_size=(320, 240, 3), show_progress=False)
    assert not (tmp_path / 'o').exists()


def test_smallest_size_draws(tmp_path):
    check_image_size(MIN_IMAGE_SIZE, MIN_IMAGE_SIZE)
    out = str(tmp_path / 'small')
    make_synthetic_crowdhuman(out, 2, 1, img_size=(MIN_IMAGE_SIZE,
                                                   MIN_IMAGE_SIZE + 7),
                              show_progress=False)
    imgs = sorted(os.listdir(osp.join(out, 'Images')))
    assert len(imgs) == 3
    with Image.open(osp.join(out, 'Images', imgs[0])) as img:
        assert img.size == (MIN_IMAGE_SIZE, MIN_IMAGE_SIZE + 7)
