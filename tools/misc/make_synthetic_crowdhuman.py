"""Write a synthetic crowd data set in the exact CrowdHuman layout.

    python tools/misc/make_synthetic_crowdhuman.py --out data/synthetic_crowdhuman \
        --num-train 400 --num-val 100 --seed 0 [--profile dense|crowdhuman]
"""
from mmlla.testing import make_synthetic_crowdhuman
from mmlla.testing.cli import synthetic_data_main


def main(argv=None):
    return synthetic_data_main(make_synthetic_crowdhuman,
                               __doc__.splitlines()[0], argv,
                               with_profile=True)


if __name__ == '__main__':
    main()
