"""Detect people in an image with an exported ONNX graph; onnxruntime only.

    python demo/onnx_demo.py IMAGE model.onnx [--out OUT.jpg]
        [--score-thr 0.5] [--save-pred PRED.json]

Needs numpy, OpenCV and onnxruntime, not torch (nor mmcv / mmdet): the
preprocessing of the config the graph was exported from (test-pipeline
resize, mean / std, padding) is read from the graph's metadata
(``tools/deployment/export_onnx.py`` stores it) and reproduced here:

1. the image is read by OpenCV (BGR) and resized as mmdet's ``Resize``
   does (``keep_ratio``: by ``min(long_max / long, short_max / short)``,
   sides rounded, bilinear);
2. normalised (``(x - mean) / std``, channels flipped if ``bgr_to_rgb``)
   and padded at the bottom and right: to the graph's fixed input size, or
   to a multiple of ``pad_size_divisor`` for a ``--dynamic`` graph. A
   fixed-size graph that the resized image does not fit is refused, naming
   the sizes (export it with ``--dynamic`` or another ``--shape``);
3. the graph's boxes (input pixels) are scaled back by ``1 / scale_factor``,
   clipped to the image and emptied boxes dropped, as mmlla's heads do with
   ``rescale=True``.

Draws the detections scoring at least ``--score-thr`` and writes the picture
(default ``outputs/onnx_vis/<image name>``).
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

PREPROCESS_KEY = 'mmlla.preprocess'
SCORE_THR = 0.5
BOX_COLOR = (0, 200, 255)  # BGR
OUT_DIR = osp.join('outputs', 'onnx_vis')


class DemoError(ValueError):
    """An input the demo cannot run; the message says why."""


def rescale_size(width: int, height: int,
                 scale: Sequence[int]) -> Tuple[int, int]:
    """mmcv's ``rescale_size`` for ``keep_ratio``: the largest size that
    fits ``max(scale)`` on the long side and ``min(scale)`` on the short
    one, sides rounded half up.

    Returns:
        tuple[int, int]: (new width, new height).
    """
    long_max, short_max = max(scale), min(scale)
    factor = min(long_max / max(width, height),
                 short_max / min(width, height))
    return int(width * factor + 0.5), int(height * factor + 0.5)


def resize(img: np.ndarray,
           spec: Dict) -> Tuple[np.ndarray, Tuple[float, float]]:
    """The test pipeline's ``Resize``.

    Returns:
        tuple: the resized image and ``scale_factor`` (w, h) as mmdet
        records it (new size over old size, per axis).
    """
    height, width = img.shape[:2]
    if spec['keep_ratio']:
        new_w, new_h = rescale_size(width, height, spec['resize_scale'])
    else:
        new_w, new_h = spec['resize_scale']
    if spec.get('interpolation', 'bilinear') != 'bilinear':
        raise DemoError(f'interpolation {spec["interpolation"]!r} is not '
                        'reproduced by this demo (bilinear only)')
    out = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return out, (new_w / width, new_h / height)


def graph_input_hw(input_shape: Sequence) -> Optional[Tuple[int, int]]:
    """The fixed (H, W) of the graph's input, or None when dynamic."""
    height, width = input_shape[2], input_shape[3]
    if isinstance(height, int) and isinstance(width, int):
        return height, width
    return None


def preprocess(img: np.ndarray, spec: Dict, input_shape: Sequence
               ) -> Tuple[np.ndarray, Tuple[float, float]]:
    """Image (H, W, 3) BGR uint8 -> the graph's (1, 3, H', W') input.

    Raises:
        DemoError: a fixed-size graph the resized image does not fit, or a
            fixed batch other than 1.
    """
    resized, scale_factor = resize(img, spec)
    x = resized.astype(np.float32)
    if spec['bgr_to_rgb']:
        x = x[..., ::-1]
    x = (x - np.asarray(spec['mean'], np.float32)) / np.asarray(
        spec['std'], np.float32)
    height, width = x.shape[:2]
    fixed = graph_input_hw(input_shape)
    if isinstance(input_shape[0], int) and input_shape[0] != 1:
        raise DemoError(f'the graph takes a fixed batch of {input_shape[0]} '
                        'images; this demo feeds one (export with '
                        '--batch-size 1 or --dynamic)')
    if fixed is None:
        div = max(1, spec['pad_size_divisor'])
        target = (-(-height // div) * div, -(-width // div) * div)
    else:
        if height > fixed[0] or width > fixed[1]:
            src_h, src_w = img.shape[:2]
            raise DemoError(
                f'the graph takes a fixed {fixed[0]}x{fixed[1]} input (H x '
                f'W); this {src_h}x{src_w} image resizes to {height}x{width} '
                f'under the config\'s test pipeline (Resize scale='
                f'{tuple(spec["resize_scale"])}, keep_ratio='
                f'{spec["keep_ratio"]}), which does not fit. Export the '
                'graph with --dynamic, or with --shape covering '
                f'{height} {width}')
        target = fixed
    padded = np.full((target[0], target[1], 3), spec['pad_value'],
                     np.float32)
    padded[:height, :width] = x
    return np.ascontiguousarray(padded.transpose(2, 0, 1)[None]), \
        scale_factor


def postprocess(dets: np.ndarray, labels: np.ndarray, num: int,
                scale_factor: Tuple[float, float],
                ori_hw: Tuple[int, int]) -> Dict[str, np.ndarray]:
    """One image's graph output -> detections in the original image.

    Boxes times ``1 / scale_factor`` (mmdet's ``scale_boxes``), clipped to
    ``[0, W] x [0, H]``, empty ones dropped (after the graph's top-k, as
    the heads do).

    Returns:
        dict: ``bboxes`` (n, 4), ``scores`` (n,), ``labels`` (n,).
    """
    boxes = dets[:num, :4].astype(np.float32)
    scores = dets[:num, 4]
    labels = labels[:num]
    inv = np.asarray([1 / scale_factor[0], 1 / scale_factor[1]] * 2,
                     np.float32)
    boxes = boxes * inv
    height, width = ori_hw
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return dict(bboxes=boxes[keep], scores=scores[keep], labels=labels[keep])


def draw(img: np.ndarray, result: Dict[str, np.ndarray],
         score_thr: float) -> Tuple[np.ndarray, int]:
    """Boxes and scores of the detections scoring >= ``score_thr``."""
    out = img.copy()
    shown = 0
    for box, score in zip(result['bboxes'], result['scores']):
        if score < score_thr:
            continue
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), BOX_COLOR, 2)
        cv2.putText(out, f'{score:.2f}', (x1, max(y1 - 3, 10)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, BOX_COLOR, 1)
        shown += 1
    return out, shown


def load_session(model: str):
    """An onnxruntime session and the graph's preprocessing recipe.

    Raises:
        DemoError: a file that is not an ONNX graph exported by
            ``tools/deployment/export_onnx.py``.
    """
    import onnxruntime as ort
    if not osp.isfile(model):
        raise DemoError(f'{model} not found')
    try:
        session = ort.InferenceSession(model,
                                       providers=['CPUExecutionProvider'])
    except Exception as e:  # onnxruntime raises its own exception types
        raise DemoError(f'{model} is not a readable ONNX graph: '
                        f'{type(e).__name__}: {e}') from None
    meta = session.get_modelmeta().custom_metadata_map
    if PREPROCESS_KEY not in meta:
        raise DemoError(f'{model} has no {PREPROCESS_KEY} metadata: export '
                        'it with tools/deployment/export_onnx.py')
    return session, json.loads(meta[PREPROCESS_KEY])


def detect(image: str, model: str) -> Dict[str, np.ndarray]:
    """Run the graph ``model`` on the image file ``image``.

    Returns:
        dict: ``bboxes`` (n, 4) in the image's pixels, ``scores``,
        ``labels``, by descending score.
    """
    session, spec = load_session(model)
    img = cv2.imread(image, cv2.IMREAD_COLOR)
    if img is None:
        raise DemoError(f'{image} is not an image OpenCV can read')
    graph_in = session.get_inputs()[0]
    x, scale_factor = preprocess(img, spec, graph_in.shape)
    dets, labels, num = session.run(None, {graph_in.name: x})
    result = postprocess(dets[0], labels[0], int(num[0]), scale_factor,
                         img.shape[:2])
    result['image'] = img
    return result


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('image', help='an image file')
    parser.add_argument('model', help='a graph from export_onnx.py')
    parser.add_argument('--out', help='the picture to write (default '
                        f'{OUT_DIR}/<image name>)')
    parser.add_argument('--score-thr', type=float, default=SCORE_THR,
                        help='draw detections scoring at least this')
    parser.add_argument('--save-pred', help='also write the detections '
                        '(all of them) to this json file')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Dict[str, np.ndarray]:
    args = parse_args(argv)
    if not osp.isfile(args.image):
        raise SystemExit(f'error: {args.image} not found')
    try:
        result = detect(args.image, args.model)
    except DemoError as e:
        raise SystemExit(f'error: {e}') from None
    picture, shown = draw(result.pop('image'), result, args.score_thr)
    out = args.out or osp.join(OUT_DIR, osp.basename(args.image))
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    if not cv2.imwrite(out, picture):
        raise SystemExit(f'error: could not write {out} (extension?)')
    print(f'{len(result["scores"])} detections, {shown} scoring >= '
          f'{args.score_thr:g} drawn: {out}')
    if args.save_pred:
        with open(args.save_pred, 'w') as f:
            json.dump({k: v.tolist() for k, v in result.items()}, f)
        print(f'detections (json): {args.save_pred}')
    return result


if __name__ == '__main__':
    main()
