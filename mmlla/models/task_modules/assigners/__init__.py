from .fcos_style_assigner import FCOSStyleAssigner
from .foreground_loss_assigner import ForegroundLossAssigner
from .loss_aware_assigner import LossAwareAssigner
from .one2one_anchor_assigner import One2OneAnchorAssigner
from .one2one_center_assigner import One2OneCenterAssigner
from .point_atss_assigner import PointATSSAssigner
from .poto_assigner import POTOAssigner
from .poto_aux_assigner import POTOAuxAssigner

__all__ = [
    'FCOSStyleAssigner', 'ForegroundLossAssigner', 'LossAwareAssigner',
    'One2OneAnchorAssigner', 'One2OneCenterAssigner', 'PointATSSAssigner',
    'POTOAssigner', 'POTOAuxAssigner'
]
