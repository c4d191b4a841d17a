"""Post-processing in crowds: NMS-free POTO against FCOS + NMS.

    python tools/benchmarks/bench_inference.py [--quick]
        [--people 10 25 50 100 200] [--repeats 10] [--devices cpu cuda]

Both heads get the same synthetic head outputs of one 800x1400 image (the
CrowdHuman test size) with N people: every point inside a person is
confident (class logit ~ 3, filter / centerness logit ~ 2) and predicts that
person's box, jittered; the other points are background (logits -5 / -2).
Timed: ``head.predict_by_feat`` for one image, i.e. decoding plus

* ``POTOHead`` (``configs/poto/poto-3dmf-aux_r50_crowdhuman.py`` test_cfg:
  per level top 1000 above 0.05, then the best 500, no NMS);
* mmdet's ``FCOSHead`` (``configs/fcos/fcos_r50_crowdhuman.py`` test_cfg:
  per level top 1000 above 0.05, NMS IoU 0.6, at most 300).

Medians of interleaved rounds.
"""
import argparse
import os.path as osp
from typing import List, Optional

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402
from mmengine.config import Config  # noqa: E402

import bench_utils as bu  # noqa: E402
import mmlla  # noqa: E402,F401

POTO_CONFIG = 'configs/poto/poto-3dmf-aux_r50_crowdhuman.py'
FCOS_CONFIG = 'configs/fcos/fcos_r50_crowdhuman.py'
QUICK_HW = (256, 448)
FG_CLS, BG_CLS = 3.0, -5.0
FG_QUALITY, BG_QUALITY = 2.0, -2.0


def build_head(config: str, device: str):
    cfg = Config.fromfile(osp.join(REPO, config))
    head_cfg = cfg.model.bbox_head.copy()
    head_cfg.update(train_cfg=None, test_cfg=cfg.model.test_cfg)
    return MODELS.build(head_cfg).to(device).eval()


def make_outputs(img_hw, num_people: int, seed: int, device: str):
    """Per-level (1, 1, H, W) class logits, (1, 4, H, W) pixel distances
    and (1, 1, H, W) filter / centerness logits."""
    gen = torch.Generator().manual_seed(seed)
    priors, num_level = bu.make_priors(img_hw)
    people = bu.make_crowd(num_people, img_hw, gen)
    boxes = bu.make_predictions(priors, people, gen, jitter=0.05)
    xs, ys = priors[:, 0], priors[:, 1]
    inside = torch.zeros(len(priors), dtype=torch.bool)
    for start in range(0, num_people, 64):
        p = people[start:start + 64]
        inside |= ((xs > p[:, 0:1]) & (xs < p[:, 2:3]) & (ys > p[:, 1:2]) &
                   (ys < p[:, 3:4])).any(0)
    noise = torch.randn(len(priors), 2, generator=gen)
    cls = torch.where(inside, FG_CLS, BG_CLS) + noise[:, 0]
    quality = torch.where(inside, FG_QUALITY, BG_QUALITY) + noise[:, 1]
    dist = torch.cat([priors[:, :2] - boxes[:, :2], boxes[:, 2:] -
                      priors[:, :2]], dim=1)
    outs = ([], [], [])
    sizes = bu.featmap_sizes(img_hw)
    for flat, channels, out in ((cls[:, None], 1, outs[0]), (dist, 4, outs[1]),
                                (quality[:, None], 1, outs[2])):
        for chunk, (h, w) in zip(flat.split(num_level), sizes):
            out.append(
                chunk.reshape(h, w, channels).permute(2, 0, 1)[None]
                .contiguous().to(device))
    return outs, int(inside.sum())


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--people', type=int, nargs='+',
                        default=[10, 25, 50, 100, 200])
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--devices', nargs='+', default=None)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    bu.quiet_warnings()
    register_all_modules(init_default_scope=True)
    torch.set_num_threads(args.threads)
    img_hw = bu.CROWDHUMAN_HW
    if args.quick:
        img_hw, args.people = QUICK_HW, [5, 20]
        args.repeats, args.warmup = 2, 1
    results = []
    for device in bu.devices(args.devices):
        poto, fcos = build_head(POTO_CONFIG, device), build_head(
            FCOS_CONFIG, device)
        metas = [dict(img_shape=img_hw, ori_shape=img_hw,
                      scale_factor=(1.0, 1.0))]
        for n in args.people:
            (cls, dist, quality), num_fg = make_outputs(
                img_hw, n, args.seed + n, device)
            runners = {
                'POTO (NMS-free)': lambda: poto.predict_by_feat(
                    cls, dist, quality, batch_img_metas=metas)[0],
                'FCOS + NMS': lambda: fcos.predict_by_feat(
                    cls, dist, quality, batch_img_metas=metas)[0],
            }
            with torch.no_grad():
                dets = {k: len(f()) for k, f in runners.items()}
                times = bu.time_side_by_side(runners, args.repeats,
                                             args.warmup, device)
            results.append(dict(device=device, people=n, confident=num_fg,
                                num_points=sum(c.numel() for c in cls),
                                dets=dets, times=times))
    report(results, args, img_hw)
    return dict(results=results)


def report(results, args, img_hw) -> None:
    print(f'\nMachine: {bu.machine_line()}\n')
    for device in dict.fromkeys(r['device'] for r in results):
        rows = [r for r in results if r['device'] == device]
        print(f'### Post-processing of one {img_hw[0]}x{img_hw[1]} image on '
              f'{device} (A={rows[0]["num_points"]})\n')
        print(f'``predict_by_feat`` time per image, median of {args.repeats} '
              'interleaved rounds; "confident points": points with class '
              'logit ~ 3.\n')
        headers = ['people', 'confident points', 'POTO ms', 'FCOS+NMS ms',
                   'FCOS+NMS / POTO', 'POTO dets', 'FCOS dets']
        table = [[
            r['people'], r['confident'], r['times']['POTO (NMS-free)'] * 1e3,
            r['times']['FCOS + NMS'] * 1e3,
            r['times']['FCOS + NMS'] / r['times']['POTO (NMS-free)'],
            r['dets']['POTO (NMS-free)'], r['dets']['FCOS + NMS']
        ] for r in rows]
        print(bu.markdown_table(headers, table) + '\n')


if __name__ == '__main__':
    main()
