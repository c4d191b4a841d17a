"""LLA.RetinaNet: RetinaNet's head trained with loss-aware label assignment."""
from typing import Dict, List

import torch
from mmdet.models.dense_heads import RetinaHead
from mmdet.registry import MODELS
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import InstanceList, OptInstanceList
from torch import Tensor

from .crowd_head_mixin import CrowdHeadMixin, avg_factor


@MODELS.register_module()
class LLARetinaHead(CrowdHeadMixin, RetinaHead):
    """RetinaNet head whose targets come from a prediction-aware assigner.

    mmdet's :class:`RetinaHead` (and every anchor head built on
    ``AnchorHead``) calls its assigner with the anchors only, so a
    loss-aware assigner has nothing to rank. This head is RetinaHead with
    one change: :meth:`loss_by_feat` decodes the predictions of all anchors,
    hands the detached ``sigmoid(cls)`` and boxes to ``train_cfg.assigner``
    (``LossAwareAssigner``, the anchors as priors) image by image
    (:meth:`CrowdHeadMixin.get_targets`, as LLAHead), then computes
    RetinaNet's losses on those targets: focal loss on every anchor not
    given to an ignore region, and ``loss_bbox`` on positives (on decoded
    boxes when ``reg_decoded_bbox``, else on encoded deltas), both divided
    by LLA's ``num_fg`` (every anchor taken by a GT or an ignore region,
    averaged over GPUs, at least 1). The layers and anchors are
    RetinaHead's; inference is RetinaHead's with the boxes clipped after NMS
    and empty ones dropped, as in the mmlla point heads. LLA.RetinaNet is in
    the LLA paper only, not in the reference code.

    Args:
        *args: :class:`RetinaHead` arguments.
        **kwargs: :class:`RetinaHead` arguments.
    """

    def loss_priors(self, featmap_sizes: List[torch.Size],
                    dtype: torch.dtype,
                    device: torch.device) -> List[Tensor]:
        """Per level the xyxy anchors, (H * W * K, 4) each, in float32 as
        mmdet's ``AnchorHead.get_anchors`` makes them (``dtype`` unused)."""
        return [
            get_box_tensor(anchors) for anchors in
            self.prior_generator.grid_priors(featmap_sizes, device=device)
        ]

    def decode_boxes(self, priors: Tensor, bbox_pred: Tensor) -> Tensor:
        """Deltas ``bbox_pred`` (..., E) of the anchors ``priors`` (..., 4)
        to xyxy boxes (..., 4), without clipping."""
        boxes = super().decode_boxes(
            priors.reshape(-1, priors.size(-1)),
            bbox_pred.reshape(-1, bbox_pred.size(-1)))
        return boxes.view(*bbox_pred.shape[:-1], 4)

    def loss_by_feat(
        self,
        cls_scores: List[Tensor],
        bbox_preds: List[Tensor],
        batch_gt_instances: InstanceList,
        batch_img_metas: List[dict],
        batch_gt_instances_ignore: OptInstanceList = None
    ) -> Dict[str, Tensor]:
        """Assign with the detached predictions, then compute the losses.

        Args:
            cls_scores (list[Tensor]): per level (N, K * C, H, W) logits
                (K anchors per location).
            bbox_preds (list[Tensor]): per level (N, K * 4, H, W) deltas.
            batch_gt_instances (list[InstanceData]): ``bboxes``, ``labels``.
            batch_img_metas (list[dict]): image metas.
            batch_gt_instances_ignore (list[InstanceData], optional): ignore
                regions.

        Returns:
            dict[str, Tensor]: ``loss_cls`` and ``loss_bbox``.
        """
        flat = self.flatten_predictions(cls_scores, bbox_preds)
        logits, deltas, boxes = flat.logits, flat.bbox_preds, flat.bboxes
        labels, bbox_targets, valid = self.get_targets(
            flat.priors, logits.sigmoid(), boxes, batch_gt_instances,
            batch_gt_instances_ignore,
            num_level_priors=flat.num_level_priors)
        pos = labels < self.num_classes
        # num_fg: the anchors of every row, ignore regions' included
        num_fg = avg_factor(pos | ~valid)

        loss_cls = self.loss_cls(
            logits[valid], labels[valid], avg_factor=num_fg)
        if pos.any():
            if self.reg_decoded_bbox:
                pred, target = boxes[pos], bbox_targets[pos]
            else:
                pred = deltas[pos]
                target = self.bbox_coder.encode(
                    flat.priors[None].expand(len(logits), -1, -1)[pos],
                    bbox_targets[pos])
            loss_bbox = self.loss_bbox(pred, target, avg_factor=num_fg)
        else:
            loss_bbox = deltas.sum() * 0  # keep the branch in the graph
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox)
