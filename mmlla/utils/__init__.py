from .checkpoint import (CheckpointError, UnreadableCheckpointError,
                         check_checkpoint_matches_model,
                         check_resume_checkpoint, load_checkpoint_file,
                         register_checkpoint_safe_globals)
from .cpu_distributed import CPUCompatibleDistributedDataParallel
from .hooks import AtomicCheckpointHook, NonFiniteLossError, NonFiniteLossHook
from .launch import setup_launch_env, teardown_distributed
from .runner_safety import (apply_training_safety, protect_runner,
                            read_checkpoint, resume_candidates)

__all__ = [
    'AtomicCheckpointHook', 'CPUCompatibleDistributedDataParallel',
    'CheckpointError', 'UnreadableCheckpointError', 'NonFiniteLossError',
    'NonFiniteLossHook', 'apply_training_safety',
    'check_checkpoint_matches_model', 'check_resume_checkpoint',
    'load_checkpoint_file', 'protect_runner',
    'read_checkpoint', 'register_checkpoint_safe_globals',
    'resume_candidates', 'setup_launch_env', 'teardown_distributed'
]
