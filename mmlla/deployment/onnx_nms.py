"""Class-aware NMS as the standard ONNX ``NonMaxSuppression`` node.

mmcv's ``nms`` exports through its own symbolic only when mmcv's ONNX
helpers fit the running torch, and mmdet 3.x has no export path; mmdeploy
1.3.1 does not run with torch >= 2.9 (README, "Deploy"). So the NMS of the
one-to-many baselines is written here as an autograd function: eager, it is
mmcv's ``nms`` (the PyTorch heads' own op, so the wrapper reproduces their
detections exactly); exported, it is one ``NonMaxSuppression`` node of the
ONNX standard (opset >= 10), which onnxruntime, TensorRT and OpenVINO run.
"""
import torch
from mmcv.ops import nms
from torch import Tensor

# ONNX's max_output_boxes_per_class: keep every box NMS does not suppress
# (the heads apply max_per_img afterwards).
MAX_OUTPUT_BOXES = 2**31 - 1
# Candidates below the heads' score threshold enter the fixed-size NMS input
# with this score and are dropped by the node's score threshold; every kept
# score is >= 0 (a sigmoid, or the square root of a product of two).
INVALID_SCORE = -1.0
NMS_SCORE_THRESHOLD = -0.5


class ONNXNMSOp(torch.autograd.Function):
    """NMS of one score column per image, ONNX's output layout.

    ONNX's ``NonMaxSuppression`` suppresses a box whose IoU with a kept,
    higher-scoring box is ``> iou_threshold`` and drops boxes scoring
    ``<= score_threshold``, as mmcv's ``nms`` after the heads' score
    filter.
    """

    @staticmethod
    def forward(ctx, boxes: Tensor, scores: Tensor, iou_threshold: float,
                score_threshold: float) -> Tensor:
        """Run NMS image by image.

        Args:
            boxes (Tensor): (N, B, 4) xyxy.
            scores (Tensor): (N, 1, B).
            iou_threshold (float): IoU above which a box is suppressed.
            score_threshold (float): boxes scoring at most this are
                dropped first.

        Returns:
            Tensor: (M, 3) int64 rows ``(image, 0, box index)`` of the kept
            boxes, per image by descending score.
        """
        rows = []
        for img in range(boxes.size(0)):
            valid = (scores[img, 0] > score_threshold).nonzero()[:, 0]
            if len(valid) == 0:
                continue
            _, keep = nms(boxes[img, valid], scores[img, 0, valid],
                          iou_threshold)
            kept = valid[keep]
            rows.append(torch.stack([
                torch.full_like(kept, img),
                torch.zeros_like(kept), kept
            ], dim=1))
        if not rows:
            return boxes.new_zeros((0, 3), dtype=torch.long)
        return torch.cat(rows)

    @staticmethod
    def symbolic(g, boxes, scores, iou_threshold: float,
                 score_threshold: float):
        max_out = g.op(
            'Constant',
            value_t=torch.tensor([MAX_OUTPUT_BOXES], dtype=torch.long))
        iou = g.op(
            'Constant',
            value_t=torch.tensor([iou_threshold], dtype=torch.float))
        thr = g.op(
            'Constant',
            value_t=torch.tensor([score_threshold], dtype=torch.float))
        return g.op(
            'NonMaxSuppression', boxes, scores, max_out, iou, thr,
            center_point_box_i=0)


def batched_nms_keep(boxes: Tensor,
                     scores: Tensor,
                     labels: Tensor,
                     valid: Tensor,
                     iou_threshold: float,
                     class_agnostic: bool = False) -> Tensor:
    """mmcv's ``batched_nms`` (class-aware by coordinate offsets) over the
    valid candidates of every image, as a keep mask.

    The boxes of class ``c`` are shifted by ``c * (max coordinate + 1)``,
    the maximum taken over the image's valid candidates, as mmcv does for
    fewer than 10000 boxes (the heads keep at most ``nms_pre`` per level).

    Args:
        boxes (Tensor): (N, B, 4) xyxy candidates.
        scores (Tensor): (N, B) their scores.
        labels (Tensor): (N, B) int64 classes.
        valid (Tensor): (N, B) bool, the candidates that passed the score
            threshold.
        iou_threshold (float): NMS IoU threshold.
        class_agnostic (bool): one NMS over all classes (no offsets).

    Returns:
        Tensor: (N, B) bool, True for the boxes NMS keeps.
    """
    if class_agnostic:
        shifted = boxes
    else:
        # the largest coordinate of the valid candidates (the invalid ones
        # are replaced by the smallest coordinate, which never wins)
        max_coord = torch.where(valid[..., None], boxes,
                                boxes.min()).flatten(1).max(dim=1).values
        offsets = labels.to(boxes) * (max_coord[:, None] + 1)
        shifted = boxes + offsets[..., None]
    nms_scores = torch.where(valid, scores,
                             scores.new_full((), INVALID_SCORE))
    selected = ONNXNMSOp.apply(shifted, nms_scores[:, None, :],
                               float(iou_threshold), NMS_SCORE_THRESHOLD)
    keep = torch.zeros_like(valid)
    keep[selected[:, 0], selected[:, 2]] = True
    return keep
