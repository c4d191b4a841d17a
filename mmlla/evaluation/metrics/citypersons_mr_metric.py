"""CityPersons log-average miss rate per setup as an mmengine metric."""
import math
from typing import Dict, Optional, Sequence

from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from ..functional import (MAX_DETS, CityPersonsImageGT,
                          CityPersonsPrediction, check_iou_thr, check_setups,
                          evaluate_citypersons, load_citypersons_gt)
from .utils import warn_unpredicted


@METRICS.register_module()
class CityPersonsMRMetric(BaseMetric):
    """CityPersons log-average miss rate (MR^-2) in the standard setups.

    The protocol of the CityPersons benchmark's evaluation code
    (``eval_MR_multisetup.py``), restated in
    :mod:`mmlla.evaluation.functional.citypersons_mr`: IoU >= 0.5, the best
    1000 detections per image, detections filtered by height with a 1.25
    margin, ignore regions matched by intersection over the detection's
    area, 9 reference FPPIs in [1e-2, 1]. Setups (:data:`SETUPS`; ground
    truth outside a setup's ranges is ignored in it):

    ============  ==============  =================
    setup         height (px)     visibility
    ============  ==============  =================
    Reasonable    >= 50           >= 0.65
    Small         50 - 75         >= 0.65
    Heavy         >= 50           0.2 - 0.65
    Partial       >= 50           0.65 - 0.9
    Bare          >= 50           >= 0.9
    All           >= 20           >= 0.2
    ============  ==============  =================

    ``process`` keeps each image's id and the predicted boxes and scores as
    numpy arrays; rank 0 matches them in ``compute_metrics``. Every image of
    ``ann_file`` is evaluated (FPPI divides by their number); an image
    without a prediction counts as an image without detections, with a
    warning. A prediction for an image id absent from ``ann_file`` raises an
    error naming it, and so does one that cannot be scored (NaN or infinite
    values, boxes that are not (D, 4), box and score counts that differ).

    Results are fractions in [0, 1] under ``citypersons/``:
    ``MR_Reasonable``, ``MR_Small``, ... (lower is better); NaN for a setup
    without ground truth.

    Args:
        ann_file: The CityPersons JSON file (``val_gt.json``).
        setups: Names of :data:`SETUPS` to evaluate; all six when None.
        iou_thr: Matching IoU threshold (>=), in (0, 1). Defaults to 0.5.
        max_dets: Best detections per image evaluated. Defaults to 1000.
        backend_args: mmengine file backend arguments for ``ann_file``.
        collect_device: ``'cpu'`` or ``'gpu'``, for gathering results.
        prefix: Key prefix; ``'citypersons'`` when None.
    """
    default_prefix: Optional[str] = 'citypersons'

    def __init__(self,
                 ann_file: str,
                 setups: Optional[Sequence[str]] = None,
                 iou_thr: float = 0.5,
                 max_dets: int = MAX_DETS,
                 backend_args: Optional[dict] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.ann_file = ann_file
        self.setups = check_setups(setups)
        self.iou_thr = check_iou_thr(iou_thr)
        if isinstance(max_dets, bool) or not isinstance(max_dets, int) \
                or max_dets < 1:
            raise ValueError(f'max_dets must be an integer >= 1, got '
                             f'{max_dets!r}')
        self.max_dets = max_dets
        self.backend_args = backend_args
        self._gts: Optional[Dict[int, CityPersonsImageGT]] = None

    def process(self, data_batch: Optional[dict],
                data_samples: Sequence[dict]) -> None:
        """Keep each image's id, boxes and scores.

        Args:
            data_batch: The batch from the dataloader (unused).
            data_samples: Per image, a dict with ``img_id`` (the integer id
                of ``ann_file``) and ``pred_instances`` holding ``bboxes``
                (D, 4) ``xyxy`` in original-image pixels and ``scores``
                (D,).
        """
        name = type(self).__name__
        for sample in data_samples:
            where = f'{name}: prediction for image {sample.get("img_id")}'
            self.results.append(
                tuple(CityPersonsPrediction.from_data_sample(sample, where)))

    @property
    def gts(self) -> Dict[int, CityPersonsImageGT]:
        """The ground truth, read from ``ann_file`` on first use."""
        if self._gts is None:
            self._gts = load_citypersons_gt(self.ann_file, self.backend_args)
        return self._gts

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Compute the miss rate of every setup from the gathered results.

        Args:
            results: ``(img_id, boxes, scores)`` of every image.

        Returns:
            dict[str, float]: ``MR_<setup>`` for each setup.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        preds = [CityPersonsPrediction(*r) for r in results]
        out = evaluate_citypersons(
            self.gts,
            preds,
            setups=self.setups,
            iou_thr=self.iou_thr,
            max_dets=self.max_dets,
            source=f'the annotation file {self.ann_file}')
        warn_unpredicted(logger, out, self.ann_file)
        for setup in self.setups:
            if out['num_gts'][setup] == 0:
                logger.warning(f'no ground truth of setup {setup} in '
                               f'{self.ann_file}: its miss rate is NaN')
        metrics = {f'MR_{s}': out['MR'][s] for s in self.setups}
        logger.info(
            f'CityPersons MR^-2 (IoU >= {self.iou_thr}) on {out["num_imgs"]} '
            'images: ' + ', '.join(
                f'{s} {100 * out["MR"][s]:.2f}% ({out["num_gts"][s]} GTs)'
                if not math.isnan(out['MR'][s]) else f'{s} n/a'
                for s in self.setups))
        return metrics


__all__ = ['CityPersonsMRMetric']
