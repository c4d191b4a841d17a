#!/usr/bin/env bash
# Distributed training through torchrun and mmengine's pytorch launcher.
#   tools/dist_train.sh CONFIG GPUS [train.py options]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node, e.g.
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 tools/dist_train.sh CONFIG 8
# On a machine without CUDA, GPUS is the number of CPU processes (gloo).
# PYTHON picks the interpreter (default: python3, else python).
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
# The interpreter: $PYTHON when set (e.g. a virtualenv's python, which a
# caller can pass explicitly), else python3, else python from PATH.
if [ -z "$PYTHON" ]; then
    PYTHON=$(command -v python3 || command -v python)
fi
if [ -z "$PYTHON" ]; then
    echo "$(basename "$0"): no python3/python on PATH; set PYTHON" >&2
    exit 1
fi

# `python -m torch.distributed.run` is torchrun, run by that interpreter.
PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
