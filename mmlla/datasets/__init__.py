from .citypersons_dataset import CityPersonsDataset
from .crowdhuman_odgt_dataset import CrowdHumanODGTDataset
from .formats import CityPersonsFormatError, ODGTFormatError

__all__ = [
    'CrowdHumanODGTDataset', 'ODGTFormatError', 'CityPersonsDataset',
    'CityPersonsFormatError'
]
