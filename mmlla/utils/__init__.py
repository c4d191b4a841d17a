from .checkpoint import (check_checkpoint_matches_model, load_checkpoint_file,
                         register_checkpoint_safe_globals)
from .cpu_distributed import CPUCompatibleDistributedDataParallel
from .launch import format_crowdhuman_row, setup_launch_env

__all__ = [
    'CPUCompatibleDistributedDataParallel', 'check_checkpoint_matches_model',
    'format_crowdhuman_row',
    'load_checkpoint_file', 'register_checkpoint_safe_globals',
    'setup_launch_env'
]
