#!/usr/bin/env bash
# Spark resource discovery script for GPUs: prints {"name":"gpu","addresses":["0","1",...]} with the
# CUDA device indices nvidia-smi reports, or an empty list on a host without nvidia-smi. Configure with
#   spark.worker.resource.gpu.discoveryScript   /path/to/conf/gpu-discovery.sh    (standalone workers)
#   spark.executor.resource.gpu.discoveryScript /path/to/conf/gpu-discovery.sh    (YARN, Kubernetes)
# If nvidia-smi is present but fails (driver not loaded), the script exits 1 with its error on stderr:
# a GPU host that cannot see its GPUs is a fault to surface, not a host without GPUs.
set -euo pipefail

if ! command -v nvidia-smi > /dev/null 2>&1; then
  echo '{"name":"gpu","addresses":[]}'
  exit 0
fi
if ! indices=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>&1); then
  echo "gpu-discovery: nvidia-smi failed: $(echo "$indices" | head -n 1)" >&2
  exit 1
fi
addresses=""
while IFS= read -r index; do
  index="${index//[[:space:]]/}"
  [ -z "$index" ] && continue
  case "$index" in
    *[!0-9]*) echo "gpu-discovery: unexpected nvidia-smi output: '$index'" >&2; exit 1 ;;
  esac
  [ -n "$addresses" ] && addresses+=","
  addresses+="\"$index\""
done <<< "$indices"
printf '{"name":"gpu","addresses":[%s]}\n' "$addresses"
