import math

from mmlla.evaluation.functional import (format_citypersons_row,
                                         format_crowdhuman_row,
                                         format_summary)

CROWDHUMAN = {'crowdhuman/AP50': 0.88249, 'crowdhuman/mMR': 0.47551,
              'crowdhuman/recall': 0.9}
CITYPERSONS = {'citypersons/MR_Reasonable': 0.1125,
               'citypersons/MR_Small': 0.2,
               'citypersons/MR_Heavy': math.nan,
               'citypersons/MR_Partial': 0.3,
               'citypersons/MR_All': 0.40049}


def test_crowdhuman_row():
    assert format_crowdhuman_row(CROWDHUMAN) == (
        '| AP50 | mMR | recall |\n|:----:|:---:|:------:|\n'
        '| 88.2 | 47.6 | 90.0 |')
    partial = dict(CROWDHUMAN)
    del partial['crowdhuman/recall']
    assert format_crowdhuman_row(partial) is None
    assert format_crowdhuman_row(CITYPERSONS) is None


def test_citypersons_row_usual_setups_in_order():
    assert format_citypersons_row(CITYPERSONS) == (
        '| MR Reasonable | MR Small | MR Heavy | MR All |\n'
        '|:-------------:|:--------:|:--------:|:------:|\n'
        '| 11.2 | 20.0 | n/a | 40.0 |')
    # a metric evaluating fewer setups: only those columns
    assert format_citypersons_row({'citypersons/MR_All': 0.5,
                                   'citypersons/MR_Small': 0.25}) == (
        '| MR Small | MR All |\n|:--------:|:------:|\n| 25.0 | 50.0 |')
    assert format_citypersons_row({'citypersons/MR_Bare': 0.5}) is None
    assert format_citypersons_row(CROWDHUMAN) is None


def test_summary_prints_what_the_metrics_hold():
    assert format_summary(CROWDHUMAN) == format_crowdhuman_row(CROWDHUMAN)
    assert format_summary(CITYPERSONS) == format_citypersons_row(CITYPERSONS)
    both = format_summary({**CROWDHUMAN, **CITYPERSONS})
    assert both == (format_crowdhuman_row(CROWDHUMAN) + '\n\n' +
                    format_citypersons_row(CITYPERSONS))
    assert format_summary({'coco/bbox_mAP': 0.3}) is None
