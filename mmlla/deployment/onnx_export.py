"""Export a config + checkpoint as one ONNX graph (``tools/deployment/
export_onnx.py``), and read such a graph back.

The exporter is torch's TorchScript-based one (``torch.onnx.export(...,
dynamo=False)``): it needs no package beyond ``onnx`` (for the metadata and
the check), honours the ``symbolic`` of :class:`~.onnx_nms.ONNXNMSOp`, and
traces the data-independent post-processing of :class:`End2EndDetector`
into a graph that serves any batch and image size with ``--dynamic``. The
``torch.export``-based exporter (the default since torch 2.9) needs
``onnxscript`` and a custom translation for NMS, for no gain here.

The graph's input is what mmdet's ``DetDataPreprocessor`` gives the model
(resized, normalised, padded); how to make it from an image (the test
pipeline's resize, mean / std, channel order, padding) is stored in the
graph's metadata under ``mmlla.preprocess``, so that a runtime without
torch can reproduce it (``demo/onnx_demo.py``).
"""
import json
import math
import os
import os.path as osp
import warnings
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import _load_checkpoint_to_model

from ..utils.checkpoint import (check_state_matches_model, get_state_dict,
                                load_checkpoint_file)
from .end2end_detector import (End2EndDetector, NotExportableError,
                               check_exportable)

# Opset 17: NonMaxSuppression (10), TopK with a computed k (10), and every
# op of the backbones; run by onnxruntime >= 1.12 and TensorRT >= 8.5.
DEFAULT_OPSET = 17
INPUT_NAME = 'inputs'
OUTPUT_NAMES = ('dets', 'labels', 'num_dets')
PREPROCESS_KEY = 'mmlla.preprocess'
POSTPROCESS_KEY = 'mmlla.postprocess'
NMS_OP = 'NonMaxSuppression'


def load_detector(config: str,
                  checkpoint: Optional[str] = None,
                  cfg_options: Optional[Dict[str, Any]] = None,
                  device: str = 'cpu') -> Tuple[torch.nn.Module, Config]:
    """Build ``config``'s detector, check that it can be exported, and load
    ``checkpoint`` weights-only.

    Args:
        config (str): config file.
        checkpoint (str, optional): checkpoint file (``.pth``); None keeps
            the initial weights (tests, benchmarks).
        cfg_options (dict, optional): merged into the config.
        device (str): where the model goes.

    Returns:
        tuple: the detector in eval mode and the config.

    Raises:
        NotExportableError: see :func:`check_exportable` (before the
            checkpoint is read).
        mmlla.utils.CheckpointError: an unreadable checkpoint, or one of
            another model (mmengine would only log missing weights).
    """
    from mmdet.registry import MODELS
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    check_exportable(model)
    if checkpoint is None:
        model.init_weights()
    else:
        ckpt = load_checkpoint_file(checkpoint)
        state = get_state_dict(checkpoint, ckpt)
        check_state_matches_model(checkpoint, state, model)
        _load_checkpoint_to_model(model, ckpt, strict=False)
    return model.to(device).eval(), cfg


def _find_resize(pipeline: Sequence[dict], config: str) -> dict:
    resizes = [t for t in pipeline if t.get('type') in ('Resize',
                                                        'mmdet.Resize')]
    if len(resizes) != 1:
        raise NotExportableError(
            f'{config}: test_pipeline has {len(resizes)} Resize steps; the '
            'deployment preprocessing reproduces exactly one (mmdet Resize '
            'with scale=(w, h))')
    resize = resizes[0]
    scale = resize.get('scale')
    if (not isinstance(scale, (tuple, list)) or len(scale) != 2
            or resize.get('scale_factor') is not None):
        raise NotExportableError(
            f'{config}: test_pipeline Resize needs scale=(w, h) (got '
            f'scale={scale!r}, scale_factor={resize.get("scale_factor")!r})')
    return resize


def preprocess_spec(cfg: Config, config: str = 'config') -> Dict[str, Any]:
    """How an image becomes the graph's input, from the config.

    The test pipeline's ``Resize`` (``scale=(w, h)``, ``keep_ratio``:
    mmcv's ``imrescale`` rule, bilinear) and the ``DetDataPreprocessor``
    (``mean``, ``std``, ``bgr_to_rgb``, padding at the bottom and right to
    ``pad_size_divisor`` with ``pad_value``).

    Raises:
        NotExportableError: a preprocessing that cannot be described so.
    """
    pipeline = cfg.get('test_pipeline') or cfg.test_dataloader.dataset.get(
        'pipeline', [])
    resize = _find_resize(pipeline, config)
    pre = cfg.model.get('data_preprocessor', {})
    if pre.get('type', 'DetDataPreprocessor') not in (
            'DetDataPreprocessor', 'mmdet.DetDataPreprocessor'):
        raise NotExportableError(
            f'{config}: data_preprocessor {pre.get("type")} is not '
            'DetDataPreprocessor; its preprocessing is not reproduced')
    mean = [float(v) for v in pre.get('mean', [0.0, 0.0, 0.0])]
    std = [float(v) for v in pre.get('std', [1.0, 1.0, 1.0])]
    return dict(
        resize_scale=[int(s) for s in resize['scale']],  # (w, h)
        keep_ratio=bool(resize.get('keep_ratio', False)),
        interpolation=resize.get('interpolation', 'bilinear'),
        color_order='bgr',  # images are loaded by OpenCV (mmcv)
        bgr_to_rgb=bool(pre.get('bgr_to_rgb', False)),
        mean=mean,
        std=std,
        pad_size_divisor=int(pre.get('pad_size_divisor', 1)),
        pad_value=float(pre.get('pad_value', 0)),
        boxes='input pixels: divide x by scale_factor[0], y by '
        'scale_factor[1], then clip to the original image and drop empty '
        'boxes')


def default_input_hw(spec: Dict[str, Any]) -> Tuple[int, int]:
    """A landscape input of the test scale, padded: CrowdHuman's
    ``scale=(1400, 800)`` gives (800, 1408)."""
    w, h = spec['resize_scale']
    short, long = sorted((w, h))
    div = max(1, spec['pad_size_divisor'])
    return (int(math.ceil(short / div) * div),
            int(math.ceil(long / div) * div))


def export_onnx(model: torch.nn.Module,
                out: str,
                input_hw: Tuple[int, int],
                dynamic: bool = False,
                batch_size: int = 1,
                opset: int = DEFAULT_OPSET,
                metadata: Optional[Dict[str, Any]] = None) -> End2EndDetector:
    """Export ``model`` with its post-processing as one graph.

    Args:
        model (nn.Module): a detector :func:`check_exportable` accepts.
        out (str): the ``.onnx`` file to write.
        input_hw (tuple[int, int]): the traced input size; the graph's fixed
            size unless ``dynamic``.
        dynamic (bool): batch, height and width left free.
        batch_size (int): the traced (and, fixed, the graph's) batch size.
        opset (int): ONNX opset.
        metadata (dict, optional): more ``metadata_props`` (values are
            stored as JSON unless strings).

    Returns:
        End2EndDetector: the exported module (for a parity check).

    Raises:
        NotExportableError: see :func:`check_exportable`.
    """
    import onnx
    wrapper = End2EndDetector(model)
    device = next(model.parameters()).device
    dummy = torch.randn(batch_size, 3, *input_hw, device=device)
    dynamic_axes = None
    if dynamic:
        dynamic_axes = {
            INPUT_NAME: {0: 'batch', 2: 'height', 3: 'width'},
            'dets': {0: 'batch', 1: 'num'},
            'labels': {0: 'batch', 1: 'num'},
            'num_dets': {0: 'batch'},
        }
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        # the tracer's notes on the heads' shape asserts and the legacy
        # exporter's deprecation notice: the parity tests are the check
        warnings.simplefilter('ignore')
        torch.onnx.export(
            wrapper, (dummy, ),
            out,
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_axes=dynamic_axes,
            do_constant_folding=True)
    graph = onnx.load(out)
    props = {POSTPROCESS_KEY: json.dumps(wrapper.describe())}
    for key, value in (metadata or {}).items():
        props[key] = value if isinstance(value, str) else json.dumps(value)
    for key, value in props.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(graph)
    onnx.save(graph, out)
    return wrapper


def same_detections(dets: np.ndarray, labels: np.ndarray, num: int,
                    ref_boxes: np.ndarray, ref_scores: np.ndarray,
                    ref_labels: np.ndarray, box_tol: float,
                    score_tol: float) -> bool:
    """Whether one image's graph outputs are a reference's detections.

    Same count, and every graph detection has a twin (same label, box
    within ``box_tol`` px, score within ``score_tol``), taken greedily in
    score order: runtimes differ in the last bits, so near ties may swap
    ranks.

    Args:
        dets (np.ndarray): (K, 5) graph rows; labels (K,); num: the rows
            that are detections.
        ref_boxes (np.ndarray): (n, 4); ref_scores (n,); ref_labels (n,).
    """
    if int(num) != len(ref_scores):
        return False
    free = np.ones(len(ref_scores), bool)
    for i in range(int(num)):
        close = (free & (ref_labels == labels[i]) &
                 (np.abs(ref_scores - dets[i, 4]) <= score_tol) &
                 (np.abs(ref_boxes - dets[i, :4]).max(axis=1) <= box_tol))
        if not close.any():
            return False
        free[np.argmax(close)] = False
    return True


def onnx_op_types(path: str) -> Set[str]:
    """Every operator type in the graph at ``path``, subgraphs included."""
    import onnx

    def walk(graph) -> List[str]:
        ops = []
        for node in graph.node:
            ops.append(node.op_type)
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    ops += walk(attr.g)
                for sub in attr.graphs:
                    ops += walk(sub)
        return ops

    return set(walk(onnx.load(path).graph))


def read_metadata(path: str) -> Dict[str, Any]:
    """The ``mmlla.*`` metadata of an exported graph, JSON decoded."""
    import onnx
    model = onnx.load(path, load_external_data=False)
    out = {}
    for prop in model.metadata_props:
        if prop.key.startswith('mmlla.'):
            try:
                out[prop.key] = json.loads(prop.value)
            except ValueError:
                out[prop.key] = prop.value
    return out
