#!/usr/bin/env bash
# Spark resource discovery script for INF2's computational storage devices (CSDs).
#
# Prints {"name":"csd","addresses":[...]} where each address is a device directory: the directory
# an emulated CSD stores its KV cache in, or the mount point a real CSD exposes. Configure with
#   spark.worker.resource.csd.discoveryScript   /path/to/conf/csd-discovery.sh    (standalone workers)
#   spark.executor.resource.csd.discoveryScript /path/to/conf/csd-discovery.sh    (YARN, Kubernetes)
#
# Devices come from, first match wins:
#   $INF2_CSD_DIRS        comma-separated absolute directories
#   $INF2_CSD_INVENTORY   a file with one absolute directory per line (# comments, blank lines ignored);
#                         default /etc/inf2/csd-devices
# An inventory file that lists no device prints an empty list (a host without CSDs). Every listed
# directory must exist and be writable; otherwise the script says which one on stderr and exits 1,
# which fails the worker or executor at start instead of the first task.
set -euo pipefail

inventory="${INF2_CSD_INVENTORY:-/etc/inf2/csd-devices}"
devices=()
origins=()  # where each device was listed, for error messages
trim() {
  local s="$1"
  s="${s#"${s%%[![:space:]]*}"}"
  printf '%s' "${s%"${s##*[![:space:]]}"}"
}
if [ -n "${INF2_CSD_DIRS:-}" ]; then
  IFS=',' read -r -a entries <<< "$INF2_CSD_DIRS"
  for entry in "${entries[@]}"; do
    entry=$(trim "$entry")
    if [ -n "$entry" ]; then
      devices+=("$entry")
      origins+=("INF2_CSD_DIRS")
    fi
  done
elif [ -f "$inventory" ]; then
  line_number=0
  while IFS= read -r line || [ -n "$line" ]; do
    line_number=$((line_number + 1))
    line=$(trim "${line%%#*}")
    if [ -n "$line" ]; then
      devices+=("$line")
      origins+=("$inventory:$line_number")
    fi
  done < "$inventory"
else
  echo "csd-discovery: no CSD devices configured: set INF2_CSD_DIRS or list device directories in $inventory" >&2
  exit 1
fi

json_escape() {
  local s="$1"
  s="${s//\\/\\\\}"
  s="${s//\"/\\\"}"
  printf '%s' "$s"
}

addresses=""
for i in "${!devices[@]}"; do
  dir="${devices[$i]}"
  source_name="${origins[$i]}"
  case "$dir" in
    /*) ;;
    *) echo "csd-discovery: $source_name: device directory '$dir' is not an absolute path" >&2; exit 1 ;;
  esac
  if [ ! -d "$dir" ]; then
    echo "csd-discovery: $source_name: device directory '$dir' does not exist" >&2
    exit 1
  fi
  if [ ! -w "$dir" ]; then
    echo "csd-discovery: $source_name: device directory '$dir' is not writable by $(id -un)" >&2
    exit 1
  fi
  [ -n "$addresses" ] && addresses+=","
  addresses+="\"$(json_escape "$dir")\""
done
printf '{"name":"csd","addresses":[%s]}\n' "$addresses"
