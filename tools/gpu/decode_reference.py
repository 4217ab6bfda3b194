"""What PyTorch and HF transformers reach on this card for OPT-shaped batch-1 decode, as a yardstick
for the engine's row-1 figures (docs/benchmarks.md). Nothing here is the engine; it measures the
libraries everyone else uses, on the same card and in the same call.

Prints one JSON document:
  copyGBps            device-to-device copy, bytes read plus bytes written per second (the bound's rate)
  linears             for each (name, n, k): an fp16 x[1,k] @ W[n,k]^T through F.linear, as a CUDA graph
                      of one such product per layer over distinct weights (so none is served from L2),
                      ms per product and weight GB/s
  hf                  HF OPTForCausalLM with random fp16 weights: batch-1 decode ms per step after a
                      512-token prompt, eager; the HBM bound of a step; the fraction reached

Usage: python3 tools/gpu/decode_reference.py [--preset opt-6.7b|opt-30b] [--skip-hf]
"""
import argparse
import json
import time

import torch

PRESETS = {
    "opt-6.7b": dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, ffn_dim=16384),
    "opt-30b": dict(hidden_size=7168, num_hidden_layers=48, num_attention_heads=56, ffn_dim=28672),
}


def copy_bandwidth():
    n = 1 << 30
    a = torch.empty(n, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(10):
        start.record()
        b.copy_(a)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    times.sort()
    return 2 * n / times[len(times) // 2] / 1e9


def linear_rates(shape, layers):
    h, f = shape["hidden_size"], shape["ffn_dim"]
    out = []
    for name, n, k in (("q/k/v/out", h, h), ("fc1", f, h), ("fc2", h, f), ("qkv fused", 3 * h, h)):
        weights = [torch.randn(n, k, dtype=torch.float16, device="cuda") * 0.02 for _ in range(layers)]
        x = torch.randn(1, k, dtype=torch.float16, device="cuda")
        graph = torch.cuda.CUDAGraph()
        stream = torch.cuda.Stream()
        with torch.cuda.stream(stream):
            for w in weights:  # warm-up: cuBLAS picks and loads its kernel outside the capture
                torch.nn.functional.linear(x, w)
            with torch.cuda.graph(graph):
                for w in weights:
                    torch.nn.functional.linear(x, w)
        torch.cuda.synchronize()
        times = []
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        for _ in range(20):
            start.record()
            graph.replay()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3 / layers)
        times.sort()
        per = times[len(times) // 2]
        out.append(dict(name=name, n=n, k=k, msPerProduct=round(per * 1e3, 4),
                        weightGBps=round(n * k * 2 / per / 1e9, 1)))
        del weights, graph
        torch.cuda.empty_cache()
    return out


def hf_decode(preset, shape, bandwidth, prompt=512, steps=32):
    from transformers import OPTConfig, OPTForCausalLM
    config = OPTConfig(vocab_size=50272, max_position_embeddings=2048, do_layer_norm_before=True,
                       word_embed_proj_dim=shape["hidden_size"], **shape)
    torch.manual_seed(0)
    torch.set_default_dtype(torch.float16)
    with torch.device("cuda"):
        model = OPTForCausalLM(config).eval()
    torch.set_default_dtype(torch.float32)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    ids = torch.randint(0, 50272, (1, prompt), device="cuda")
    with torch.inference_mode():
        timings = []
        for round_ in range(2):
            result = model(input_ids=ids, use_cache=True)
            past = result.past_key_values
            token = result.logits[:, -1:].argmax(-1)
            torch.cuda.synchronize()
            began = time.perf_counter()
            for _ in range(steps):
                result = model(input_ids=token, past_key_values=past, use_cache=True)
                past = result.past_key_values
                token = result.logits[:, -1:].argmax(-1)
            torch.cuda.synchronize()
            timings.append((time.perf_counter() - began) / steps)
    step = timings[-1]
    kv_bytes = 2 * shape["num_hidden_layers"] * shape["hidden_size"] * 2 * (prompt + steps / 2)
    bound = (weight_bytes + kv_bytes) / (bandwidth * 1e9)
    return dict(preset=preset, weightBytes=weight_bytes, stepMs=round(step * 1e3, 3),
                hbmBoundMs=round(bound * 1e3, 3), fractionOfHbmBound=round(bound / step, 3),
                note="HF transformers " + __import__("transformers").__version__ + ", eager, fp16, batch 1")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="opt-6.7b", choices=sorted(PRESETS))
    parser.add_argument("--skip-hf", action="store_true")
    args = parser.parse_args()
    shape = PRESETS[args.preset]
    result = dict(device=torch.cuda.get_device_name(), torch=torch.__version__)
    result["copyGBps"] = round(copy_bandwidth(), 1)
    result["linears"] = linear_rates(shape, shape["num_hidden_layers"])
    if not args.skip_hf:
        result["hf"] = hf_decode(args.preset, shape, result["copyGBps"])
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
