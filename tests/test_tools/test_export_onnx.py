"""ONNX deployment: the exported graph gives the PyTorch detections.

Tiny models on synthetic crowd images, CPU. The classification bias is
raised so that a randomly initialised model detects a few hundred boxes per
image (with the prior-probability bias, nothing passes score_thr), which
exercises every rule: level top-k (P3 has more points than nms_pre allows
here), score threshold, NMS, the final top-k, clipping.
"""
import importlib.util
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO_ROOT

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')

from mmdet.structures import DetDataSample  # noqa: E402

from mmlla.testing.synthetic_crowd import make_synthetic_image  # noqa: E402
from mmengine.config import Config  # noqa: E402

from mmlla.deployment import (PREPROCESS_KEY, End2EndDetector,  # noqa: E402
                              NotExportableError, export_onnx, load_detector,
                              onnx_op_types, preprocess_spec, read_metadata)

BOX_TOL = 1e-3  # pixels
SCORE_TOL = 1e-4
CLS_BIAS = -1.0
NMS_FREE = {
    'poto': 'configs/poto/poto_tiny_synthetic.py',
    'poto-3dmf': 'configs/poto/poto-3dmf_tiny_synthetic.py',
    'poto-3dmf-aux': 'configs/poto/poto-3dmf-aux_tiny_synthetic.py',
}
WITH_NMS = {
    'lla': 'configs/lla/lla_tiny_synthetic.py',
    'fcos': 'configs/fcos/fcos_tiny_synthetic.py',
    'atss': 'configs/atss/atss_tiny_synthetic.py',
}
CONFIGS = {**NMS_FREE, **WITH_NMS}
# (width, height) of the synthetic crowds: the tiny configs' test size
# padded (the fixed graphs' input), and two other sizes for dynamic graphs
FIXED_WH = (320, 256)
OTHER_WH = ((288, 224), (384, 192))


def load_tool(path):
    # the tool's folder on sys.path, as when it runs as a script (the
    # benchmarks import their sibling bench_utils)
    folder = osp.dirname(osp.join(REPO_ROOT, path))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(
        'mmlla_tool_' + osp.basename(path)[:-3], osp.join(REPO_ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(name, seed=0, cfg_options=None):
    torch.manual_seed(seed)
    model, cfg = load_detector(
        osp.join(REPO_ROOT, CONFIGS[name]), cfg_options=cfg_options)
    with torch.no_grad():
        model.bbox_head.conv_cls.bias.fill_(CLS_BIAS)
    return model


def crowd_inputs(model, sizes, seed=0):
    """Preprocessed synthetic crowds, one per (w, h), padded to one batch."""
    imgs = [
        torch.from_numpy(
            make_synthetic_image(np.random.default_rng([seed, i]), w, h,
                                 'x')[0]).permute(2, 0, 1).contiguous()
        for i, (w, h) in enumerate(sizes)
    ]
    return model.data_preprocessor(dict(inputs=imgs), False)['inputs']


def torch_predictions(model, inputs):
    """The model's own predict, boxes in input pixels clipped to it."""
    height, width = inputs.shape[-2:]
    samples = [
        DetDataSample(metainfo=dict(img_shape=(height, width),
                                    ori_shape=(height, width),
                                    scale_factor=(1.0, 1.0)))
        for _ in range(len(inputs))
    ]
    with torch.no_grad():
        out = model.predict(inputs, samples, rescale=False)
    return [(s.pred_instances.bboxes.numpy(), s.pred_instances.scores.numpy(),
             s.pred_instances.labels.numpy()) for s in out]


def assert_same_detections(dets, labels, num, ref):
    """Graph outputs of one image vs PyTorch's (boxes, scores, labels):
    same count, and after sorting by score every detection has its twin
    (same label, boxes within BOX_TOL px, scores within SCORE_TOL). Near
    ties may swap places, so twins are found greedily, not by rank."""
    boxes, scores, ref_labels = ref
    n = int(num)
    assert n == len(scores), (n, len(scores))
    assert n > 20, 'the test needs detections to compare'
    assert (labels[n:] == -1).all() and (dets[n:] == 0).all()
    assert (np.diff(dets[:n, 4]) <= 0).all(), 'not sorted by score'
    order = np.argsort(-scores, kind='stable')
    boxes, scores, ref_labels = boxes[order], scores[order], ref_labels[
        order]
    free = np.ones(n, bool)
    for i in range(n):
        close = (free & (ref_labels == labels[i]) &
                 (np.abs(scores - dets[i, 4]) <= SCORE_TOL) &
                 (np.abs(boxes - dets[i, :4]).max(axis=1) <= BOX_TOL))
        assert close.any(), f'detection {i} {dets[i]} has no PyTorch twin'
        free[np.argmax(close)] = False


def run_graph(path, inputs):
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    return session.run(None, {'inputs': inputs.numpy()})


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """name -> (model, fixed graph, dynamic graph or None)."""
    tmp = tmp_path_factory.mktemp('onnx')
    graphs = {}
    for name, config in CONFIGS.items():
        model = build(name)
        meta = {
            PREPROCESS_KEY:
            preprocess_spec(Config.fromfile(osp.join(REPO_ROOT, config)))
        }
        fixed = str(tmp / f'{name}.onnx')
        export_onnx(model, fixed, FIXED_WH[::-1], metadata=meta)
        dynamic = None
        if name in ('poto-3dmf-aux', 'fcos'):
            dynamic = str(tmp / f'{name}_dynamic.onnx')
            export_onnx(model, dynamic, FIXED_WH[::-1], dynamic=True,
                        metadata=meta)
        graphs[name] = (model, fixed, dynamic)
    return graphs


@pytest.mark.parametrize('name', list(CONFIGS))
def test_wrapper_reproduces_head_predict(name):
    """The export module in eager PyTorch == the head's predict, batch of
    two crowds (boxes bit-exact; scores to float32 rounding, torch's sigmoid
    differs in the last bit between its vectorised and scalar paths)."""
    model = build(name, seed=1)
    inputs = crowd_inputs(model, [FIXED_WH, FIXED_WH], seed=1)
    with torch.no_grad():
        dets, labels, num = End2EndDetector(model)(inputs)
    for i, (boxes, scores, ref_labels) in enumerate(
            torch_predictions(model, inputs)):
        n = int(num[i])
        assert n == len(scores) > 20
        assert np.array_equal(dets[i, :n, :4].numpy(), boxes)
        assert np.abs(dets[i, :n, 4].numpy() - scores).max() < 1e-6
        assert np.array_equal(labels[i, :n].numpy(), ref_labels)


@pytest.mark.parametrize('name', list(CONFIGS))
def test_fixed_shape_graph_matches_pytorch(exported, name):
    model, fixed, _ = exported[name]
    inputs = crowd_inputs(model, [FIXED_WH])
    dets, labels, num = run_graph(fixed, inputs)
    assert dets.shape[:2] == labels.shape and num.shape == (1, )
    assert_same_detections(dets[0], labels[0], num[0],
                           torch_predictions(model, inputs)[0])


@pytest.mark.parametrize('name', ['poto-3dmf-aux', 'fcos'])
def test_dynamic_graph_matches_pytorch(exported, name):
    """One graph, other sizes and a batch of two."""
    model, _, dynamic = exported[name]
    for sizes in ([OTHER_WH[0]], [OTHER_WH[1], OTHER_WH[1]]):
        inputs = crowd_inputs(model, sizes, seed=2)
        assert tuple(inputs.shape[-2:]) != FIXED_WH[::-1]
        dets, labels, num = run_graph(dynamic, inputs)
        for i, ref in enumerate(torch_predictions(model, inputs)):
            assert_same_detections(dets[i], labels[i], num[i], ref)


@pytest.mark.parametrize('name', ['poto', 'fcos'])
def test_multiclass_graph_matches_pytorch(tmp_path, name):
    """Three classes: labels from the flattened (point, class) top-k, and
    mmcv's class-aware NMS by coordinate offsets."""
    model = build(name, seed=7, cfg_options={'model.bbox_head.num_classes': 3})
    path = str(tmp_path / 'three.onnx')
    export_onnx(model, path, FIXED_WH[::-1])
    inputs = crowd_inputs(model, [FIXED_WH], seed=7)
    dets, labels, num = run_graph(path, inputs)
    ref = torch_predictions(model, inputs)[0]
    assert set(ref[2].tolist()) == {0, 1, 2}
    assert_same_detections(dets[0], labels[0], num[0], ref)


def test_fixed_graph_refuses_other_sizes(exported):
    _, fixed, _ = exported['poto']
    session = ort.InferenceSession(fixed, providers=['CPUExecutionProvider'])
    with pytest.raises(Exception, match='(?i)dimension|shape'):
        session.run(None, {'inputs': np.zeros((1, 3, 224, 288), np.float32)})


def test_nms_nodes_read_from_the_graphs(exported):
    """The POTO family exports without any NMS node, the one-to-many rows
    with exactly one standard NonMaxSuppression (and no custom domain)."""
    for name, (_, fixed, dynamic) in exported.items():
        for path in filter(None, (fixed, dynamic)):
            graph = onnx.load(path).graph
            op_types = [node.op_type for node in graph.node]
            domains = {node.domain for node in graph.node}
            assert domains <= {'', 'ai.onnx'}, domains
            nms = [op for op in op_types if 'nonmax' in op.lower()
                   or 'nms' in op.lower()]
            if name in NMS_FREE:
                assert nms == [], (name, nms)
                assert 'NonMaxSuppression' not in onnx_op_types(path)
            else:
                assert nms == ['NonMaxSuppression'], (name, nms)
            meta = read_metadata(path)['mmlla.postprocess']
            assert meta['nms'].startswith(
                'none' if name in NMS_FREE else 'NonMaxSuppression')


def test_level_topk_and_max_per_img_bite():
    """Small caps make every cut count: 50 per level, 20 per image; then a
    threshold that leaves fewer than max_per_img (padding rows)."""
    model = build('poto', seed=3)
    inputs = crowd_inputs(model, [FIXED_WH], seed=3)
    model.bbox_head.test_cfg.update(nms_pre=50)
    assert len(torch_predictions(model, inputs)[0][1]) > 40  # 5 levels
    model.bbox_head.test_cfg.update(max_per_img=20)
    ref = torch_predictions(model, inputs)[0]
    with torch.no_grad():
        dets, labels, num = End2EndDetector(model)(inputs)
    # the best 20, then the boxes clipped empty dropped
    n = int(num[0])
    assert n == len(ref[1]) and 10 < n <= 20
    assert np.array_equal(dets[0, :n, :4].numpy(), ref[0])
    model.bbox_head.test_cfg.update(score_thr=float(ref[1][9]))
    ref = torch_predictions(model, inputs)[0]
    with torch.no_grad():
        dets, labels, num = End2EndDetector(model)(inputs)
    n = int(num[0])
    assert n == len(ref[1]) and 0 < n < 10
    assert np.array_equal(dets[0, :n, :4].numpy(), ref[0])
    assert (dets[0, n:] == 0).all() and (labels[0, n:] == -1).all()


def test_export_tool_and_demo(tmp_path):
    """tools/deployment/export_onnx.py with a checkpoint, then
    demo/onnx_demo.py in a fresh interpreter: no torch imported, and its
    detections in the original image are PyTorch's with rescale=True."""
    model = build('poto-3dmf-aux', seed=4)
    ckpt = tmp_path / 'poto.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    tool = load_tool('tools/deployment/export_onnx.py')
    out = str(tmp_path / 'poto.onnx')
    result = tool.main([
        CONFIGS['poto-3dmf-aux'],
        str(ckpt), '--out', out, '--dynamic', '--verify'
    ])
    assert not result['with_nms'] and 'NonMaxSuppression' not in result['ops']
    meta = read_metadata(out)
    assert meta['mmlla.preprocess']['resize_scale'] == [320, 240]
    assert meta['mmlla.input'] == 'dynamic'

    # a 300x200 picture: the pipeline resizes it to 320x213, pads to 224
    img, _ = make_synthetic_image(np.random.default_rng(5), 300, 200, 'x')
    image = str(tmp_path / 'crowd.png')
    import cv2
    cv2.imwrite(image, img)
    pred = str(tmp_path / 'pred.json')
    code = ('import runpy, sys; sys.argv = sys.argv[1:]; '
            "runpy.run_path(sys.argv[0], run_name='__main__'); "
            "assert 'torch' not in sys.modules, 'the demo imported torch'")
    proc = subprocess.run([
        sys.executable, '-c', code, 'demo/onnx_demo.py', image, out, '--out',
        str(tmp_path / 'vis.jpg'), '--save-pred', pred
    ], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert osp.isfile(tmp_path / 'vis.jpg')
    import json
    with open(pred) as f:
        demo = {k: np.asarray(v) for k, v in json.load(f).items()}

    from mmcv.transforms import Compose
    pipeline = Compose([
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(320, 240), keep_ratio=True),
        dict(type='PackDetInputs',
             meta_keys=('img_shape', 'ori_shape', 'scale_factor'))
    ])
    data = model.data_preprocessor(
        {k: [v] for k, v in pipeline(dict(img_path=image)).items()}, False)
    assert tuple(data['inputs'].shape[-2:]) == (224, 320)
    with torch.no_grad():
        ref = model.predict(data['inputs'], data['data_samples'],
                            rescale=True)[0].pred_instances
    n = len(ref)
    assert len(demo['scores']) == n > 20
    order = np.argsort(-demo['scores'], kind='stable')
    padded = np.zeros((n, 5), np.float32)
    padded[:, :4], padded[:, 4] = demo['bboxes'][order], demo['scores'][
        order]
    assert_same_detections(padded, demo['labels'][order], n,
                           (ref.bboxes.numpy(), ref.scores.numpy(),
                            ref.labels.numpy()))
    assert demo['bboxes'][:, 2].max() <= 300 and demo['bboxes'][:, 3].max(
    ) <= 200


def test_demo_refuses_an_image_the_fixed_graph_cannot_take(exported,
                                                           tmp_path):
    """A portrait picture resizes to 240 wide x 320 high under the tiny
    configs' Resize(320, 240): it does not fit the fixed 256x320 graph."""
    demo = load_tool('demo/onnx_demo.py')
    _, fixed, _ = exported['poto']
    with pytest.raises(demo.DemoError, match='does not fit'):
        demo.detect(portrait(tmp_path), fixed)
    # the same picture goes through a dynamic graph
    _, _, dynamic = exported['poto-3dmf-aux']
    result = demo.detect(portrait(tmp_path), dynamic)
    assert result['bboxes'][:, 2].max() <= 150
    with pytest.raises(SystemExit, match='no mmlla.preprocess metadata'):
        bare = str(tmp_path / 'bare.onnx')
        graph = onnx.load(fixed)
        del graph.metadata_props[:]
        onnx.save(graph, bare)
        demo.main([portrait(tmp_path), bare])


def portrait(tmp_path):
    import cv2
    path = str(tmp_path / 'portrait.png')
    if not osp.exists(path):
        img, _ = make_synthetic_image(np.random.default_rng(6), 150, 200, 'x')
        cv2.imwrite(path, img)
    return path


@pytest.mark.parametrize('config, options, message', [
    ('configs/lla/lla-retinanet_tiny_synthetic.py', None,
     'LLARetinaHead cannot be exported'),
    ('configs/fcos/fcos_tiny_synthetic.py',
     ['model.test_cfg.nms.type=soft_nms'], 'only hard NMS'),
    ('configs/fcos/fcos_tiny_synthetic.py', None,
     'holds weights of another model'),
])
def test_export_tool_refuses(tmp_path, config, options, message):
    tool = load_tool('tools/deployment/export_onnx.py')
    ckpt = tmp_path / 'any.pth'
    torch.save(dict(state_dict=dict()), ckpt)
    argv = [config, str(ckpt), '--out', str(tmp_path / 'x.onnx')]
    if options:
        argv += ['--cfg-options', *options]
    with pytest.raises(SystemExit, match=message):
        tool.main(argv)
    assert not osp.exists(tmp_path / 'x.onnx')


def test_wrapper_refuses_unexportable_heads():
    from mmlla.deployment import check_exportable
    with pytest.raises(NotExportableError, match='not a single-stage'):
        check_exportable(torch.nn.Linear(2, 2))


def test_bench_onnx_quick(capsys, tmp_path):
    """tools/benchmarks/bench_onnx.py --quick: its table, and onnxruntime
    and PyTorch agree on the detection counts of the steered crowds."""
    bench = load_tool('tools/benchmarks/bench_onnx.py')
    out = bench.main(['--quick', '--work-dir', str(tmp_path)])
    text = capsys.readouterr().out
    rows = [line for line in text.splitlines() if line.startswith('| ')
            and not line.startswith('| people')]
    assert len(rows) == 2 * 3  # 2 crowds x POTO, POTO+3DMF+Aux, FCOS+NMS
    assert all(r['same_dets'] for r in out['results']), out['results']
    assert all(n > 0 for r in out['results'] for n in r['dets'].values())
    assert out['notes'] == ['onnxruntime on the CPU']
    # --device cuda with a CPU-only onnxruntime: falls back, and says so
    if 'CUDAExecutionProvider' not in ort.get_available_providers():
        session, note = bench.ort_session(
            str(tmp_path / 'tiny_poto.onnx'), 'cuda', 1)
        assert session.get_providers() == ['CPUExecutionProvider']
        assert 'no CUDAExecutionProvider' in note
