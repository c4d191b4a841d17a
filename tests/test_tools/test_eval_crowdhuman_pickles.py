"""The offline tool (tools/analysis_tools/eval_crowdhuman.py) loads result
pickles with the allow-list: a pickle that would run code is refused before
anything runs, and what ``tools/test.py --out`` writes still loads and
scores."""
import os
import os.path as osp
import pickle

import numpy as np
import pytest
import torch

from eval_tool_cases import (  # noqa: F401 (the fixture tool)
    random_case, tool, write_odgt)
from test_safe_pickle import _Call

from mmlla.evaluation import CrowdHumanMRMetric
from mmlla.evaluation.functional import UnsafePickleError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


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
