
from .poto_head import POTOHead

__all__ = ['POTOHead']
