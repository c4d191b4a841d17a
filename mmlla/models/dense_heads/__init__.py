from .lla_head import LLAHead
from .lla_retina_head import LLARetinaHead
from .poto_head import POTOHead

__all__ = ['LLAHead', 'LLARetinaHead', 'POTOHead']
