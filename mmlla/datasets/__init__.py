from .crowdhuman_odgt_dataset import CrowdHumanODGTDataset, ODGTFormatError
from .synthetic_crowd import make_synthetic_crowdhuman, make_synthetic_image
from .citypersons_dataset import CityPersonsDataset, CityPersonsFormatError
from .synthetic_citypersons import make_synthetic_citypersons

__all__ = [
    'CrowdHumanODGTDataset', 'ODGTFormatError', 'make_synthetic_crowdhuman',
    'make_synthetic_image', 'CityPersonsDataset', 'CityPersonsFormatError',
    'make_synthetic_citypersons'
]
