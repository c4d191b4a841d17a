"""Write a synthetic crowd data set in the exact CrowdHuman layout.

    python tools/misc/make_synthetic_crowdhuman.py --out data/synthetic_crowdhuman \
        --num-train 400 --num-val 100 --seed 0
"""
import argparse

from mmlla.testing import make_synthetic_crowdhuman
from mmlla.testing.synthetic_crowd import (
    MIN_IMAGE_SIZE, check_image_size)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--size', type=int, nargs=2, default=(320, 240),
        metavar=('WIDTH', 'HEIGHT'),
        help=f'image size (each side >= {MIN_IMAGE_SIZE})')
    args = parser.parse_args(argv)
    if args.num_train < 0 or args.num_val < 0:
        parser.error('--num-train and --num-val must be >= 0')
    try:  # before anything is written
        check_image_size(*args.size)
    except ValueError as e:
        parser.error(f'--size: {e}')
    paths = make_synthetic_crowdhuman(
        args.out, args.num_train, args.num_val, seed=args.seed,
        img_size=tuple(args.size))
    print(f'wrote {args.num_train} train / {args.num_val} val images to '
          f'{args.out} ({paths["train"]}, {paths["val"]})')


if __name__ == '__main__':
    main()
