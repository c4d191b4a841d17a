"""Write a synthetic crowd data set in the CityPersons layout.

    python tools/misc/make_synthetic_citypersons.py \
        --out data/synthetic_citypersons --num-train 400 --num-val 100 --seed 0
"""
from mmlla.testing import make_synthetic_citypersons
from mmlla.testing.cli import synthetic_data_main


def main(argv=None):
    return synthetic_data_main(make_synthetic_citypersons,
                               __doc__.splitlines()[0], argv)


if __name__ == '__main__':
    main()
