"""LLA.RetinaNet: RetinaNet's head trained with loss-aware label assignment."""
from typing import Dict, List

import torch
from mmdet.models.dense_heads import RetinaHead
from mmdet.registry import MODELS
from mmdet.structures.bbox import get_box_tensor
from mmdet.utils import InstanceList, OptInstanceList
from torch import Tensor

from .crowd_head_mixin import CrowdHeadMixin, flatten_levels
from .lla_head import LossAwareTargetMixin, count_assigned


@MODELS.register_module()
class LLARetinaHead(CrowdHeadMixin, LossAwareTargetMixin, RetinaHead):
    """RetinaNet head whose targets come from a prediction-aware assigner.

    mmdet's :class:`RetinaHead` (and every anchor head built on
    ``AnchorHead``) calls its assigner with the anchors only, so a
    loss-aware assigner has nothing to rank. This head is RetinaHead with
    one change: :meth:`loss_by_feat` decodes the predictions of all anchors,
    hands the detached ``sigmoid(cls)`` and boxes to ``train_cfg.assigner``
    (``LossAwareAssigner``, the anchors as priors) image by image, then
    computes RetinaNet's losses on those targets: focal loss on every anchor
    not given to an ignore region, and ``loss_bbox`` on positives (on decoded
    boxes when ``reg_decoded_bbox``, else on encoded deltas), both divided by
    LLA's ``num_fg`` (every anchor taken by a GT or an ignore region,
    averaged over GPUs, at least 1). The layers and anchors are RetinaHead's;
    inference is RetinaHead's with the boxes clipped after NMS and empty ones
    dropped, as in the mmlla point heads. LLA.RetinaNet is in the LLA paper
    only, not in the reference code.

    Args:
        *args: :class:`RetinaHead` arguments.
        **kwargs: :class:`RetinaHead` arguments.
    """

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
        featmap_sizes = [s.shape[-2:] for s in cls_scores]
        mlvl_anchors = self.prior_generator.grid_priors(
            featmap_sizes, device=cls_scores[0].device)
        anchors = get_box_tensor(torch.cat(mlvl_anchors))  # (A, 4) xyxy
        logits = flatten_levels(cls_scores, self.cls_out_channels)
        deltas = flatten_levels(bbox_preds, self.bbox_coder.encode_size)
        num_imgs, num_anchors = logits.shape[:2]
        flat_anchors = anchors[None].expand(num_imgs, -1, -1).reshape(-1, 4)
        boxes = get_box_tensor(
            self.bbox_coder.decode(flat_anchors, deltas.reshape(
                -1, deltas.size(-1)))).view(num_imgs, num_anchors, 4)

        labels, bbox_targets, valid = self.get_targets(
            anchors, logits.sigmoid(), boxes, batch_gt_instances,
            batch_gt_instances_ignore,
            num_level_priors=[len(a) for a in mlvl_anchors])
        pos = valid & (labels < self.num_classes)
        num_fg = count_assigned(labels, valid, self.num_classes)

        loss_cls = self.loss_cls(
            logits[valid], labels[valid], avg_factor=num_fg)
        if pos.any():
            if self.reg_decoded_bbox:
                pred, target = boxes[pos], bbox_targets[pos]
            else:
                pred = deltas[pos]
                target = self.bbox_coder.encode(
                    anchors[None].expand(num_imgs, -1, -1)[pos],
                    bbox_targets[pos])
            loss_bbox = self.loss_bbox(pred, target, avg_factor=num_fg)
        else:
            loss_bbox = deltas.sum() * 0  # keep the branch in the graph
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox)
