"""The command line shared by the synthetic data writers
(tools/misc/make_synthetic_*.py)."""
import argparse
from typing import Callable, Dict, Optional, Sequence

from .synthetic_crowd import MIN_IMAGE_SIZE, PROFILES, check_image_size


def synthetic_data_main(generate: Callable[..., Dict[str, str]],
                        description: str,
                        argv: Optional[Sequence[str]] = None,
                        with_profile: bool = False) -> Dict[str, str]:
    """Parse ``--out --num-train --num-val --seed --size [--profile]``,
    refuse bad values before anything is written, and run ``generate``.

    Args:
        generate: ``make_synthetic_crowdhuman`` or
            ``make_synthetic_citypersons``.
        description: The tool's one-line description.
        argv: The arguments (None: ``sys.argv``).
        with_profile: Offer ``--profile`` (the crowd profiles of
            :data:`PROFILES`), passed to ``generate``.

    Returns:
        dict: ``generate``'s output (the annotation files written).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--size', type=int, nargs=2, default=(320, 240),
        metavar=('WIDTH', 'HEIGHT'),
        help=f'image size (each side >= {MIN_IMAGE_SIZE})')
    if with_profile:
        parser.add_argument(
            '--profile', choices=sorted(PROFILES), default='dense',
            help='how crowded: dense (default) or crowdhuman (CrowdHuman-'
            'like statistics, docs/crowd_study/README.md)')
    args = parser.parse_args(argv)
    if args.num_train < 0 or args.num_val < 0:
        parser.error('--num-train and --num-val must be >= 0')
    try:  # before anything is written
        check_image_size(*args.size)
    except ValueError as e:
        parser.error(f'--size: {e}')
    extra = dict(profile=args.profile) if with_profile else {}
    paths = generate(
        args.out, args.num_train, args.num_val, seed=args.seed,
        img_size=tuple(args.size), **extra)
    print(f'wrote {args.num_train} train / {args.num_val} val images to '
          f'{args.out} ({paths["train"]}, {paths["val"]})')
    return paths
