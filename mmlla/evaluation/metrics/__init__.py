from .crowdhuman_mr_metric import CrowdHumanMRMetric

__all__ = ['CrowdHumanMRMetric']
