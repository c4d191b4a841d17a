"""End-to-end latency: onnxruntime vs PyTorch, NMS-free POTO vs FCOS + NMS.

    python tools/benchmarks/bench_onnx.py [--quick] [--models tiny r50]
        [--people 10 50 200 500] [--repeats 5] [--threads 1]
        [--device cpu|cuda]

One 800 x 1400 image (the CrowdHuman test size, padded to 800 x 1408), the
whole detector: backbone, FPN, head and post-processing, in PyTorch
(``model.predict``, mmdet's path) and as the graph that
``tools/deployment/export_onnx.py`` writes (onnxruntime). Detectors:
POTO and POTO + 3DMF + Aux (NMS-free), FCOS (NonMaxSuppression node), tiny
(``*_tiny_synthetic.py``) and R50 (``*_r50_crowdhuman.py``) configs with
random weights.

Untrained weights detect nothing meaningful, so the head's outputs are
steered to N people's worth of detections: the synthetic head outputs of
``bench_inference.py`` (confident points inside N crowded people, each
predicting its person's box, jittered) are added to ``1e-3`` times the real
outputs, which are still computed. In the graph these maps are extra inputs,
so one export serves every N. Both runtimes get the same maps; their
detection counts are checked equal.

``--device cuda`` runs the PyTorch side on the GPU and onnxruntime with its
CUDAExecutionProvider when the installed onnxruntime has it (the
``onnxruntime-gpu`` package); otherwise onnxruntime runs on the CPU and the
report says so. Medians of interleaved rounds (bench_utils).
"""
import argparse
import os.path as osp
import tempfile
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402
from torch import Tensor  # noqa: E402

import bench_inference  # noqa: E402
import bench_utils as bu  # noqa: E402
import mmlla  # noqa: E402,F401
from mmlla.deployment import (DEFAULT_OPSET, End2EndDetector,  # noqa: E402
                              load_detector)

# POTO has FCOS's network less the centerness conv (the NMS-free vs NMS
# comparison at equal network cost); POTO + 3DMF + Aux, the best row, adds
# 3DMF (the Aux branch is training-only).
DETECTORS = ('POTO', 'POTO+3DMF+Aux', 'FCOS+NMS')
BASELINE = 'FCOS+NMS'
CONFIGS = {
    'tiny': {
        'POTO': 'configs/poto/poto_tiny_synthetic.py',
        'POTO+3DMF+Aux': 'configs/poto/poto-3dmf-aux_tiny_synthetic.py',
        'FCOS+NMS': 'configs/fcos/fcos_tiny_synthetic.py',
    },
    'r50': {
        'POTO': 'configs/poto/poto_r50_crowdhuman.py',
        'POTO+3DMF+Aux': 'configs/poto/poto-3dmf-aux_r50_crowdhuman.py',
        'FCOS+NMS': 'configs/fcos/fcos_r50_crowdhuman.py',
    },
}
# The real head outputs' share in the steered ones (kept in the graph).
REAL_SHARE = 1e-3
QUICK_HW = (256, 448)
NUM_LEVELS = 5


def steer(outs: Sequence[List[Tensor]], maps: Sequence[Tensor]
          ) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
    """Head outputs (cls, bbox, factor lists) -> ``map + REAL_SHARE *
    output`` level by level; ``maps`` holds the 3 x 5 maps in that order.
    A head without factor (POTO without 3DMF) keeps its Nones."""
    steered = []
    for k, level_outs in enumerate(outs):
        steered.append([
            None if out is None else maps[k * NUM_LEVELS + i] +
            REAL_SHARE * out for i, out in enumerate(level_outs)
        ])
    return tuple(steered)


class SteeredGraph(torch.nn.Module):
    """What is exported: :class:`End2EndDetector` with the head outputs
    steered by extra inputs."""

    def __init__(self, wrapper: End2EndDetector) -> None:
        super().__init__()
        self.wrapper = wrapper
        self.eval()

    def forward(self, inputs: Tensor, *maps: Tensor):
        w = self.wrapper
        outs = w.head(w.detector.extract_feat(inputs))
        cls, bbox, factor = steer(outs, maps)
        return w.post_process(cls, bbox, factor,
                              (inputs.shape[2], inputs.shape[3]))


def steer_pytorch_head(head, maps_holder: Dict[str, list]) -> None:
    """Make ``head.forward`` add ``maps_holder['maps']`` to its outputs."""
    forward = head.forward

    def steered_forward(x):
        return steer(forward(x), maps_holder['maps'])

    head.forward = steered_forward


def export_steered(model, path: str, input_hw, maps: Sequence[Tensor],
                   device: str) -> None:
    graph = SteeredGraph(End2EndDetector(model))
    names = ['inputs'] + [f'map{i}' for i in range(len(maps))]
    dummy = torch.randn(1, 3, *input_hw, device=device)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(
            graph, (dummy, *maps), path, dynamo=False,
            opset_version=DEFAULT_OPSET, input_names=names,
            output_names=['dets', 'labels', 'num_dets'])


def ort_session(path: str, device: str, threads: int):
    """An onnxruntime session on CUDA when asked and available, else the
    CPU; and a note saying which."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    providers = ['CPUExecutionProvider']
    note = 'onnxruntime on the CPU'
    if device.startswith('cuda'):
        if 'CUDAExecutionProvider' in ort.get_available_providers():
            providers = ['CUDAExecutionProvider', 'CPUExecutionProvider']
            note = 'onnxruntime CUDAExecutionProvider (inputs copied from ' \
                'host memory each call)'
        else:
            note = ('onnxruntime on the CPU: this onnxruntime has no '
                    'CUDAExecutionProvider (install onnxruntime-gpu)')
    return ort.InferenceSession(path, opts, providers=providers), note


def crowd_image(img_hw, seed: int) -> Tensor:
    from mmlla.testing.synthetic_crowd import make_synthetic_image
    img, _ = make_synthetic_image(
        np.random.default_rng(seed), img_hw[1], img_hw[0], 'bench')
    return torch.from_numpy(img).permute(2, 0, 1).contiguous()


def build(config: str, device: str):
    # random weights: no ImageNet download for the R50 backbone
    model, _ = load_detector(
        osp.join(REPO, config),
        cfg_options={'model.backbone.init_cfg': None},
        device=device)
    return model


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='tiny models, a 256x448 image, 2 crowds')
    parser.add_argument('--models', nargs='+', choices=list(CONFIGS),
                        default=list(CONFIGS))
    parser.add_argument('--people', type=int, nargs='+',
                        default=[10, 50, 200, 500])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--threads', type=int, default=1,
                        help='torch and onnxruntime intra-op threads')
    parser.add_argument('--device', default='cpu',
                        help='the PyTorch side: cpu or cuda')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--work-dir', default=None,
                        help='where the graphs go (default: a temp dir)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    bu.quiet_warnings()
    torch.set_num_threads(args.threads)
    img_hw = bu.CROWDHUMAN_HW
    if args.quick:
        img_hw, args.people, args.models = QUICK_HW, [5, 20], ['tiny']
        args.repeats, args.warmup = 2, 1
    device = args.device
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise SystemExit('error: --device cuda but torch sees no GPU')
    work_dir = args.work_dir or tempfile.mkdtemp(prefix='bench_onnx_')
    results, notes = [], set()
    for size in args.models:
        models, sessions, holders = {}, {}, {}
        inputs = None
        for det, config in CONFIGS[size].items():
            model = build(config, device)
            if inputs is None:
                inputs = model.data_preprocessor(
                    dict(inputs=[crowd_image(img_hw, args.seed).to(device)]),
                    False)['inputs']
            maps = flat_maps(img_hw, args.people[0], args.seed, device)
            slug = det.lower().replace('+', '-')
            path = osp.join(work_dir, f'{size}_{slug}.onnx')
            export_steered(model, path, inputs.shape[-2:], maps, device)
            sessions[det], note = ort_session(path, device, args.threads)
            notes.add(note)
            holders[det] = dict(maps=maps)
            steer_pytorch_head(model.bbox_head, holders[det])
            models[det] = model
        height, width = inputs.shape[-2:]
        samples = [DetDataSample(metainfo=dict(
            img_shape=(height, width), ori_shape=(height, width),
            scale_factor=(1.0, 1.0)))]
        np_inputs = inputs.cpu().numpy()
        for n in args.people:
            maps = flat_maps(img_hw, n, args.seed + n, device)
            np_maps = {f'map{i}': m.cpu().numpy() for i, m in enumerate(maps)}
            runners, feeds = {}, {}
            for det in models:
                holders[det]['maps'] = maps
                # the exporter drops the maps a head does not use
                feeds[det] = {'inputs': np_inputs}
                feeds[det].update({
                    i.name: np_maps[i.name]
                    for i in sessions[det].get_inputs() if i.name in np_maps
                })
                runners[f'{det} torch'] = (
                    lambda m=models[det]: m.predict(inputs, samples,
                                                    rescale=False))
                runners[f'{det} onnx'] = (
                    lambda s=sessions[det], f=feeds[det]: s.run(None, f))
            with torch.no_grad():
                dets = {}
                for det in models:
                    dets[f'{det} torch'] = len(
                        runners[f'{det} torch']()[0].pred_instances)
                    dets[f'{det} onnx'] = int(runners[f'{det} onnx']()[2][0])
                times = bu.time_side_by_side(runners, args.repeats,
                                             args.warmup, device)
            results.append(
                dict(model=size, people=n, dets=dets, times=times,
                     same_dets=all(dets[f'{d} torch'] == dets[f'{d} onnx']
                                   for d in models)))
    report(results, args, img_hw, sorted(notes))
    return dict(results=results, notes=sorted(notes))


def flat_maps(img_hw, people: int, seed: int, device: str) -> List[Tensor]:
    """bench_inference's head outputs for ``people``: 5 class-logit, 5
    distance and 5 factor-logit maps, in that order."""
    (cls, dist, quality), _ = bench_inference.make_outputs(
        img_hw, people, seed, device)
    return [*cls, *dist, *quality]


def report(results, args, img_hw, notes) -> None:
    print(f'\nMachine: {bu.machine_line()}; PyTorch on {args.device}; '
          + '; '.join(notes) + f'; {args.threads} thread(s) each\n')
    for size in dict.fromkeys(r['model'] for r in results):
        rows = [r for r in results if r['model'] == size]
        print(f'### {size} models, one {img_hw[0]}x{img_hw[1]} image, end '
              'to end\n')
        print(f'Median ms per image over {args.repeats} interleaved rounds. '
              '"torch / onnx": PyTorch time over onnxruntime time (> 1: the '
              f'graph is faster); "{BASELINE} / this": the FCOS + NMS time '
              'over this detector\'s, in the same runtime (> 1: faster than '
              'FCOS + NMS); "dets": detections (PyTorch = onnxruntime in '
              'every row marked "same").\n')
        headers = ['people', 'detector', 'dets', 'torch ms', 'onnx ms',
                   'torch / onnx', f'{BASELINE} / this, torch',
                   f'{BASELINE} / this, onnx', 'same dets']
        table = []
        for r in rows:
            t = {k: v * 1e3 for k, v in r['times'].items()}
            for det in DETECTORS:
                if f'{det} torch' not in t:
                    continue
                table.append([
                    r['people'], det, r['dets'][f'{det} onnx'],
                    t[f'{det} torch'], t[f'{det} onnx'],
                    t[f'{det} torch'] / t[f'{det} onnx'],
                    t[f'{BASELINE} torch'] / t[f'{det} torch'],
                    t[f'{BASELINE} onnx'] / t[f'{det} onnx'],
                    'same' if r['dets'][f'{det} torch'] ==
                    r['dets'][f'{det} onnx'] else 'DIFFERENT'
                ])
        print(bu.markdown_table(headers, table) + '\n')


if __name__ == '__main__':
    main()
