from .crowdhuman_odgt_dataset import CrowdHumanODGTDataset, ODGTFormatError
from .synthetic_crowd import make_synthetic_crowdhuman, make_synthetic_image

__all__ = [
    'CrowdHumanODGTDataset', 'ODGTFormatError', 'make_synthetic_crowdhuman',
    'make_synthetic_image'
]
