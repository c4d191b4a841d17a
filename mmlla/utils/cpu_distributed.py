"""Distributed data parallel on CPU processes (gloo).

mmengine 0.10.7 always passes ``device_ids=[LOCAL_RANK]`` to its DDP wrapper,
which torch rejects for a module on the CPU; this wrapper drops them there so
that ``tools/dist_train.sh CONFIG N`` also runs on a machine without CUDA.
"""
from mmengine.registry import MODEL_WRAPPERS  # the runner looks wrappers up here
from mmengine.model import MMDistributedDataParallel


@MODEL_WRAPPERS.register_module()
class CPUCompatibleDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that accepts a module on the CPU."""

    def __init__(self, module, **kwargs):
        first = next(module.parameters(), None)
        if first is not None and first.device.type == 'cpu':
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
        super().__init__(module=module, **kwargs)
