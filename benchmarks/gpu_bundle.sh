#!/usr/bin/env bash
# What benchmarks/gpu_check.sh needs on a bare GPU machine that cannot reach a package registry.
#
#   benchmarks/gpu_bundle.sh pack          here: build .gpu/ (git-ignored through .git/info/exclude)
#   benchmarks/gpu_bundle.sh run OUT_DIR   there, from the repository root, with .gpu/ carried along
#
# The lent machine (see benchmarks/RESULTS.md, "The GPU") has Python 3.12 with torch, torchvision,
# transformers, timm, scikit-learn, opencv, onnx and onnxruntime, but not semilearn. `pack` puts in
# .gpu/wheels the wheels of semilearn 0.3.2 and of the three packages it imports that the image
# lacks (ruamel.yaml, ruamel.yaml.clib, progress). semilearn also imports `wandb` and `aim` at module
# level for its optional tracking hooks; with their own dependencies they come to 45 MB, more than
# the 64 MiB transfer leaves beside the data, so .gpu/standins holds two stand-in modules of those
# names instead: importing them works, taking anything from them fails with a message. gpu_check
# never turns those hooks on (--use_wandb and --use_aim default to false).
# FER2013 (../shared/data/fer2013/fer2013_dev.npz, 71 MB) does not fit either: .gpu/fer2013_dev.npz
# keeps all 3,589 PublicTest faces and 20,000 of the 28,709 training faces (drawn with seed 0).
# A 500-iteration cell draws its 175 labels and its unlabeled batches from those; its step and
# evaluation times are those of the full set, its accuracy is not a protocol number.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bundle=.gpu
fer=../shared/data/fer2013/fer2013_dev.npz   # where compare.py and gpu_check.sh read FER2013
case "${1:-}" in
pack)
    grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
    rm -rf "$bundle" && mkdir -p "$bundle/wheels" "$bundle/standins/wandb" "$bundle/standins/aim"
    if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
    platforms=()
    for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
        platforms+=(--platform "$p")
    done
    # the versions this checkout's environment runs, where it has them
    pins=()
    for name in semilearn ruamel.yaml ruamel.yaml.clib progress; do
        version=$("$py" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name" 2>/dev/null || true)
        pins+=("$name${version:+==$version}")
    done
    "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        "${platforms[@]}" -d "$bundle/wheels" "${pins[@]}"
    for name in wandb aim; do
        cat > "$bundle/standins/$name/__init__.py" <<PY
"""Stand-in for \`$name\`, which the GPU machine's image lacks (benchmarks/gpu_bundle.sh).

semilearn imports it at module level for its optional --use_$name hook; gpu_check never turns that
hook on. Anything taken from this module fails with the reason."""


def __getattr__(attr):
    raise AttributeError(f"$name.{attr}: $name is not installed on this machine; "
                         "this is gpu_bundle.sh's stand-in (run without --use_$name)")
PY
    done
    "$py" - "$fer" "$bundle/fer2013_dev.npz" <<'PY'
import sys
import numpy as np
src, dst = sys.argv[1], sys.argv[2]
d = np.load(src)
keep = np.sort(np.random.default_rng(0).permutation(len(d["y_train"]))[:20000])
np.savez_compressed(dst, x_train=d["x_train"][keep], y_train=d["y_train"][keep], x_val=d["x_val"],
                    y_val=d["y_val"], class_names=d["class_names"])
print(f"{dst}: {len(keep)} training faces, {len(d['y_val'])} PublicTest faces")
PY
    du -sh "$bundle"/* | sed 's/^/gpu_bundle: /'
    echo "gpu_bundle: on the GPU machine, carry .gpu and run: bash benchmarks/gpu_bundle.sh run \$OUT"
    ;;
run)
    out="${2:?usage: benchmarks/gpu_bundle.sh run OUT_DIR}"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/gpu_site "$bundle"/wheels/*.whl
    export PYTHONPATH="/tmp/gpu_site:$repo/$bundle/standins${PYTHONPATH:+:$PYTHONPATH}"
    mkdir -p "$(dirname "$fer")"
    [ -e "$fer" ] || cp "$bundle/fer2013_dev.npz" "$fer"
    nvidia-smi -L || true
    # the imports every check needs, first, so that a missing package costs seconds, not the run
    python3 -c "import semilearn, leaf_plugin.algorithms, leaf_plugin.cli.main; print('imports: ok')"
    work=/tmp/gpu_check
    rm -rf "$work"
    status=0
    # GPU_CHECK_LIMIT seconds at most (default 530), so that what finished still comes back
    PYTHONUNBUFFERED=1 timeout "${GPU_CHECK_LIMIT:-530}" bash benchmarks/gpu_check.sh "$work" || status=$?
    # what comes back: the tables, the summary and the logs (8 files at most)
    mkdir -p "$out"
    for f in summary.txt train_checks.md bench_step_fp32.md bench_step_amp.md compare_fer2013.md; do
        if [ -e "$work/$f" ]; then cp "$work/$f" "$out/"; fi
    done
    (cd "$work" && tar czf "$out/logs.tar.gz" --exclude='*.pth' --exclude='*.pt' .) || true
    exit $status
    ;;
*)
    echo "usage: benchmarks/gpu_bundle.sh pack | run OUT_DIR" >&2
    exit 2
    ;;
esac
