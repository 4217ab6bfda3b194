"""Per-kernel GPU time of one decode step, from an Nsight Compute CSV of CudaDecodeBench.

The CSV comes from (on the GPU machine, runtime from bin/build-gpu-runtime):
  ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \\
      --launch-skip 10500 --launch-count 1400 --log-file ncu.csv \\
      .device/jdk/bin/java ... io.inf2.compute.cuda.CudaDecodeBench --batches 1 --steps 2
(--launch-skip passes the bench's launch-cost probe and first steps.) A step is the launches from
one embedding kernel to the next. ncu runs kernels one at a time, so the sum is GPU busy time
without the gaps between kernels.

Usage: python3 tools/gpu/ncu_step_breakdown.py ncu.csv
"""
import csv
import sys


def main(path):
    with open(path) as f:
        rows = list(csv.DictReader(line for line in f if line.startswith('"')))
    starts = [i for i, r in enumerate(rows) if r["Kernel Name"].startswith("embed")]
    first = starts[0]
    following = [i for i in starts if i > first + 10]
    if not following:
        sys.exit("no complete step in " + path)
    step = rows[first:following[0]]
    by_kernel = {}
    for r in step:
        key = (r["Kernel Name"][:60], r["Grid Size"], r["Block Size"])
        ns = float(r["Metric Value"].replace(",", ""))
        calls, total = by_kernel.get(key, (0, 0.0))
        by_kernel[key] = (calls + 1, total + ns)
    busy = sum(total for _, total in by_kernel.values())
    print(f"{len(step)} kernels per step, GPU busy {busy / 1e3:.1f} us")
    print("| kernel | grid | block | calls | us per call | us per step |")
    print("|---|---|---|---:|---:|---:|")
    for (name, grid, block), (calls, total) in sorted(by_kernel.items(), key=lambda kv: -kv[1][1]):
        print(f"| {name} | {grid} | {block} | {calls} | {total / calls / 1e3:.2f} | {total / 1e3:.1f} |")


if __name__ == "__main__":
    main(sys.argv[1])
