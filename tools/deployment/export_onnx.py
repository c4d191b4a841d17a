"""Export a detector, post-processing included, as one ONNX graph.

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT --out model.onnx
        [--shape H W] [--dynamic] [--batch-size 1] [--opset 17] [--verify]
        [--cfg-options KEY=VALUE ...]

The graph goes from the preprocessed image (``inputs``: (N, 3, H, W),
resized, normalised and padded as the config's test pipeline and
``DetDataPreprocessor`` do; the recipe is stored in the graph's metadata) to
``dets`` (N, K, 5: x1, y1, x2, y2, score in input pixels, by descending
score), ``labels`` (N, K) and ``num_dets`` (N,). POTO and its 3DMF / Aux rows
export NMS-free (no NMS node); LLA.FCOS, FCOS and ATSS with one standard
``NonMaxSuppression`` node. ``--shape`` defaults to the test scale, padded
(800 x 1408 for the CrowdHuman configs); ``--dynamic`` frees batch, height
and width. ``--verify`` runs onnxruntime and PyTorch on a synthetic crowd and
compares their detections. README, "Deploy".
"""
import argparse
import os.path as osp
import warnings
from typing import List, Optional

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

import mmlla  # noqa: E402,F401
from mmlla.utils.checkpoint import CheckpointError  # noqa: E402

VERIFY_BOX_TOL = 1e-3  # pixels
VERIFY_SCORE_TOL = 1e-4
VERIFY_SEED = 0


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file (.pth)')
    parser.add_argument('--out', required=True, help='the .onnx to write')
    parser.add_argument(
        '--shape', type=int, nargs=2, metavar=('H', 'W'),
        help='input height and width (multiples of the config\'s '
        'pad_size_divisor); default: the test scale, padded')
    parser.add_argument('--dynamic', action='store_true',
                        help='batch, height and width left free')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='the batch of a fixed-shape graph')
    parser.add_argument('--opset', type=int, default=None,
                        help='ONNX opset (default 17)')
    parser.add_argument('--verify', action='store_true',
                        help='compare onnxruntime with PyTorch on a '
                        'synthetic crowd image')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, KEY=VALUE')
    return parser.parse_args(argv)


def check_shape(shape: List[int], divisor: int) -> None:
    for name, side in zip(('height', 'width'), shape):
        if side <= 0:
            raise SystemExit(f'error: --shape {name} {side} must be positive')
        if divisor > 1 and side % divisor:
            raise SystemExit(
                f'error: --shape {name} {side} is not a multiple of the '
                f'config\'s pad_size_divisor {divisor}: the preprocessing '
                'pads every image to one, so the graph would never see this '
                'size')


def synthetic_input(model, hw, batch_size: int) -> torch.Tensor:
    """A synthetic crowd of the input size, through the data preprocessor."""
    from mmlla.testing.synthetic_crowd import make_synthetic_image
    imgs = []
    for i in range(batch_size):
        img, _ = make_synthetic_image(
            np.random.default_rng([VERIFY_SEED, i]), hw[1], hw[0], 'verify')
        imgs.append(torch.from_numpy(img).permute(2, 0, 1).contiguous())
    device = next(model.parameters()).device
    return model.data_preprocessor(
        dict(inputs=[im.to(device) for im in imgs]), False)['inputs']


def verify(model, path: str, inputs: torch.Tensor) -> str:
    """onnxruntime vs the PyTorch model's own ``predict`` (boxes in input
    pixels); raises SystemExit when they differ."""
    import onnxruntime as ort
    from mmdet.structures import DetDataSample
    height, width = inputs.shape[-2:]
    samples = [
        DetDataSample(metainfo=dict(img_shape=(height, width),
                                    ori_shape=(height, width),
                                    scale_factor=(1.0, 1.0)))
        for _ in range(len(inputs))
    ]
    with torch.no_grad():
        ref = model.predict(inputs, samples, rescale=False)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    dets, labels, num = session.run(None, {'inputs': inputs.cpu().numpy()})
    from mmlla.deployment import same_detections
    lines = []
    for i, sample in enumerate(ref):
        pred = sample.pred_instances
        n = int(num[i])
        ok = same_detections(dets[i], labels[i], n,
                             pred.bboxes.cpu().numpy(),
                             pred.scores.cpu().numpy(),
                             pred.labels.cpu().numpy(), VERIFY_BOX_TOL,
                             VERIFY_SCORE_TOL)
        lines.append(f'image {i}: onnxruntime {n} detections, PyTorch '
                     f'{len(pred)}: {"same" if ok else "DIFFERENT"}')
        if not ok:
            raise SystemExit('error: verification failed: ' +
                             '; '.join(lines))
    return '; '.join(lines)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    warnings.filterwarnings('ignore', message=r'.*torch\.meshgrid.*')
    try:
        import onnx  # noqa: F401
        if args.verify:
            import onnxruntime  # noqa: F401
    except ImportError as e:
        raise SystemExit(
            f'error: {e.name} is not installed: pip install -r '
            'requirements/deploy.txt (or pip install -e .[deploy])') from None
    from mmlla.deployment import (DEFAULT_OPSET, NMS_OP, PREPROCESS_KEY,
                                  NotExportableError, check_exportable,
                                  default_input_hw, export_onnx,
                                  load_detector, onnx_op_types,
                                  preprocess_spec)
    for path, what in ((args.config, 'config'), (args.checkpoint,
                                                 'checkpoint')):
        if not osp.isfile(path):
            raise SystemExit(f'error: {what} {path} not found')
    if args.batch_size < 1:
        raise SystemExit('error: --batch-size must be >= 1')
    try:
        model, cfg = load_detector(args.config, args.checkpoint,
                                   args.cfg_options)
        check_exportable(model)
        spec = preprocess_spec(cfg, args.config)
    except (NotExportableError, CheckpointError) as e:
        raise SystemExit(f'error: cannot export {args.config}: {e}') from None
    if args.shape:
        check_shape(args.shape, spec['pad_size_divisor'])
        hw = tuple(args.shape)
    else:
        hw = default_input_hw(spec)
    metadata = {
        PREPROCESS_KEY: spec,
        'mmlla.config': osp.basename(args.config),
        'mmlla.input': 'dynamic' if args.dynamic else
        [args.batch_size, 3, *hw],
    }
    opset = args.opset or DEFAULT_OPSET
    wrapper = export_onnx(model, args.out, hw, dynamic=args.dynamic,
                          batch_size=args.batch_size, opset=opset,
                          metadata=metadata)
    ops = onnx_op_types(args.out)
    nms = 'with NMS (NonMaxSuppression)' if NMS_OP in ops else 'NMS-free'
    if wrapper.with_nms != (NMS_OP in ops):
        raise SystemExit(f'error: {args.out}: the graph\'s NMS nodes do not '
                         'match test_cfg.nms')
    shape = ('dynamic (batch, height, width)' if args.dynamic else
             f'{args.batch_size}x3x{hw[0]}x{hw[1]}')
    print(f'{args.out}: {nms}, input {shape}, opset {opset}, '
          f'{len(ops)} operator types')
    result = dict(out=args.out, ops=ops, with_nms=wrapper.with_nms,
                  input_hw=hw)
    if args.verify:
        inputs = synthetic_input(model, hw, args.batch_size)
        result['verify'] = verify(model, args.out, inputs)
        print(f'verified on a synthetic crowd: {result["verify"]}')
    return result


if __name__ == '__main__':
    main()
