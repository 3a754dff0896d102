#!/usr/bin/env bash
# ISA-DRE MI benchmark on one CUDA GPU: the speed section alone first, then one process per test seed (every d),
# all sharing the GPU and one runner cache (ROOT/isadre-gpu/cache/; each fitted method is cached as it finishes,
# so a run cut short keeps what it finished and a rerun resumes). The last call reports from the shared cache and
# writes the docs block (isadre-mi-gpu); to write it on another machine, copy ROOT there and run that call with
# --root ROOT (or --merge ROOT/isadre-gpu into the default root).
# usage: bash benchmarks/isadre_gpu.sh ROOT [SEEDS (default 0,...,9)] [TIME_LIMIT_S per seed process (0: none)]
set -u
root=${1:?usage: isadre_gpu.sh ROOT [SEEDS] [TIME_LIMIT_S]}
seeds=${2:-0,1,2,3,4,5,6,7,8,9}
limit=${3:-0}
py=${PYTHON:-python3}
mkdir -p "$root"
export MERCATO_NO_PROGRESS=1 PYTHONUNBUFFERED=1
bench=(benchmarks/isadre.py --device cuda --root "$root")
"$py" "${bench[@]}" --sections speed --no-docs >"$root/speed.log" 2>&1
for s in ${seeds//,/ }; do  # timeout 0 runs without a limit
    timeout "$limit" "$py" "${bench[@]}" --seeds "$s" --sections main --no-docs >"$root/s$s.log" 2>&1 &
done
wait
"$py" "${bench[@]}" --seeds "$seeds" --sections main,speed >"$root/report.log" 2>&1
