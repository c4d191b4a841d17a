"""mmlla.utils.launch.teardown_distributed: the end of tools/train.py and
tools/test.py."""
import torch.distributed as dist

from mmlla.utils import teardown_distributed


def test_teardown_destroys_the_group(tmp_path):
    teardown_distributed()  # nothing started: nothing to do
    assert not dist.is_initialized()
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/pg',
                            rank=0, world_size=1)
    assert dist.is_initialized()
    teardown_distributed()
    assert not dist.is_initialized()
