"""One training iteration of LLA.FCOS, POTO + 3DMF + Aux and FCOS, side by
side, the share of it spent in label assignment, and where POTO + 3DMF +
Aux's extra time goes (POTO and POTO + 3DMF are timed in the same rounds).

    python tools/benchmarks/bench_train_step.py [--quick] [--repeats 10]
        [--batch-size 4] [--img-size 320 240] [--r50] [--device cpu]

Default: the tiny synthetic configs (ResNet-18/16, 32-channel FPN and head)
on a fixed batch of crowded images (5-60 people each, like the synthetic
set, plus ignore regions). ``--r50``: the R50 CrowdHuman configs at
800x1333, batch 2 (meant for a CUDA device; slow on a CPU).

A step is ``model.train_step`` (data preprocessing, forward, losses,
backward, SGD step). Each round runs one step of every detector, in
rotating order; medians over rounds are reported. The assignment time is
the time spent inside the head's assigner ``assign`` calls (LLA: the
``LossAwareAssigner``; POTO: ``POTOAssigner`` + the auxiliary
``POTOAuxAssigner``), measured by wrapping them, each also on its own; for
a head without an ``assigner`` attribute it is ``get_targets``. The 3DMF
forward (``head.max_filter``) is wrapped too (its backward is in the step
only). The breakdown table takes the differences of the step medians:
3DMF = POTO+3DMF - POTO, Aux = POTO+3DMF+Aux - POTO+3DMF.
"""
import argparse
import os.path as osp
import statistics
import time
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.optim import OptimWrapper  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

import bench_utils as bu  # noqa: E402
import mmlla  # noqa: E402,F401

TINY_CONFIGS = {
    'LLA.FCOS': 'configs/lla/lla_tiny_synthetic.py',
    'POTO+3DMF+Aux': 'configs/poto/poto-3dmf-aux_tiny_synthetic.py',
    'FCOS': 'configs/fcos/fcos_tiny_synthetic.py',
    'POTO': 'configs/poto/poto_tiny_synthetic.py',
    'POTO+3DMF': 'configs/poto/poto-3dmf_tiny_synthetic.py',
}
R50_CONFIGS = {
    'LLA.FCOS': 'configs/lla/lla_r50_crowdhuman.py',
    'POTO+3DMF+Aux': 'configs/poto/poto-3dmf-aux_r50_crowdhuman.py',
    'FCOS': 'configs/fcos/fcos_r50_crowdhuman.py',
    'POTO': 'configs/poto/poto_r50_crowdhuman.py',
    'POTO+3DMF': 'configs/poto/poto-3dmf_r50_crowdhuman.py',
}
# the synthetic set's crowds: 5-60 people per image
MIN_PEOPLE, MAX_PEOPLE = 5, 60
NUM_IGNORE = 2


def make_batch(batch_size: int, img_hw, seed: int) -> dict:
    """A fixed batch of noise images with crowded GTs and ignore regions,
    in the format ``model.train_step`` takes."""
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(batch_size):
        num = int(torch.randint(MIN_PEOPLE, MAX_PEOPLE + 1, (1, ),
                                generator=gen))
        inputs.append(
            torch.randint(0, 256, (3, *img_hw), generator=gen,
                          dtype=torch.uint8))
        sample = DetDataSample(
            metainfo=dict(img_shape=tuple(img_hw), ori_shape=tuple(img_hw),
                          scale_factor=(1.0, 1.0), flip=False))
        sample.gt_instances = InstanceData(
            bboxes=bu.make_crowd(num, img_hw, gen),
            labels=torch.zeros(num, dtype=torch.long))
        sample.ignored_instances = InstanceData(
            bboxes=bu.make_crowd(NUM_IGNORE, img_hw, gen),
            labels=torch.zeros(NUM_IGNORE, dtype=torch.long))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


class AssignTimer:
    """Wraps methods of objects and sums the seconds spent in them, in
    total (``seconds``) and per wrapped method (``parts``)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.seconds = 0.0
        self.parts: Dict[str, float] = {}

    def reset(self) -> None:
        self.seconds = 0.0
        self.parts = {name: 0.0 for name in self.parts}

    def wrap(self, obj, name: str, label: str, total: bool = True) -> None:
        """Time ``obj.name`` under ``label``; ``total``: count it in
        ``seconds`` (the assignment time)."""
        original = getattr(obj, name)
        self.parts[label] = 0.0

        def timed(*args, **kwargs):
            bu.synchronize(self.device)
            t0 = time.perf_counter()
            out = original(*args, **kwargs)
            bu.synchronize(self.device)
            elapsed = time.perf_counter() - t0
            self.parts[label] += elapsed
            if total:
                self.seconds += elapsed
            return out

        setattr(obj, name, timed)


def build(config: str, device: str, lr: float):
    """Model (train mode), optimizer wrapper and assignment timer."""
    cfg = Config.fromfile(osp.join(REPO, config))
    model = MODELS.build(cfg.model).to(device)
    model.train()
    optim = OptimWrapper(
        torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9,
                        weight_decay=1e-4))
    timer = AssignTimer(device)
    head = model.bbox_head
    wrapped = []
    for attr in ('assigner', 'aux_assigner'):
        if getattr(head, attr, None) is not None:
            label = f'{type(getattr(head, attr)).__name__}.assign'
            timer.wrap(getattr(head, attr), 'assign', label)
            wrapped.append(label)
    if not wrapped:  # a head that assigns inside get_targets
        label = f'{type(head).__name__}.get_targets'
        timer.wrap(head, 'get_targets', label)
        wrapped.append(label)
    if getattr(head, 'max_filter', None) is not None:
        timer.wrap(head.max_filter, 'forward', '3DMF forward', total=False)
    return model, optim, timer, wrapped


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--r50', action='store_true',
                        help='R50 CrowdHuman configs, 800x1333, batch 2')
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--batch-size', type=int, default=None)
    parser.add_argument('--img-size', type=int, nargs=2, default=None,
                        metavar=('W', 'H'))
    parser.add_argument('--models', nargs='+', default=list(TINY_CONFIGS),
                        choices=list(TINY_CONFIGS))
    parser.add_argument('--device', default=None)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--lr', type=float, default=1e-4,
                        help='small: random-init models must stay finite')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    bu.quiet_warnings()
    register_all_modules(init_default_scope=True)
    torch.set_num_threads(args.threads)
    device = args.device or bu.devices()[-1]
    configs = R50_CONFIGS if args.r50 else TINY_CONFIGS
    batch_size = args.batch_size or (2 if args.r50 else 4)
    w, h = args.img_size or ((1333, 800) if args.r50 else (320, 240))
    if args.quick:
        args.repeats, args.warmup, batch_size, (w, h) = 2, 1, 2, (160, 128)
    torch.manual_seed(args.seed)
    data = make_batch(batch_size, (h, w), args.seed)
    detectors = {
        name: build(configs[name], device, args.lr)
        for name in args.models
    }
    steps: Dict[str, List[float]] = {name: [] for name in detectors}
    assigns: Dict[str, List[float]] = {name: [] for name in detectors}
    parts: Dict[str, Dict[str, List[float]]] = {
        name: {} for name in detectors}
    names = list(detectors)
    for r in range(args.warmup + args.repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            model, optim, timer, _ = detectors[name]
            timer.reset()
            bu.synchronize(device)
            t0 = time.perf_counter()
            losses = model.train_step(data, optim)
            bu.synchronize(device)
            elapsed = time.perf_counter() - t0
            if not all(torch.isfinite(v).all() for v in losses.values()):
                raise FloatingPointError(f'{name}: non-finite loss {losses}')
            if r >= args.warmup:
                steps[name].append(elapsed)
                assigns[name].append(timer.seconds)
                for label, sec in timer.parts.items():
                    parts[name].setdefault(label, []).append(sec)
    results = {}
    for name in names:
        step = statistics.median(steps[name])
        assign = statistics.median(assigns[name])
        share = statistics.median(
            a / s for a, s in zip(assigns[name], steps[name]))
        results[name] = dict(
            step=step, assign=assign, share=share,
            wrapped=detectors[name][3],
            parts={k: statistics.median(v) for k, v in parts[name].items()})
    report(results, args, device, batch_size, (h, w), data)
    return dict(results=results, targets=check_targets(results))


def report(results, args, device, batch_size, img_hw, data) -> None:
    print(f'\nMachine: {bu.machine_line()}\n')
    num_gts = [len(s.gt_instances) for s in data['data_samples']]
    kind = 'R50 CrowdHuman' if args.r50 else 'tiny synthetic'
    print(f'### One training step ({kind} configs) on {device}: batch '
          f'{batch_size}, {img_hw[1]}x{img_hw[0]} images, GTs per image '
          f'{num_gts}, {NUM_IGNORE} ignore regions each\n')
    print(f'Median of {args.repeats} interleaved rounds (after '
          f'{args.warmup} warm-up rounds).\n')
    fcos = results.get('FCOS', {}).get('step')
    headers = ['detector', 'step ms', 'assignment ms', 'assignment share',
               'step / FCOS step', 'timed calls']
    table = [[
        name, r['step'] * 1e3, r['assign'] * 1e3, f'{100 * r["share"]:.1f}%',
        r['step'] / fcos if fcos else '-', ', '.join(r['wrapped'])
    ] for name, r in results.items()]
    print(bu.markdown_table(headers, table) + '\n')
    breakdown = poto_breakdown(results)
    if breakdown:
        print('### Where POTO+3DMF+Aux spends more than FCOS\n')
        print('Differences of the step medians above; "of which" rows are '
              'medians of the wrapped calls inside the POTO+3DMF+Aux '
              'step.\n')
        print(bu.markdown_table(['part', 'ms', 'share of FCOS step'],
                                [[p, ms, f'{100 * ms / fcos / 1e3:.1f}%']
                                 for p, ms in breakdown]) + '\n')
    print('### Targets\n')
    print(bu.markdown_table(
        ['target', 'measured', 'met'],
        [[t['target'], t['measured'], 'met' if t['met'] else 'MISSED']
         for t in check_targets(results)]) + '\n')


def poto_breakdown(results) -> List[list]:
    """(part, ms) rows: the steps' differences and the timed calls."""
    names = ('FCOS', 'POTO', 'POTO+3DMF', 'POTO+3DMF+Aux')
    if not all(n in results for n in names):
        return []
    step = {n: results[n]['step'] * 1e3 for n in names}
    full = results['POTO+3DMF+Aux']['parts']
    rows = [['POTO step - FCOS step', step['POTO'] - step['FCOS']],
            ['3DMF (POTO+3DMF - POTO)', step['POTO+3DMF'] - step['POTO']],
            ['Aux (POTO+3DMF+Aux - POTO+3DMF)',
             step['POTO+3DMF+Aux'] - step['POTO+3DMF']]]
    rows += [[f'of which {label}', sec * 1e3]
             for label, sec in full.items()]
    rows.append(['of which FCOS assignment (in the FCOS step)',
                 results['FCOS']['assign'] * 1e3])
    return rows


def check_targets(results) -> List[dict]:
    out = []
    if 'POTO+3DMF+Aux' in results and 'FCOS' in results:
        ratio = results['POTO+3DMF+Aux']['step'] / results['FCOS']['step']
        out.append(dict(target='POTO+3DMF+Aux / FCOS step time (issue #16: '
                        'was 1.5)', measured=f'{ratio:.3f}',
                        met=ratio < 1.5))
    if 'LLA.FCOS' in results:
        share = results['LLA.FCOS']['share']
        out.append(dict(target='LLA assignment <= 5% of a step',
                        measured=f'{100 * share:.1f}%', met=share <= 0.05))
        if 'FCOS' in results:
            ratio = results['LLA.FCOS']['step'] / results['FCOS']['step']
            out.append(dict(target='LLA / FCOS step time <= 1.05',
                            measured=f'{ratio:.3f}', met=ratio <= 1.05))
    return out


if __name__ == '__main__':
    main()
