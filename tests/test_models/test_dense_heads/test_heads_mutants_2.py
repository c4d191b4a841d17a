"""Head behaviour that the second mutation run over ``mmlla.models``
(docs/mutation_testing.md, with the ``@torch.no_grad()`` bodies mutated)
showed no other test pinned down."""
import math

import torch
from mmdet.registry import MODELS, TASK_UTILS
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

import mmlla  # noqa: F401  (registers the heads)
from head_cases import (GN4, IMG, STRIDES, close, crowd, focal_from_logits,
                        grid_points, sizes)

NUM_CLASSES = 2


def sig(v):
    return 1 / (1 + math.exp(-v))


def build(type_, strides=STRIDES, **kwargs):
    torch.manual_seed(0)
    test_cfg = ConfigDict(nms_pre=1000, score_thr=0.05, nms=None,
                          max_per_img=100)
    head = MODELS.build(dict(
        type=type_, num_classes=NUM_CLASSES, in_channels=8, feat_channels=8,
        stacked_convs=1, strides=strides, norm_cfg=GN4, test_cfg=test_cfg,
        **kwargs))
    head.init_weights()
    return head


class Spy:
    """Records the ``pred_instances`` an assigner is given."""

    def __init__(self, assigner):
        self.assigner = assigner
        self.calls, self.results = [], []
        self.wrapped = assigner.assign

        def assign(pred_instances, *args, **kwargs):
            self.calls.append(pred_instances)
            self.results.append(
                self.wrapped(pred_instances, *args, **kwargs))
            return self.results[-1]

        assigner.assign = assign


def poto_maps(seed=0, with_filter=True):
    g = torch.Generator().manual_seed(seed)
    cls = [torch.randn(1, NUM_CLASSES, h, w, generator=g) * 2
           for h, w in sizes()]
    box = [torch.rand(1, 4, h, w, generator=g) * 20 + 4 for h, w in sizes()]
    filt = [torch.randn(1, 1, h, w, generator=g) * 2 for h, w in sizes()]
    return cls, box, (filt if with_filter else [None] * len(STRIDES))


def flat(maps):
    return torch.cat([m.permute(0, 2, 3, 1).reshape(-1, m.size(1))
                      for m in maps])


def test_poto_3dmf_gives_the_assigner_no_logits():
    """With 3DMF the assigner ranks ``sigmoid(cls) * sigmoid(filter)``;
    the logits are not those probabilities' logits, so none go along
    (ForegroundLossAssigner would take its focal logs from them). Without
    3DMF the logits whose sigmoid the scores are go along."""
    train_cfg = dict(assigner=dict(type='ForegroundLossAssigner',
                                   center_sampling_radius=1.5))
    gts, _, metas = crowd(1)
    for with_3dmf in (True, False):
        head = build('POTOHead', with_3dmf=with_3dmf, train_cfg=train_cfg)
        spy = Spy(head.assigner)
        cls, box, filt = poto_maps(with_filter=with_3dmf)
        head.loss_by_feat(cls, box, filt, gts, metas)
        assert len(spy.calls) == 1
        given = spy.calls[0]
        probs = flat(cls).sigmoid()
        if with_3dmf:
            probs = probs * flat(filt).sigmoid()
            assert 'logits' not in given
        else:
            close(given.logits, flat(cls))
        close(given.scores, probs)


def test_poto_3dmf_with_foreground_loss_matches_the_probability_cost():
    """The same by value: the positives of POTOHead(3DMF) +
    ForegroundLossAssigner are those of the assigner run on the filtered
    probabilities alone (logs of the clamped probabilities)."""
    assigner_cfg = dict(type='ForegroundLossAssigner',
                        center_sampling_radius=1.5)
    head = build('POTOHead', with_3dmf=True,
                 train_cfg=dict(assigner=assigner_cfg))
    spy = Spy(head.assigner)
    gts, _, metas = crowd(1)
    cls, box, filt = poto_maps(seed=3)
    # saturated logits: the focal logs of the logits and of the clamped
    # filtered probabilities then rank the points differently
    for c in cls:
        c.mul_(8)
    head.loss_by_feat(cls, box, filt, gts, metas)
    given = spy.calls[0]
    ref = TASK_UTILS.build(assigner_cfg)
    pred = InstanceData(priors=given.priors, scores=given.scores,
                        bboxes=given.bboxes)
    want = ref.assign(pred, gts[0]).gt_inds
    assert torch.equal(spy.results[0].gt_inds, want)
    # the case discriminates: the logits' logs would match otherwise
    pred.logits = flat(cls)
    assert not torch.equal(ref.assign(pred, gts[0]).gt_inds, want)


def test_poto_single_level_predict_with_a_none_filter():
    """One FPN level: forward's ``[None]`` filter list is NMS-free
    inference without 3DMF (only ``filter_logits[0]`` exists)."""
    head = build('POTOHead', strides=(8, ))
    head.eval()
    n = IMG // 8
    cls = [torch.full((1, NUM_CLASSES, n, n), -9.)]
    box = [torch.full((1, 4, n, n), 2.)]
    cls[0][0, 1, 2, 3] = 3.0   # point (28, 20): box [26, 18, 30, 22]
    res = head.predict_by_feat(cls, box, [None],
                               batch_img_metas=crowd(1)[2])[0]
    close(res.scores, [sig(3.0)])
    assert res.labels.tolist() == [1]
    close(res.bboxes, [[26., 18., 30., 22.]])


def test_poto_single_level_loss():
    """One FPN level: the priors of the loss come from that level's map
    alone (there is no ``bbox_preds[1]``); without GT the focal sum over
    every point, divided by max(1, 0) = 1, and a zero box loss."""
    head = build('POTOHead', strides=(8, ),
                 train_cfg=dict(assigner=dict(type='POTOAssigner')))
    n = IMG // 8
    g = torch.Generator().manual_seed(2)
    cls = [torch.randn(1, NUM_CLASSES, n, n, generator=g)]
    box = [torch.full((1, 4, n, n), 3.)]
    gts = [InstanceData(bboxes=torch.zeros(0, 4),
                        labels=torch.zeros(0, dtype=torch.long))]
    losses = head.loss_by_feat(cls, box, [None], gts, crowd(1)[2])
    logits = flat(cls)
    close(losses['loss_cls'],
          focal_from_logits(logits, torch.zeros_like(logits)).sum())
    close(losses['loss_bbox'], 0.)


def test_targets_of_a_batch_with_an_image_without_gts():
    """get_targets stacks per-image (A, 4) box targets: zeros for an image
    without GT, the GT box at the positive of an image with one."""
    head = build('POTOHead',
                 train_cfg=dict(assigner=dict(type='POTOAssigner')))
    priors = grid_points(0.5)
    num = len(priors)
    scores = torch.full((2, num, NUM_CLASSES), 0.1)
    bboxes = torch.cat([priors[:, :2] - 6, priors[:, :2] + 6], dim=1)
    bboxes = bboxes[None].repeat(2, 1, 1)
    # the stride-16 point (8, 8) (index 64) predicts the GT box exactly
    gt_box = torch.tensor([[2., 2., 14., 14.]])
    gts = [InstanceData(bboxes=torch.zeros(0, 4),
                        labels=torch.zeros(0, dtype=torch.long)),
           InstanceData(bboxes=gt_box, labels=torch.tensor([1]))]
    labels, targets, valid = head.get_targets(priors, scores, bboxes, gts)
    assert labels.shape == (2, num) and targets.shape == (2, num, 4)
    assert (labels[0] == NUM_CLASSES).all() and not targets[0].any()
    pos = (labels[1] < NUM_CLASSES).nonzero().flatten().tolist()
    assert pos == [64] and labels[1, 64] == 1
    close(targets[1, 64], gt_box[0])
    assert not targets[1, :64].any() and not targets[1, 65:].any()
    assert valid.all()


def test_a_zero_nms_pre_keeps_every_point():
    """``nms_pre <= 0`` means no per-level cap, 0 included."""
    head = build('POTOHead')
    head.eval()
    cls = [torch.full((1, NUM_CLASSES, h, w), 2.0) for h, w in sizes()]
    box = [torch.full((1, 4, h, w), 1.0) for h, w in sizes()]
    cfg = ConfigDict(nms_pre=0, score_thr=0.05, nms=None, max_per_img=1000)
    res = head.predict_by_feat(cls, box, None, batch_img_metas=crowd(1)[2],
                               cfg=cfg)[0]
    assert len(res) == sum(h * w for h, w in sizes()) * NUM_CLASSES


def test_post_process_ranking_keeps_ties_in_index_order():
    """Without NMS the detections are ranked by score, ties in their input
    order (docs/algorithms.md notation: ties take the first index); 40
    equal scores, where an unstable sort reorders them."""
    head = build('POTOHead')
    num = 40
    x = torch.arange(num, dtype=torch.float32)
    results = InstanceData(
        bboxes=torch.stack([x, x, x + 10, x + 10], dim=1),
        scores=torch.full((num, ), 0.5),
        labels=torch.zeros(num, dtype=torch.long))
    results.scores[num // 2] = 0.9
    cfg = ConfigDict(nms=None, max_per_img=100)
    meta = dict(img_shape=(100, 100), ori_shape=(100, 100),
                scale_factor=(1., 1.))
    out = head._bbox_post_process(results, cfg, rescale=False,
                                  with_nms=False, img_meta=meta)
    want = [num // 2] + [i for i in range(num) if i != num // 2]
    assert out.bboxes[:, 0].long().tolist() == want
