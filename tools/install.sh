#!/usr/bin/env bash
# One-command set-up of mmlla on a fresh machine (Linux, Python 3.8-3.11).
#
#     bash tools/install.sh [--wheels DIR] [--venv DIR | --no-venv]
#                           [--cpu | --cuda] [--torch VERSION] [--python PY]
#
# What it does, in order (each step says what it chose):
#   1. Python environment: the active virtualenv if there is one, else
#      `.venv/` in the repository (created with PY, default `python3`);
#      `--venv DIR` picks another folder, `--no-venv` uses PY as it is.
#   2. torch: kept if the environment already has one. Otherwise
#      - with an NVIDIA GPU (`nvidia-smi` works, or `--cuda`): torch 2.1.2
#        for CUDA 12.1 (11.8 for older drivers) from PyTorch's index, the
#        newest torch that OpenMMLab ships prebuilt mmcv 2.1.0 for;
#      - without one (or `--cpu`): torch 2.13.0 (2.1.2 on Python < 3.10), the
#        CPU build. If pip's own configuration already resolves
#        `torch==VERSION` to a `+cpu` build (a local wheel folder or mirror,
#        or `--wheels DIR`; checked with `pip install --dry-run`, nothing
#        downloaded), that is installed as is; otherwise `torch==VERSION+cpu`
#        from PyTorch's CPU index (https://download.pytorch.org/whl/cpu).
#        Never PyPI's plain Linux torch: that is the CUDA build (several GB),
#        which a CPU-built mmcv does not fit.
#   3. mmcv 2.1.0 with compiled ops (PyPI only has its source), first that
#      works of:
#      a. a wheel in `--wheels DIR` / $MMLLA_WHEELS (checked by importing
#         mmcv.ops against the installed torch; a misfit is uninstalled);
#      b. a wheel this script built before, cached in
#         $MMLLA_CACHE (default ~/.cache/mmlla/wheels/<python>-torch<version>/);
#      c. OpenMMLab's prebuilt wheels (what `mim install mmcv==2.1.0` uses),
#         which exist for torch 2.0/2.1 only; skipped quietly when that
#         server cannot be reached;
#      d. a build from source, once: 9-18 minutes on 2 idle CPU cores, with
#         a progress line every 30 s (77 compile steps). It runs in a
#         temporary virtualenv that sees the installed torch, with the build tools mmcv 2.1.0 needs
#         (setuptools<70 for pkg_resources, wheel, ninja) kept out of your
#         environment, so pip has no conflict to report; the wheel is
#         cached (b) for the next install.
#   4. the pinned rest (requirements.txt; numpy<2 with torch < 2.3), the
#      ONNX deployment extras (requirements/deploy.txt, = `.[deploy]`) and
#      mmlla itself (`pip install -e .`), then `import mmcv.ops, mmdet, mmlla`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MMCV_VERSION=2.1.0
WHEELS="${MMLLA_WHEELS:-}"
VENV=""
NO_VENV=0
DEVICE=auto
TORCH_VERSION=""
PY="${PYTHON:-python3}"
CACHE_ROOT="${MMLLA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmlla/wheels}"
OPENMMLAB_URL="https://download.openmmlab.com/mmcv/dist"
PYTORCH_URL="https://download.pytorch.org/whl"

usage() { sed -n '2,40p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
say() { printf '[install] %s\n' "$*"; }
die() { printf '[install] ERROR: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --wheels) WHEELS="${2:?--wheels needs a folder}"; shift 2 ;;
        --wheels=*) WHEELS="${1#*=}"; shift ;;
        --venv) VENV="${2:?--venv needs a folder}"; shift 2 ;;
        --venv=*) VENV="${1#*=}"; shift ;;
        --no-venv) NO_VENV=1; shift ;;
        --cpu) DEVICE=cpu; shift ;;
        --cuda) DEVICE=cuda; shift ;;
        --torch) TORCH_VERSION="${2:?--torch needs a version}"; shift 2 ;;
        --torch=*) TORCH_VERSION="${1#*=}"; shift ;;
        --python) PY="${2:?--python needs an interpreter}"; shift 2 ;;
        --python=*) PY="${1#*=}"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option $1 (see: bash tools/install.sh --help)" ;;
    esac
done

START=$(date +%s)
SUMMARY=()
note() { SUMMARY+=("$*"); say "$*"; }

if [ -n "$WHEELS" ]; then
    [ -d "$WHEELS" ] || die "--wheels $WHEELS: no such folder"
    WHEELS="$(cd "$WHEELS" && pwd)"
fi

# ---------------------------------------------------------------- 1. Python
if [ "$NO_VENV" = 1 ]; then
    command -v "$PY" >/dev/null || die "no $PY on PATH (--python PY)"
elif [ -z "$VENV" ] && [ -n "${VIRTUAL_ENV:-}" ]; then
    PY="$VIRTUAL_ENV/bin/python"
    note "environment: the active virtualenv $VIRTUAL_ENV"
else
    VENV="${VENV:-$ROOT/.venv}"
    if [ -x "$VENV/bin/python" ]; then
        note "environment: existing virtualenv $VENV"
    else
        command -v "$PY" >/dev/null || die "no $PY on PATH (--python PY)"
        "$PY" -m venv "$VENV" || die "could not create $VENV (Debian/Ubuntu: apt install python3-venv)"
        note "environment: new virtualenv $VENV"
    fi
    PY="$VENV/bin/python"
fi
PYVER=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
PYTAG=$("$PY" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
case "$PYVER" in
    3.8|3.9|3.10|3.11) ;;
    *) say "warning: Python $PYVER is untested (mmcv 2.1.0 supports 3.8-3.11)" ;;
esac
pip() { "$PY" -m pip "$@"; }
PIP_FL=()
[ -n "$WHEELS" ] && PIP_FL=(--find-links "$WHEELS")
# pip >= 22.2 for --dry-run --report
"$PY" -c 'import sys, pip; sys.exit(tuple(map(int, pip.__version__.split(".")[:2])) < (22, 2))' \
    || pip install --quiet --upgrade "pip>=22.2"

# ----------------------------------------------------------------- 2. torch
have_torch() { "$PY" -c 'import torch' >/dev/null 2>&1; }
torch_info() { "$PY" -W ignore -c 'import torch; print(torch.__version__, torch.version.cuda or "cpu")' 2>/dev/null; }

# The version pip's configuration (plus --wheels) would install for a spec.
resolve_torch() {
    local report
    report=$(mktemp)
    if pip install --dry-run --quiet --no-deps --ignore-installed \
            "${PIP_FL[@]}" --report "$report" "$1" >/dev/null 2>&1; then
        "$PY" -c 'import json, sys; r = json.load(open(sys.argv[1])); print(r["install"][0]["metadata"]["version"])' "$report" 2>/dev/null || true
    fi
    rm -f "$report"
}

if [ "$DEVICE" = auto ]; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
        DEVICE=cuda
    else
        DEVICE=cpu
    fi
fi
CU=""
if [ "$DEVICE" = cuda ]; then
    DRIVER_CUDA=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9]*\.[0-9]*\).*/\1/p' | head -n1)
    case "$DRIVER_CUDA" in
        "") CU=cu121 ;;  # --cuda without nvidia-smi: assume a recent driver
        1[2-9].*|[2-9][0-9].*) CU=cu121 ;;
        11.8) CU=cu118 ;;
        *) say "the NVIDIA driver supports CUDA $DRIVER_CUDA only; PyTorch 2.1 needs 11.8 or newer: installing the CPU build"
           DEVICE=cpu ;;
    esac
fi

if have_torch && [ -z "$TORCH_VERSION" ]; then
    read -r TV TCUDA <<<"$(torch_info)"
    note "torch: kept the installed $TV ($TCUDA)"
else
    if [ "$DEVICE" = cuda ]; then
        TORCH_VERSION="${TORCH_VERSION:-2.1.2}"
        say "NVIDIA GPU found (driver CUDA ${DRIVER_CUDA:-?}): torch $TORCH_VERSION+$CU from $PYTORCH_URL/$CU"
        pip install "${PIP_FL[@]}" "torch==$TORCH_VERSION" --index-url "$PYTORCH_URL/$CU" \
            || die "could not install torch $TORCH_VERSION for $CU from $PYTORCH_URL/$CU"
        note "torch: $TORCH_VERSION+$CU from PyTorch's $CU index"
    else
        if [ -z "$TORCH_VERSION" ]; then
            case "$PYVER" in 3.8|3.9) TORCH_VERSION=2.1.2 ;; *) TORCH_VERSION=2.13.0 ;; esac
        fi
        RESOLVED=$(resolve_torch "torch==$TORCH_VERSION")
        if [[ "$RESOLVED" == *+cpu ]]; then
            say "no GPU: pip's configuration provides torch $RESOLVED, installing it"
            pip install "${PIP_FL[@]}" "torch==$TORCH_VERSION"
            note "torch: $RESOLVED (CPU build, from pip's configured index/wheel folder)"
        else
            say "no GPU: torch $TORCH_VERSION CPU build from PyTorch's CPU index $PYTORCH_URL/cpu"
            # Dependencies from PyPI as usual; torch itself pinned to +cpu.
            pip install "${PIP_FL[@]}" "torch==$TORCH_VERSION+cpu" \
                --extra-index-url "$PYTORCH_URL/cpu" \
                || die "could not install the CPU build of torch $TORCH_VERSION: $PYTORCH_URL/cpu unreachable? Install it yourself (README, 'Manual install') and run this script again; it keeps an installed torch."
            note "torch: $TORCH_VERSION+cpu from PyTorch's CPU index"
        fi
    fi
    read -r TV TCUDA <<<"$(torch_info)"
fi
TORCH_BASE="${TV%%+*}"
TORCH_MINOR=$(echo "$TORCH_BASE" | cut -d. -f1,2)
if [ "$TCUDA" = cpu ]; then BUILD=cpu; else BUILD="cu$(echo "$TCUDA" | tr -d .)"; fi

# ------------------------------------------------------------------ 3. mmcv
EXTRA=()  # torch < 2.3 was built against numpy 1.x
case "$TORCH_MINOR" in 1.*|2.0|2.1|2.2) EXTRA=("numpy<2") ;; esac
mmcv_ok() {
    "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION', mmcv.__version__" >/dev/null 2>&1
}
CACHE="$CACHE_ROOT/$PYTAG-torch$TV"
try_wheel_dir() {  # $1: folder, $2: what to call it
    [ -d "$1" ] || return 1
    ls "$1"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1 || return 1
    if pip install --quiet --no-index --no-deps --only-binary mmcv \
            --find-links "$1" "mmcv==$MMCV_VERSION" >/dev/null 2>&1; then
        # mmcv's own requirements (light, from PyPI) so that mmcv.ops imports
        pip install --quiet "${PIP_FL[@]}" "mmcv==$MMCV_VERSION" "${EXTRA[@]}" \
            --find-links "$1" --only-binary mmcv >/dev/null 2>&1 || true
        if mmcv_ok; then
            note "mmcv: $MMCV_VERSION from $2"
            return 0
        fi
        say "the mmcv wheel in $1 does not fit torch $TV: uninstalled, trying the next way"
        pip uninstall --quiet --yes mmcv >/dev/null 2>&1 || true
    fi
    return 1
}

build_mmcv() {
    local tmp log pid t0 n last
    tmp=$(mktemp -d)
    log="$tmp/build.log"
    say "building mmcv $MMCV_VERSION from source for torch $TV ($BUILD), Python $PYVER."
    say "  This takes 9-18 minutes on 2 idle CPU cores (less with more, longer on a busy machine); it happens once:"
    say "  the wheel is cached in $CACHE. Full log: $log"
    # A throw-away venv that sees the target environment's packages (torch)
    # through a .pth file added after its own build tools are installed, so
    # the old setuptools mmcv 2.1.0 needs never meets torch's requirement.
    "$PY" -m venv "$tmp/venv" || die "could not create a build virtualenv in $tmp"
    "$tmp/venv/bin/python" -m pip install --quiet "setuptools<70" wheel ninja >"$tmp/deps.log" 2>&1 \
        || { cat "$tmp/deps.log"; die "could not install the build tools (setuptools<70, wheel, ninja)"; }
    local site_target site_build
    site_target=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    site_build=$("$tmp/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    echo "$site_target" >"$site_build/_mmlla_target.pth"
    "$tmp/venv/bin/python" -c 'import torch, setuptools, pkg_resources' \
        || die "the build environment cannot import torch/pkg_resources"
    mkdir -p "$CACHE"
    local force_cuda=0
    [ "$BUILD" != cpu ] && force_cuda=1
    t0=$(date +%s)
    MMCV_WITH_OPS=1 FORCE_CUDA=$force_cuda MAX_JOBS="${MAX_JOBS:-$(nproc 2>/dev/null || echo 2)}" \
        "$tmp/venv/bin/python" -m pip wheel -v --no-deps --no-build-isolation \
        --no-binary mmcv -w "$tmp/out" "mmcv==$MMCV_VERSION" >"$log" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        sleep 30 &
        wait $! || true
        kill -0 "$pid" 2>/dev/null || break
        n=$(( $(date +%s) - t0 ))
        last=$(grep -o '^ *\[[0-9]*/[0-9]*\]' "$log" | tail -n1 | tr -d ' []' || true)
        say "  ... building mmcv: $((n / 60)) min $((n % 60)) s${last:+, compiled $last files}"
    done
    if ! wait "$pid"; then
        tail -n 30 "$log" >&2
        die "the mmcv build failed (log above, full log in $log). It needs gcc/g++ and the Python headers (Debian/Ubuntu: apt install build-essential python3-dev)."
    fi
    n=$(( $(date +%s) - t0 ))
    cp "$tmp"/out/mmcv-*.whl "$CACHE"/
    rm -rf "$tmp"
    BUILD_TIME="$((n / 60)) min $((n % 60)) s"
    say "  built in $BUILD_TIME; wheel cached in $CACHE"
}

if mmcv_ok; then
    note "mmcv: kept the installed $MMCV_VERSION (imports its compiled ops)"
elif [ -n "$WHEELS" ] && try_wheel_dir "$WHEELS" "the wheel folder $WHEELS"; then
    :
elif try_wheel_dir "$CACHE" "the cache $CACHE (built here before)"; then
    :
else
    DONE=0
    if [ "$TORCH_MINOR" = 2.0 ] || [ "$TORCH_MINOR" = 2.1 ]; then
        URL="$OPENMMLAB_URL/$BUILD/torch$TORCH_MINOR/index.html"
        say "trying OpenMMLab's prebuilt mmcv for torch $TORCH_MINOR/$BUILD ($URL)"
        if pip install --quiet --timeout 20 --retries 1 --only-binary mmcv \
                "mmcv==$MMCV_VERSION" "${EXTRA[@]}" --find-links "$URL" >/dev/null 2>&1 && mmcv_ok; then
            note "mmcv: $MMCV_VERSION prebuilt by OpenMMLab ($URL)"
            DONE=1
        else
            say "  no prebuilt wheel from there (unreachable, or none for this Python): building from source"
        fi
    else
        say "OpenMMLab publishes no mmcv $MMCV_VERSION wheel for torch $TORCH_MINOR: building from source"
    fi
    if [ "$DONE" = 0 ]; then
        build_mmcv
        try_wheel_dir "$CACHE" "a source build ($BUILD_TIME), cached in $CACHE" \
            || die "the freshly built mmcv wheel does not import (see above)"
    fi
fi

# ---------------------------------------------------------- 4. the rest
say "installing the pinned requirements (requirements.txt${EXTRA:+, numpy<2}) and mmlla (pip install -e .)"
pip install --quiet "${PIP_FL[@]}" -r "$ROOT/requirements.txt" "${EXTRA[@]}" \
    || die "pip install -r requirements.txt failed (above)"
# the optional ONNX deployment packages (README, "Deploy"): the suite's
# parity tests need them, and they are small wheels
say "installing the deployment extras (requirements/deploy.txt: onnx, onnxruntime)"
pip install --quiet "${PIP_FL[@]}" -r "$ROOT/requirements/deploy.txt" "${EXTRA[@]}" \
    || die "pip install -r requirements/deploy.txt failed (above)"
pip install --quiet "${PIP_FL[@]}" --no-deps -e "$ROOT" || die "pip install -e . failed"
pip check >/dev/null 2>&1 || say "note: pip check reports: $(pip check 2>&1 | head -n 3 | tr '\n' ' ')"

"$PY" - <<'EOF' || die "the installed packages do not import (above)"
import warnings
warnings.simplefilter('ignore')
import torch, mmcv, mmcv.ops, mmengine, mmdet, mmlla
print('[install] check: import mmcv.ops, mmdet, mmlla: OK (torch %s%s, mmcv %s, '
      'mmengine %s, mmdet %s, mmlla %s)' % (
          torch.__version__, ', CUDA available' if torch.cuda.is_available() else '',
          mmcv.__version__, mmengine.__version__, mmdet.__version__,
          mmlla.__version__))
EOF
note "mmlla: installed in editable mode from $ROOT"

END=$(date +%s)
echo
say "done in $(( (END - START) / 60 )) min $(( (END - START) % 60 )) s:"
for line in "${SUMMARY[@]}"; do printf '  - %s\n' "$line"; done
if [ "$NO_VENV" = 0 ] && [ -n "$VENV" ]; then
    echo
    say "activate it with:  . ${VENV#"$PWD"/}/bin/activate"
fi
say "then:  python tools/quick_start.py   (README, 'Quick start')"
