#!/usr/bin/env bash
# GPU check: a resnet50 at 224 px + a BERT-sized-down transformer text branch + tabular, a few hundred bf16 steps
# on a lent GPU machine; prints samples/s and the share of time the GPU waits for data (benchmarks/data_wait.py).
#
#   bash benchmarks/gpu_check.sh [STEPS]          # e.g. through the device tool, from the repository root
#
# The machine has torch, lightning, timm, transformers and pandas; the rest travels as wheels in
# benchmarks/wheels/ (fill it here: pip download -d benchmarks/wheels albumentations hydra-core natasha rich
# torchmetrics omegaconf antlr4-python3-runtime, plus what pip says they need). Writes $OUT/gpu_check.json.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-300}
OUT=${OUT:-/tmp/demandnet-gpu-check}
WORK=$(mktemp -d)
mkdir -p "$OUT"
python -m pip install -q --no-index --find-links benchmarks/wheels -e . 2>&1 | tail -2 || \
  python -m pip install -q --no-deps -e .
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python - "$WORK/bert" <<'PY'
# a 4-layer, 256-wide BERT with the tests' Russian WordPiece vocabulary: offline, shaped like a real text branch
import sys
from pathlib import Path
from transformers import BertConfig, BertModel
sys.path.insert(0, ".")
from tests.tiny_bert import make_tiny_bert
folder = make_tiny_bert(Path(sys.argv[1]))
config = BertConfig.from_pretrained(folder)
config.update({"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024})
BertModel(config).save_pretrained(folder)
PY
WORKERS=$(( $(nproc) > 2 ? $(nproc) - 2 : 1 ))
python train.py hydra.run.dir="$WORK/run" paths.data_dir="$WORK/data" \
  data.synthetic.n_train=40000 data.synthetic.n_test=0 data.batch_size=128 data.num_workers=$WORKERS \
  model.image.name=resnet50 model.image.img_size=224 model.image.channels_last=true \
  model/text=transformer model.text.name_or_path="$WORK/bert" \
  trainer.precision=bf16-mixed trainer.max_steps="$STEPS" trainer.max_epochs=100 trainer.limit_val_batches=20 \
  +callbacks.data_wait._target_=benchmarks.data_wait.DataWait 2>&1 | grep -E "data_wait|val_rmse|Error|error" || true
cp "$WORK/run/data_wait.json" "$OUT/gpu_check.json" && cat "$OUT/gpu_check.json"
