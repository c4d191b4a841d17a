"""Synthetic data for tests, demos and the small studies (as mmdet keeps its
demo and test data helpers in ``mmdet.testing``): crowds of drawn people
written in the CrowdHuman and CityPersons layouts."""
from .synthetic_citypersons import make_synthetic_citypersons
from .synthetic_crowd import make_synthetic_crowdhuman, make_synthetic_image

__all__ = [
    'make_synthetic_crowdhuman', 'make_synthetic_image',
    'make_synthetic_citypersons'
]
