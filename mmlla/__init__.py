"""mmlla: loss-aware and one-to-one label assignment for MMDetection 3.x.

Importing this package registers every module of the project into
MMDetection's registries (datasets, metrics, assigners, heads, layers) and
allow-lists the objects mmengine stores in checkpoints for torch's
weights-only loading.
"""
from .version import __version__
from .utils import register_checkpoint_safe_globals

register_checkpoint_safe_globals()

from . import datasets, evaluation, models  # noqa: E402,F401  (registration)

__all__ = ['__version__']
