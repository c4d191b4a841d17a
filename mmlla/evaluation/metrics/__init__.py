from .crowdhuman_mr_metric import CrowdHumanMRMetric
from .citypersons_mr_metric import CityPersonsMRMetric

__all__ = ['CrowdHumanMRMetric', 'CityPersonsMRMetric']
