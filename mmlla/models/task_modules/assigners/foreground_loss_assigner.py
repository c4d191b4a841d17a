"""DeFCN's hand-crafted one-to-one baseline "Foreground loss"."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.task_modules.assigners import AssignResult, BaseAssigner
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import bbox_overlaps
from mmengine.structures import InstanceData
from torch import Tensor

from .sparse_utils import (dense_matching, fill_unmatched, prior_pairs,
                           sparse_matching, sparse_pays)
from .utils import (INF, check_score_type, focal_terms,
                    focal_terms_from_probs, inside_prior, one_hot_class_cost,
                    pairs_to_result, read_inputs)


@TASK_UTILS.register_module()
class ForegroundLossAssigner(BaseAssigner):
    """Hungarian matching on the loss a point would have as the GT's
    foreground: ``focal(p[a], onehot(c_g)) summed over classes + reg_weight *
    GIoU loss(box[a], g)``, inside the spatial prior; ``1e8`` (``utils.INF``)
    outside (docs/algorithms.md section 5).

    The class sum uses ``NEG[a] - FLneg(p[a, c_g]) + FLpos(p[a, c_g])``
    (:func:`utils.one_hot_class_cost`) instead of a (G, A, C) tensor.
    Solved like :class:`POTOAssigner`: the costs of the in-prior pairs only
    (listed by grid indices), each GT keeping its ``G`` cheapest points,
    LAPJVsp on them
    (:func:`sparse_utils.sparse_matching`: the optimum of the dense
    problem), then GTs without an in-prior point take the lowest free
    points (:func:`sparse_utils.fill_unmatched`). ``sparse=False``: the
    dense reference (mask, costs of the in-prior columns plus ``G`` outside
    ones, ``linear_sum_assignment``), then the same fill; small problems
    (``sparse_utils.sparse_pays`` false) take it too.

    Args:
        alpha (float): focal alpha. Defaults to 0.25.
        gamma (float): focal gamma. Defaults to 2.0.
        reg_weight (float): weight of the GIoU loss. Defaults to 2.0.
        center_sampling_radius (float): as :class:`POTOAssigner`.
        score_type (str): what ``pred_instances.scores`` are: ``'probs'``
            (the default: class probabilities, with optional
            ``pred_instances.logits`` for the logs) or ``'logits'``
            (classification logits, e.g. mmdet's RTMDetHead: the
            probabilities are ``sigmoid(x)`` and the focal logs
            ``logsigmoid(+-x)``, exact; ``pred_instances.logits`` is then
            not read).
        sparse (bool): the sparse path (default) or the dense reference.
    """

    def __init__(self,
                 alpha: float = 0.25,
                 gamma: float = 2.0,
                 reg_weight: float = 2.0,
                 center_sampling_radius: float = 0.0,
                 score_type: str = 'probs',
                 sparse: bool = True) -> None:
        self.alpha = alpha
        self.gamma = gamma
        self.reg_weight = reg_weight
        self.center_sampling_radius = center_sampling_radius
        self.score_type = check_score_type(score_type)
        self.sparse = sparse

    @torch.no_grad()
    def assign(self,
               pred_instances: InstanceData,
               gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None,
               **kwargs) -> AssignResult:
        """Assign by the foreground loss (minimum total cost).

        Args:
            pred_instances (InstanceData): ``priors`` (A, 4), ``scores``
                (A, C) probabilities (or logits: see ``score_type``),
                ``bboxes`` (A, 4) xyxy, and optionally
                ``logits`` (A, C) (the focal cost of the logits, as the
                reference computes it; POTOHead passes them).
            gt_instances (InstanceData): ``bboxes`` (G, 4), ``labels`` (G,).
            gt_instances_ignore (InstanceData, optional): not used: ignore
                regions take no part in DeFCN's assignment.

        Returns:
            AssignResult: as :class:`POTOAssigner`.
        """
        inputs = read_inputs('ForegroundLossAssigner', pred_instances,
                             gt_instances)
        if inputs.is_empty:
            return inputs.empty_result()
        priors, bboxes = inputs.priors, inputs.bboxes
        gt_boxes, gt_labels = inputs.gt_boxes, inputs.gt_labels
        num_rows, num_priors = inputs.num_rows, inputs.num_priors
        if self.sparse and sparse_pays(num_rows, num_priors,
                                       priors.device):
            rows, points = prior_pairs(priors, gt_boxes,
                                       self.center_sampling_radius)
            cost = self.pair_costs(pred_instances, gt_boxes, gt_labels, rows,
                                   points)
            gt_idx, prior_idx = sparse_matching(rows, points, cost, num_rows,
                                                INF, maximize=False)
        else:
            gt_idx, prior_idx = self._match_dense(pred_instances, gt_boxes,
                                                  gt_labels)
        gt_idx, prior_idx = fill_unmatched(gt_idx, prior_idx, num_rows,
                                           num_priors)
        return pairs_to_result(inputs.num_gts, num_priors, gt_boxes,
                               gt_labels, gt_idx, prior_idx, bboxes)

    def point_terms(self, pred_instances: InstanceData,
                    points: Tensor) -> Tuple[Tensor, Tensor]:
        """(n, C) focal terms (against 1, against 0) of the given points,
        with the logs taken from the logits when there are any (exact where
        the sigmoid saturates), else from the clamped probabilities."""
        scores = pred_instances.scores
        if self.score_type == 'logits':
            logits = scores
            prob = scores[points].float().sigmoid()
        else:
            prob = scores[points]
            logits = pred_instances.get('logits', None)
        if logits is None:
            return focal_terms_from_probs(prob, self.alpha, self.gamma)
        logits = logits[points].float()
        return focal_terms(prob, F.logsigmoid(logits), F.logsigmoid(-logits),
                           self.alpha, self.gamma)

    def pair_costs(self, pred_instances: InstanceData, gt_boxes: Tensor,
                   gt_labels: Tensor, rows: Tensor,
                   points: Tensor) -> Tensor:
        """(P,) cost of the in-prior pairs (GT ``rows[i]``, point
        ``points[i]``), with the dense path's operations; the focal terms
        are computed once per distinct point."""
        uniq, inverse = torch.unique(points, return_inverse=True)
        pos, neg = self.point_terms(pred_instances, uniq)
        labels = gt_labels.long()[rows]
        cls_cost = one_hot_class_cost(
            neg.sum(dim=1)[inverse], pos[inverse, labels], neg[inverse,
                                                               labels])
        giou = bbox_overlaps(gt_boxes[rows], pred_instances.bboxes[points],
                             mode='giou', is_aligned=True)
        return cls_cost + self.reg_weight * (1 - giou)

    def _match_dense(self, pred_instances: InstanceData, gt_boxes: Tensor,
                     gt_labels: Tensor) -> Tuple[Tensor, Tensor]:
        """The reference path: the (R, A) prior mask, the cost of the
        in-prior columns plus ``R`` outside ones, scipy's dense solver;
        returns the matched in-prior (GT, point) pairs."""
        priors = pred_instances.priors
        num_rows = len(gt_boxes)
        inside = inside_prior(priors, gt_boxes, self.center_sampling_radius)
        in_any = inside.any(dim=0)
        outside = (~in_any).nonzero(as_tuple=True)[0][:num_rows]
        cols = torch.cat([in_any.nonzero(as_tuple=True)[0],
                          outside]).sort().values
        pos, neg = self.point_terms(pred_instances, cols)
        labels = gt_labels.long()
        cls_cost = one_hot_class_cost(
            neg.sum(dim=1)[None], pos[:, labels].t(), neg[:, labels].t())
        giou = bbox_overlaps(gt_boxes, pred_instances.bboxes[cols],
                             mode='giou')
        cost = cls_cost + self.reg_weight * (1 - giou)
        cost[~inside[:, cols]] = INF
        gt_idx, sub = dense_matching(cost, INF, maximize=False)
        return gt_idx, cols[sub]
