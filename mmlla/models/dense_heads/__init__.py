from .crowd_anchor_free_head import CrowdAnchorFreeHead
from .defcn_fcos_head import DeFCNFCOSHead
from .lla_head import LLAHead
from .lla_retina_head import LLARetinaHead
from .poto_head import POTOHead

__all__ = [
    'CrowdAnchorFreeHead', 'DeFCNFCOSHead', 'LLAHead', 'LLARetinaHead',
    'POTOHead'
]
