"""CrowdHuman AP50 / mMR / recall as an mmengine metric."""
from typing import Dict, Optional, Sequence

from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from mmlla.datasets.formats.odgt import check_body
from ..functional import (MR_REFERENCES, ImageGT, Prediction, check_iou_thr,
                          evaluate_crowdhuman, load_crowdhuman_gt)
from .utils import warn_unpredicted


@METRICS.register_module()
class CrowdHumanMRMetric(BaseMetric):
    """CrowdHuman AP50, log-average miss rate (mMR) and recall.

    A drop-in for mmdet's ``CrowdHumanMetric`` (same ``ann_file``, same
    ``process`` inputs) computing the CrowdDet protocol of
    ``docs/algorithms.md`` section 6 with the same numbers, vectorised (see
    ``docs/evaluation.md`` for measured speed and memory) and without its
    failures: images without ground truth or without detections, an empty
    prediction set, and predictions in any order are all evaluated; a
    prediction for an image ID absent from ``ann_file`` raises an error
    naming it, and so does a prediction that cannot be scored (NaN or
    infinite boxes or scores, boxes that are not (D, 4), box and score
    counts that differ).

    ``process`` keeps, per image, only its ID, size (``ori_shape``, which
    the data pipeline read from the image) and the predicted boxes and
    scores as numpy arrays; mmengine's ``collect_results`` gathers them
    across ranks and rank 0 matches them in ``compute_metrics``. Every image
    of ``ann_file`` is evaluated (section 6: FPPI divides by the number of
    images of the ground-truth file, recall by all its GTs); an image without
    a prediction counts as an image without detections, with a warning.

    Results are fractions in [0, 1] under ``crowdhuman/``: ``AP50``, ``mMR``
    (lower is better), ``recall`` and, with ``with_ji``, ``JI`` (CrowdDet's
    Jaccard index: maximum-weight matching, see
    :func:`~mmlla.evaluation.functional.jaccard_index_image`).

    Args:
        ann_file: The ``.odgt`` annotation file.
        body: Evaluated box: ``'full'`` (``fbox``, default), ``'visible'``
            (``vbox``) or ``'head'`` (``hbox``).
        iou_thr: Matching IoU threshold (strict), in (0, 1). Defaults to
            0.5.
        mr_range: Reference FPPI range of the mMR: ``'-2'`` (9 points in
            1e-2..1, default) or ``'-4'`` (9 points in 1e-4..1).
        with_ji: Also compute CrowdDet's Jaccard index. Defaults to False.
        backend_args: mmengine file backend arguments for ``ann_file``.
        collect_device: ``'cpu'`` or ``'gpu'``, for gathering results.
        prefix: Key prefix; ``'crowdhuman'`` when None.
    """
    default_prefix: Optional[str] = 'crowdhuman'

    def __init__(self,
                 ann_file: str,
                 body: str = 'full',
                 iou_thr: float = 0.5,
                 mr_range: str = '-2',
                 with_ji: bool = False,
                 backend_args: Optional[dict] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        check_body(body)
        if mr_range not in MR_REFERENCES:
            raise ValueError('mr_range must be one of '
                             f'{sorted(MR_REFERENCES)}, got {mr_range!r}')
        self.ann_file = ann_file
        self.body = body
        self.iou_thr = check_iou_thr(iou_thr)
        self.mr_range = mr_range
        self.with_ji = with_ji
        self.backend_args = backend_args
        self._gts: Optional[Dict[str, ImageGT]] = None

    def process(self, data_batch: Optional[dict],
                data_samples: Sequence[dict]) -> None:
        """Keep each image's ID, size, boxes and scores.

        A prediction that cannot be scored
        (:meth:`~mmlla.evaluation.functional.Prediction.from_data_sample`)
        raises a ValueError naming its image ID.

        Args:
            data_batch: The batch from the dataloader (unused).
            data_samples: Per image, a dict with ``img_id``, ``ori_shape``
                ``(h, w)`` and ``pred_instances`` holding ``bboxes`` (D, 4)
                ``xyxy`` in original-image pixels and ``scores`` (D,).
        """
        name = type(self).__name__
        for sample in data_samples:
            img_id = str(sample.get('img_id'))
            self.results.append(
                Prediction.from_data_sample(
                    sample, f'{name}: prediction for image {img_id!r}'))

    @property
    def gts(self) -> Dict[str, ImageGT]:
        """The ground truth, read from ``ann_file`` on first use."""
        if self._gts is None:
            self._gts = load_crowdhuman_gt(self.ann_file, self.body,
                                           self.backend_args)
        return self._gts

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Compute AP50, mMR, recall (and JI) from the gathered results.

        Args:
            results: :class:`Prediction` of every image.

        Returns:
            dict[str, float]: ``AP50``, ``mMR``, ``recall`` (and ``JI``).
        """
        logger: MMLogger = MMLogger.get_current_instance()
        # Results pickled by collect_results come back as plain tuples.
        preds = [Prediction(*r) for r in results]
        out = evaluate_crowdhuman(
            self.gts,
            preds,
            iou_thr=self.iou_thr,
            mr_range=self.mr_range,
            with_ji=self.with_ji,
            source=f'the annotation file {self.ann_file}')
        warn_unpredicted(logger, out, self.ann_file)
        if out['num_gts'] == 0:
            logger.warning(f'no ground truth in {self.ann_file}: recall and '
                           'AP50 are 0, mMR is 1')
        metrics = {k: out[k] for k in ('AP50', 'mMR', 'recall')}
        if self.with_ji:
            metrics['JI'] = out['JI']
        logger.info(
            f'CrowdHuman ({self.body} box, IoU > {self.iou_thr}, '
            f'MR{self.mr_range}) on {out["num_imgs"]} images, '
            f'{out["num_gts"]} ground truths: ' +
            ', '.join(f'{k} {100 * v:.2f}%' for k, v in metrics.items()))
        return metrics
