"""Result pickles are loaded with an allow-list: a pickle that would run code
is refused (naming the file and the global) before anything runs. The offline
tool's side (it refuses such a pickle; what ``tools/test.py --out`` writes
still loads and scores) is tests/test_tools/test_eval_crowdhuman_pickles.py."""
import builtins
import collections
import io
import os
import pickle
import subprocess

import numpy as np
import pytest
import torch

from mmlla.evaluation.functional import (UnsafePickleError,
                                         load_results_pickle,
                                         loads_results_pickle)


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
