#!/usr/bin/env bash
# ISA-DRE MI benchmark on one CUDA GPU: the speed section alone first, then one process per test seed (every d),
# all sharing the GPU. Each process saves its JSON after every fitted method, so a run cut short keeps what it
# finished. Merge and write the docs block (isadre-mi-gpu) afterwards on any machine:
#   python benchmarks/isadre.py --device cuda --sections none --seeds 0,...,9 --merge OUT/speed.json,OUT/s0.json,... \
#       --out runs/isadre_bench/gpu/all.json
# usage: bash benchmarks/isadre_gpu.sh OUT_DIR [SEEDS (default 0,...,9)] [TIME_LIMIT_S per seed process (0: none)]
set -u
out=${1:?usage: isadre_gpu.sh OUT_DIR [SEEDS] [TIME_LIMIT_S]}
seeds=${2:-0,1,2,3,4,5,6,7,8,9}
limit=${3:-0}
py=${PYTHON:-python3}
mkdir -p "$out"
export MERCATO_NO_PROGRESS=1 PYTHONUNBUFFERED=1
bench=(benchmarks/isadre.py --device cuda --no-docs)
"$py" "${bench[@]}" --sections speed --out "$out/speed.json" >"$out/speed.log" 2>&1
for s in ${seeds//,/ }; do  # timeout 0 runs without a limit
    timeout "$limit" "$py" "${bench[@]}" --seeds "$s" --sections main --out "$out/s$s.json" >"$out/s$s.log" 2>&1 &
done
wait
