"""Shared by the tests of tools/analysis_tools/eval_crowdhuman.py: the
tool as a module (fixture ``tool``) and the metric tests' CrowdHuman cases."""
import importlib.util
import os.path as osp
import sys

import pytest

TESTS = osp.dirname(osp.dirname(osp.abspath(__file__)))
# the CrowdHuman cases of the metric's tests (crowdhuman_cases.py)
sys.path.insert(0, osp.join(TESTS, 'test_evaluation'))

from crowdhuman_cases import random_case, write_odgt  # noqa: E402,F401

EVAL_CROWDHUMAN = osp.join(
    osp.dirname(TESTS), 'tools', 'analysis_tools', 'eval_crowdhuman.py')


@pytest.fixture(scope='module')
def tool():
    """tools/analysis_tools/eval_crowdhuman.py as a module (tools/ is no
    package)."""
    spec = importlib.util.spec_from_file_location('eval_crowdhuman',
                                                  EVAL_CROWDHUMAN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
