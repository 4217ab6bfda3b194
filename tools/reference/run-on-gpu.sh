#!/usr/bin/env bash
# Makes the reference fixtures on the GPU machine (torch, transformers and tokenizers there; no Java,
# no network). Run from the repository root there, with the jlinked runtime carried in .reference/
# (built here by: bin/build-gpu-runtime --with-tokenizers, then copying .device to .reference):
#   bash tools/reference/run-on-gpu.sh
# It writes $OUT/fixtures.tar.gz; unpack it at the repository root here:
#   tar -xzf fixtures.tar.gz   (fills csd-executor-plugin/src/test/resources/fixtures/{hf,tokenizer})
set -euo pipefail
runtime=${INF2_RUNTIME:-.reference}
java=("$runtime/jdk/bin/java" --add-modules=jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp "$runtime/lib/*")
work=$(mktemp -d)
out=${OUT:-$work/out}
fixtures=csd-executor-plugin/src/test/resources/fixtures
mkdir -p "$out" "$work/models" "$fixtures/hf" "$fixtures/tokenizer"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
python3 -c 'import torch, transformers, tokenizers; print("torch", torch.__version__, "transformers", transformers.__version__, "tokenizers", tokenizers.__version__)'

for preset in tiny-opt tiny-opt-postln tiny-llama tiny-llama-rope tiny-llama3; do
  "${java[@]}" io.inf2.cli.Inf2Main init-model --preset "$preset" --seed 7 --dtype f32 --out "$work/models/$preset-f32-seed7"
done
for preset in tiny-opt tiny-llama; do
  for dtype in f16 bf16; do
    "${java[@]}" io.inf2.cli.Inf2Main init-model --preset "$preset" --seed 7 --dtype "$dtype" --out "$work/models/$preset-$dtype-seed7"
  done
done
PYTHONUNBUFFERED=1 python3 tools/reference/hf_fixtures.py --models "$work/models" --prompts tools/reference/prompts.json \
  --out "$fixtures/hf"

"${java[@]}" io.inf2.model.tokenizer.TokenizerJsonWriter "$work/tokenizers"
python3 tools/reference/tokenizer_fixtures.py --tokenizers "$work/tokenizers" \
  --corpus csd-executor-plugin/src/test/resources/tokenizer/corpus.jsonl --out "$fixtures/tokenizer"

tar -czf "$out/fixtures.tar.gz" "$fixtures/hf" "$fixtures/tokenizer"
ls -la "$fixtures/hf" "$fixtures/tokenizer"
