#!/usr/bin/env bash
# GPU check of the LEAF plug-in, one command, no downloads:  benchmarks/gpu_check.sh OUT_DIR
#
# Without CUDA: says so in one line and exits 0. With CUDA (budget: under 8 minutes on one H200):
#  1. every registered LEAF algorithm and its host, 20 iterations on CUDA, fp32 and --amp true:
#     finite loss, a checkpoint written, and 10 iterations + --resume to 20 equal to the
#     uninterrupted run (the saved `model` state dicts compared with torch);
#  2. benchmarks/bench_step.py on CUDA at the paper's scale (resnet18, 224 px, labeled batch 32,
#     uratio 7), fp32 and amp, plus its runtime-variant table (channels_last, autocast, compile);
#  3. one FER2013 protocol cell pair (fixmatch, leaf_fixmatch) via benchmarks/compare.py, with its wall time.
# Tables go to stdout and to OUT_DIR (train_checks.md, bench_step_fp32.md, bench_step_amp.md,
# compare_fer2013.md, summary.txt); run folders under OUT_DIR/runs. Exit status: 1 if a check failed.
set -u
out="${1:?usage: benchmarks/gpu_check.sh OUT_DIR}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$repo"
if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
# GPU_CHECK_DEVICE=cpu GPU_CHECK_ALGS=... GPU_CHECK_ONLY=train: a dry run of part 1 on the CPU
dev="${GPU_CHECK_DEVICE:-cuda}"
if [ "$dev" = cuda ] && [ "$("$py" -c 'import torch; print(torch.cuda.is_available())' 2>/dev/null)" != "True" ]; then
    echo "gpu_check: no CUDA device visible to $py (torch.cuda.is_available() is false); nothing to check"
    exit 0
fi
export OMP_WAIT_POLICY=PASSIVE PYTHONWARNINGS=ignore
start=$(date +%s)
status=0
log() { echo "$@" | tee -a "$out/summary.txt"; }
log "gpu_check: python $py ($("$py" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu")')), device $dev"
train() { "$py" -c 'import sys; from leaf_plugin.cli.main import main; sys.exit(main(sys.argv[1:]))' train "$@"; }

# ---- 1. every LEAF algorithm and its host: 20 iterations, fp32 and amp, resume = uninterrupted
runs="$out/runs"
common=(--device "$dev" --dataset digits --net leaf_cnn4 --img_size 32 --batch_size 16 --uratio 2
        --num_workers 0 --num_log_iter 5 --progress false --use_tensorboard false
        --report false --seed 0 --save_dir "$runs")
echo "| algorithm | amp | 20 it (s) | loss finite | checkpoint | resume 10->20 = uninterrupted |" > "$out/train_checks.md"
echo "|---|---|---|---|---|---|" >> "$out/train_checks.md"
# one algorithm at one amp setting; its table row goes to $out/<alg>_amp<amp>.row, its exit status says ok
check_one() {
    local alg=$1 amp=$2 name="${1}_amp${2}" t0 t1 rc_full rc_res row verdict fin ckp eq
    t0=$(date +%s.%N)
    train --algorithm "$alg" --amp "$amp" --num_train_iter 20 --save_name "${name}_full" "${common[@]}" \
        --num_eval_iter 10 --overwrite true > "$out/${name}_full.log" 2>&1
    rc_full=$?
    t1=$(date +%s.%N)
    # interrupted run: the same 20-iteration run, stopped (os._exit) once its iteration-10
    # checkpoint is in place, then resumed to 20
    "$py" - train --algorithm "$alg" --amp "$amp" --num_train_iter 20 --save_name "${name}_part" \
        "${common[@]}" --num_eval_iter 10 --overwrite true > "$out/${name}_part.log" 2>&1 <<'PY'
import os, sys
import torch
real_replace = os.replace
def replace(src, dst, *a, **k):
    real_replace(src, dst, *a, **k)
    if str(dst).endswith("latest_model.pth") and torch.load(dst, map_location="cpu", weights_only=False).get("it") == 10:
        os._exit(0)
os.replace = replace
from leaf_plugin.cli.main import main
sys.exit(main(sys.argv[1:]))
PY
    train --algorithm "$alg" --amp "$amp" --num_train_iter 20 --save_name "${name}_part" "${common[@]}" \
        --num_eval_iter 10 --resume >> "$out/${name}_part.log" 2>&1
    rc_res=$?
    row=$("$py" - "$runs/${name}_full" "$runs/${name}_part" "$rc_full" "$rc_res" <<'PY'
import json, math, os, sys
import torch
full, part, rc_full, rc_res = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ck = os.path.join(full, "latest_model.pth")
has_ck = os.path.exists(ck)
finite = False
if has_ck:
    a = torch.load(ck, map_location="cpu", weights_only=False)
    finite = all(torch.isfinite(v).all().item() for v in a["model"].values() if torch.is_floating_point(v))
    losses = []
    for fname in ("metrics.jsonl",):
        path = os.path.join(full, fname)
        if os.path.exists(path):
            for line in open(path):
                rec = json.loads(line)
                losses += [v for k, v in rec.items() if k.endswith("total_loss") and isinstance(v, (int, float))]
    finite = finite and bool(losses) and all(math.isfinite(v) for v in losses)
equal = "n/a"
ck2 = os.path.join(part, "latest_model.pth")
if has_ck and os.path.exists(ck2):
    a = torch.load(ck, map_location="cpu", weights_only=False)
    b = torch.load(ck2, map_location="cpu", weights_only=False)
    same = a.get("it") == b.get("it") and a["model"].keys() == b["model"].keys() and \
        all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    if not same and a["model"].keys() == b["model"].keys():
        worst = max(float((a["model"][k].double() - b["model"][k].double()).abs().max())
                    for k in a["model"] if a["model"][k].numel())
        equal = f"no (max diff {worst:.2e}, it {a.get('it')} vs {b.get('it')})"
    else:
        equal = "yes" if same else "no"
ok = rc_full == 0 and rc_res == 0 and has_ck and finite and equal == "yes"
print(f"{'ok' if ok else 'FAIL'}|{finite}|{'yes' if has_ck else 'no'}|{equal} (exit {rc_full}/{rc_res})")
PY
)
    verdict="${row%%|*}"
    IFS='|' read -r _ fin ckp eq <<< "$row"
    printf '| %s | %s | %.1f | %s | %s | %s |\n' "$alg" "$amp" "$(python3 -c "print($t1 - $t0)")" "$fin" "$ckp" "$eq" \
        > "$out/${name}.row"
    [ "$verdict" = ok ]
}
# `leaf` wraps AdaCM, which is not a registered algorithm of its own: it runs without a host run.
# GPU_CHECK_JOBS checks run side by side (default 7 on CUDA, 1 on the CPU); the table keeps their order.
algs=(${GPU_CHECK_ALGS:-fixmatch leaf_fixmatch flexmatch leaf_flexmatch freematch leaf_freematch leaf})
max_jobs=${GPU_CHECK_JOBS:-$([ "$dev" = cuda ] && echo 7 || echo 1)}
pids=()
for alg in "${algs[@]}"; do
    for amp in false true; do
        while [ "$(jobs -rp | wc -l)" -ge "$max_jobs" ]; do wait -n; done
        check_one "$alg" "$amp" &
        pids+=($!)
    done
done
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
for alg in "${algs[@]}"; do
    for amp in false true; do
        if [ -s "$out/${alg}_amp${amp}.row" ]; then cat "$out/${alg}_amp${amp}.row"
        else echo "| $alg | $amp | - | - | - | no result |"; fi
    done
done | tee -a "$out/train_checks.md"
log "train checks done after $(( $(date +%s) - start )) s"
if [ "${GPU_CHECK_ONLY:-}" = train ]; then exit $status; fi

# ---- 2. bench_step at the paper's scale
bench=(--device cuda --net resnet18 --img_size 224 --batch_size 32 --uratio 7 --hosts fixmatch
       --repeats 10 --warmup 3 --channels_last)
"$py" benchmarks/bench_step.py "${bench[@]}" --variants plain channels_last autocast compile \
    2>&1 | grep -v -i warn | tee "$out/bench_step_fp32.md" || status=1
"$py" benchmarks/bench_step.py "${bench[@]}" --amp --variants none 2>&1 | grep -v -i warn \
    | tee "$out/bench_step_amp.md" || status=1
log "bench_step done after $(( $(date +%s) - start )) s"

# ---- 3. one FER2013 protocol cell pair on the GPU
fer=../shared/data/fer2013/fer2013_dev.npz
if [ -e "$fer" ]; then
    log "FER2013 data: $("$py" -c 'import numpy as np, sys; d = np.load(sys.argv[1]); print(len(d["y_train"]), "training faces,", len(d["y_val"]), "PublicTest faces")' "$fer")"
    t0=$(date +%s)
    "$py" benchmarks/compare.py --name "gpu_check_fer2013" --protocol fer2013 --algorithms fixmatch leaf_fixmatch \
        --pretrain_path benchmarks/checkpoints/simclr_fer2013_leaf_cnn4.pth \
        --seeds 0 --num_train_iter 500 --num_eval_iter 250 --device cuda --no_plots \
        --results_dir "$out/results" --runs_dir "$out/compare_runs" 2>&1 | grep -v -i warn \
        | tee "$out/compare_fer2013.md" || status=1
    log "FER2013 cell pair (fixmatch, leaf_fixmatch; 500 iterations each): $(( $(date +%s) - t0 )) s wall"
else
    log "FER2013 cell pair skipped: $fer not found"
fi
log "gpu_check: $([ $status = 0 ] && echo all checks passed || echo SOME CHECKS FAILED) in $(( $(date +%s) - start )) s"
exit $status
