#!/usr/bin/env bash
# Distributed testing through torchrun and mmengine's pytorch launcher.
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py options]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR and PORT as for dist_train.sh;
# PYTHON picks the interpreter (default: python3, else python).
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
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
    "$(dirname "$0")/test.py" \
    "$CONFIG" \
    "$CHECKPOINT" \
    --launcher pytorch "${@:4}"
