"""The one-row results summaries ``tools/test.py`` prints after testing.

mmengine logs every metric at full precision; papers and the configs'
README tables give a few numbers in percent with one decimal. These
functions turn what ``runner.test()`` returns into that markdown row.
"""
import math
from typing import Dict, Optional

# The CrowdHuman numbers of the summary, in order (CrowdHumanMRMetric keys).
CROWDHUMAN_SUMMARY_KEYS = ('AP50', 'mMR', 'recall')
# The CityPersons setups of the summary, in order (CityPersonsMRMetric
# reports ``MR_<setup>``); the usual columns of CityPersons tables.
CITYPERSONS_SUMMARY_SETUPS = ('Reasonable', 'Small', 'Heavy', 'All')


def _by_name(metrics: Dict[str, float]) -> Dict[str, float]:
    """The metrics keyed by their name without the prefix
    (``'crowdhuman/AP50'`` -> ``'AP50'``)."""
    return {key.rsplit('/', 1)[-1]: value for key, value in metrics.items()}


def _percent(value: float) -> str:
    """``value`` in percent with one decimal; ``n/a`` for NaN."""
    return 'n/a' if math.isnan(value) else f'{100 * value:.1f}'


def format_crowdhuman_row(metrics: Dict[str, float]) -> Optional[str]:
    """One markdown row of CrowdHuman AP50 / mMR / recall.

    Args:
        metrics (dict[str, float]): What ``runner.test()`` returns, e.g.
            ``{'crowdhuman/AP50': 0.882, 'crowdhuman/mMR': 0.475, ...}``.

    Returns:
        str | None: A header and a row in percent with one decimal, or None
        when the metrics hold no CrowdHuman numbers.
    """
    found = {
        name: value
        for name, value in _by_name(metrics).items()
        if name in CROWDHUMAN_SUMMARY_KEYS
    }
    if len(found) != len(CROWDHUMAN_SUMMARY_KEYS):
        return None
    return ('| AP50 | mMR | recall |\n|:----:|:---:|:------:|\n'
            f'| {100 * found["AP50"]:.1f} | {100 * found["mMR"]:.1f} | '
            f'{100 * found["recall"]:.1f} |')


def format_citypersons_row(metrics: Dict[str, float]) -> Optional[str]:
    """One markdown row of the CityPersons MR^-2 of the usual setups.

    The columns are those of :data:`CITYPERSONS_SUMMARY_SETUPS` the metric
    evaluated (``setups`` of ``CityPersonsMRMetric``), in that order; a
    setup without ground truth (NaN) reads ``n/a``.

    Args:
        metrics (dict[str, float]): What ``runner.test()`` returns, e.g.
            ``{'citypersons/MR_Reasonable': 0.112, ...}``.

    Returns:
        str | None: A header and a row of miss rates in percent with one
        decimal (lower is better), or None when the metrics hold none of
        these setups.
    """
    named = _by_name(metrics)
    setups = [s for s in CITYPERSONS_SUMMARY_SETUPS if f'MR_{s}' in named]
    if not setups:
        return None
    header = '| ' + ' | '.join(f'MR {s}' for s in setups) + ' |'
    rule = '|' + '|'.join(':' + '-' * (len(s) + 3) + ':' for s in setups) + '|'
    row = '| ' + ' | '.join(_percent(named[f'MR_{s}']) for s in setups) + ' |'
    return '\n'.join((header, rule, row))


def format_summary(metrics: Dict[str, float]) -> Optional[str]:
    """The summaries of every metric ``metrics`` holds numbers of.

    Args:
        metrics (dict[str, float]): What ``runner.test()`` returns.

    Returns:
        str | None: :func:`format_crowdhuman_row` and
        :func:`format_citypersons_row`, separated by a blank line, or None
        when neither applies.
    """
    rows = [
        row for row in (format_crowdhuman_row(metrics),
                        format_citypersons_row(metrics)) if row is not None
    ]
    return '\n\n'.join(rows) if rows else None


__all__ = [
    'CROWDHUMAN_SUMMARY_KEYS', 'CITYPERSONS_SUMMARY_SETUPS',
    'format_crowdhuman_row', 'format_citypersons_row', 'format_summary'
]
