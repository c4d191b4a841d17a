"""Result pickles are loaded with an allow-list: a pickle that would run code
is refused (naming the file and the global) before anything runs, and what
``tools/test.py --out`` writes still loads and scores."""
import builtins
import collections
import importlib.util
import io
import os
import os.path as osp
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from crowdhuman_cases import random_case, write_odgt  # noqa: E402

from mmlla.evaluation import CrowdHumanMRMetric  # noqa: E402
from mmlla.evaluation.functional import (UnsafePickleError,  # noqa: E402
                                         load_results_pickle,
                                         loads_results_pickle)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'analysis', 'eval_crowdhuman.py')


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('eval_crowdhuman_safe',
                                                  TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Call:
    """Pickles as ``fn(*args)``: what a malicious pickle makes load run."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _payloads(marker):
    """(name, object whose unpickling would create ``marker``)."""
    code = f'open({str(marker)!r}, "w").write("pwned")'
    return [
        ('os.system', _Call(os.system, f'touch {marker}'), r'(posix|os|nt)'
         r'\.system'),
        ('subprocess', _Call(subprocess.call, ['touch', str(marker)]),
         r'subprocess\.call'),
        ('exec', _Call(builtins.exec, code), r'builtins\.exec'),
        ('eval', _Call(builtins.eval, code), r'builtins\.eval'),
    ]


def _as_results(payload):
    """The payload hidden inside an otherwise well-formed result list."""
    return [dict(img_id='a', ori_shape=(10, 10), pred_instances=dict(
        bboxes=torch.zeros(0, 4), scores=torch.zeros(0),
        labels=payload))]


@pytest.mark.parametrize('protocol', [2, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize('kind', ['os.system', 'subprocess', 'exec', 'eval'])
def test_code_running_pickle_is_refused_before_running(tmp_path, kind,
                                                       protocol):
    marker = tmp_path / 'marker'
    _, payload, refused = {p[0]: p for p in _payloads(marker)}[kind]
    path = tmp_path / 'evil.pkl'
    path.write_bytes(pickle.dumps(_as_results(payload), protocol=protocol))
    with pytest.raises(UnsafePickleError,
                       match=rf'evil\.pkl: refused global {refused}'):
        load_results_pickle(str(path))
    assert not marker.exists()


def test_payload_inside_a_tensor_storage_is_refused(tmp_path):
    """torch pickles a tensor's storage as ``_load_from_bytes(bytes)``,
    which unpickles the bytes with ``weights_only=False``: a file can hide
    a payload there. The storage is read with ``weights_only=True``."""
    marker = tmp_path / 'marker'
    inner = pickle.dumps(_Call(os.system, f'touch {marker}'), protocol=2)

    class EvilStorage:

        def __reduce__(self):
            return torch.storage._load_from_bytes, (inner, )

    path = tmp_path / 'evil.pkl'
    path.write_bytes(pickle.dumps(_as_results(EvilStorage()), protocol=2))
    with pytest.raises(UnsafePickleError,
                       match=r'evil\.pkl: refused global (posix|os|nt)\.system'
                       r' inside a tensor storage'):
        load_results_pickle(str(path))
    assert not marker.exists()


def test_eval_tool_refuses_a_code_running_pickle(tool, tmp_path):
    records, preds = random_case(np.random.default_rng(3), 2)
    gt = write_odgt(tmp_path / 'gt.odgt', records)
    marker = tmp_path / 'marker'
    path = tmp_path / 'dets.pkl'
    path.write_bytes(pickle.dumps(_Call(os.system, f'touch {marker}')))
    with pytest.raises(UnsafePickleError,
                       match=r'dets\.pkl: refused global (posix|os|nt)\.'
                       r'system'):
        tool.main([gt, str(path)])
    assert not marker.exists()


@pytest.mark.parametrize('array,match', [
    (np.array([1, 2], dtype=object), r"numpy\.dtype with dtype '\|O'"),
    (np.zeros(2, dtype=[('a', '<f4'), ('b', '<i4')]),
     r"numpy\.dtype with dtype '\|V8'"),
    (np.array(['text']), r"numpy\.dtype with dtype '<U4'"),
    (np.array(['2020-01-01'], dtype='datetime64[D]'),
     r"numpy\.dtype with dtype '<M8'"),
])
@pytest.mark.parametrize('protocol', [2, 5])
def test_object_and_structured_dtypes_are_refused(tmp_path, array, match,
                                                  protocol):
    path = tmp_path / 'odd.pkl'
    path.write_bytes(pickle.dumps([dict(a=array)], protocol=protocol))
    with pytest.raises(UnsafePickleError, match=r'odd\.pkl: refused .*' +
                       match):
        load_results_pickle(str(path))


def test_other_classes_are_refused(tmp_path):
    # a numpy subclass, a defaultdict (its factory is a callable) and a
    # plain Python object: none is a result value
    for obj, name in [(np.ma.array([1.0]), 'numpy.ma.core'),
                      (collections.defaultdict(list), 'collections.'
                       'defaultdict'),
                      (io.BytesIO(b'x'), r'_io\.BytesIO|copyreg')]:
        with pytest.raises(UnsafePickleError, match=f'refused global '
                           f'({name})'):
            loads_results_pickle(pickle.dumps(obj, protocol=2))


@pytest.mark.parametrize('protocol', range(pickle.HIGHEST_PROTOCOL + 1))
def test_allowed_values_round_trip(protocol):
    value = [dict(
        bboxes=torch.arange(12, dtype=torch.float32).reshape(3, 4)[1:],
        labels=torch.zeros(2, dtype=torch.long),
        half=torch.ones(2, dtype=torch.float16),
        flags=torch.tensor([True, False]),
        arr=np.arange(6, dtype=np.int32).reshape(2, 3),
        fortran=np.asfortranarray(np.ones((2, 3))),
        mask=np.array([True]),
        cplx=np.array([1j], dtype=np.complex64),
        scalar=np.float64(2.5),
        size=torch.Size([2, 3]),
        dtype=torch.float32,
        ordered=collections.OrderedDict(a=1),
        misc=(1, 2.0, 3j, 'x', b'y', bytearray(b'z'), None, True,
              {1, 2}, frozenset([3])))]
    out = loads_results_pickle(pickle.dumps(value, protocol=protocol))[0]
    for key, v in value[0].items():
        if isinstance(v, torch.Tensor):
            assert out[key].dtype == v.dtype and torch.equal(out[key], v)
        elif isinstance(v, np.ndarray):
            assert out[key].dtype == v.dtype
            np.testing.assert_array_equal(out[key], v)
        else:
            assert out[key] == v
    assert out['fortran'].flags.f_contiguous


def test_not_a_pickle_is_a_clear_error(tmp_path):
    path = tmp_path / 'broken.pkl'
    path.write_bytes(pickle.dumps([1, 2, 3])[:-3])
    with pytest.raises(ValueError, match=r'broken\.pkl: not a readable '
                       'results pickle'):
        load_results_pickle(str(path))


def _dump_det_results(ds, out_file, rng):
    """What ``tools/test.py --out`` writes: the test loop's data samples
    through mmengine's Evaluator into mmdet's DumpDetResults."""
    from mmengine.evaluator import Evaluator
    from mmengine.structures import InstanceData
    evaluator = Evaluator([dict(type='DumpDetResults',
                                out_file_path=str(out_file))])
    preds = []
    for k in range(len(ds)):
        item = ds[k]
        sample = item['data_samples']
        h, w = sample.ori_shape
        # what the model and its data preprocessor add
        sample.set_metainfo(dict(batch_input_shape=(800, 1088),
                                 pad_shape=(800, 1088)))
        n = int(rng.integers(0, 12))
        xy = rng.uniform(0, [w, h], (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(5, 60, (n, 2))], 1)
        scores = rng.uniform(0, 1, n)
        sample.pred_instances = InstanceData(
            bboxes=torch.from_numpy(boxes).float(),
            scores=torch.from_numpy(scores).float(),
            labels=torch.zeros(n, dtype=torch.long))
        evaluator.process([sample], dict(inputs=[item['inputs']],
                                         data_samples=[sample]))
        preds.append((sample.img_id, (h, w),
                      sample.pred_instances.bboxes.numpy(),
                      sample.pred_instances.scores.numpy()))
    evaluator.evaluate(len(ds))
    return preds


def test_test_tool_out_pickle_still_loads_and_scores(tool, synthetic_root,
                                                     tmp_path):
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'datasets', 'crowdhuman.py'))
    ds = DATASETS.build(
        dict(type='CrowdHumanODGTDataset', data_root=synthetic_root,
             ann_file='annotation_val.odgt', test_mode=True,
             pipeline=cfg.test_pipeline))
    out = tmp_path / 'results.pkl'
    preds = _dump_det_results(ds, out, np.random.default_rng(0))
    with open(out, 'rb') as f:
        assert f.read(2) == b'\x80\x02'  # mmengine dumps with protocol 2
    gt = osp.join(synthetic_root, 'annotation_val.odgt')
    outs = tool.main([gt, str(out), '--trust-result-sizes'])
    expected = CrowdHumanMRMetric(gt).compute_metrics(
        [tuple(p) for p in preds])
    for key in ('AP50', 'mMR', 'recall'):
        assert outs['results.pkl'][key] == pytest.approx(expected[key],
                                                         abs=1e-12)
    assert outs['results.pkl']['num_predicted'] == len(ds)
