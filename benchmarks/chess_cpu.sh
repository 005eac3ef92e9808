#!/usr/bin/env bash
# The DiffuSearch comparison at CPU size (benchmarks/RESULTS.md, "DiffuSearch chess"):
# self-play data, the four trained agents (4 layers x 128, same data, batch 32, lr 1e-3), then
# the three tables for all five agents (MCTS = S-A prior + S-V leaves).
#   bash benchmarks/chess_cpu.sh OUT_DIR [GAMES]
# DiffuSearch trains on one core while the baselines take turns on the other (OMP_NUM_THREADS=1).
set -euo pipefail
OUT=${1:?usage: chess_cpu.sh OUT_DIR [GAMES]}
GAMES=${2:-160}
export OMP_NUM_THREADS=1
dlm chess make --games "$GAMES" --workers 2 --out "$OUT/data" --quiet
POSITIONS=$(cat "$OUT"/data/shards/*.jsonl | python -c "
import json, sys
print(sum(1 for line in sys.stdin if json.loads(line)['game'] % 10 != 9))")
C="data.task_options.data=$OUT/data model.num_layers=4 model.hidden_size=128 model.num_heads=4
   data.n_train=$POSITIONS data.n_eval=200 optim.batch_size=32 optim.lr=0.001 optim.warmup_steps=50
   log_every=50 save_every=300 eval_every=100 eval_examples=0 progress=false"
(dlm train recipes/chess/diffusearch.yaml $C optim.max_steps=900 output_dir="$OUT/ds" > "$OUT/ds.log" 2>&1) &
for a in s-a s-v; do
  dlm train recipes/chess/$a.yaml $C optim.max_steps=2000 output_dir="$OUT/$a" > "$OUT/$a.log" 2>&1
done
dlm train recipes/chess/sa-v.yaml $C data.n_train=200000 optim.max_steps=2000 \
  output_dir="$OUT/sa-v" > "$OUT/sa-v.log" 2>&1
wait
dlm chess puzzles --data "$OUT/data" --out "$OUT/puzzles.csv" --nodes 20000 --quiet
dlm chess eval --agents "$OUT"/ds/model "$OUT"/s-a/model "$OUT"/s-v/model "$OUT"/sa-v/model mcts \
  --data "$OUT/data" --positions 300 --puzzles "$OUT/puzzles.csv" --games 2 \
  --anchors random sf-n1 --max-plies 120 --out "$OUT/eval" --quiet
