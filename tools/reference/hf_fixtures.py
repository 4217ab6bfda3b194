#!/usr/bin/env python3
"""Reference numerics from Hugging Face transformers for checkpoints written by `inf2 init-model`.

Run on a machine with torch and transformers (the GPU machine; see tools/reference/run-on-gpu.sh):

    python3 tools/reference/hf_fixtures.py --models DIR --prompts prompts.json --out OUTDIR

DIR holds one sub-directory per checkpoint, named <preset>-<dtype>-seed<seed> (for example
tiny-opt-f32-seed7). For each one this writes OUTDIR/<name>.json with, per prompt: HF's token ids,
the logits of the first generated position at a fixed set of vocabulary ids (the 64 largest plus
64 spread over the vocabulary), the greedy continuation, and the top-1 minus top-2 logit margin at
every greedy step (tests only require identical tokens while that margin exceeds their tolerance).

f32 checkpoints run in float32 on the CPU (exact reference, tolerance 1e-4 relative); f16 and
bf16 checkpoints run in their own dtype on the GPU when one is present (tolerance 2e-2), as a user
of transformers would run them.
"""
import argparse
import json
import os
import platform
import re

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
NAME = re.compile(r"^(?P<preset>.+)-(?P<dtype>f32|f16|bf16)-seed(?P<seed>\d+)$")


def logit_ids(logits, count_top=64, count_spread=64):
    vocab = logits.shape[-1]
    top = torch.topk(logits, count_top).indices.tolist()
    spread = [int(i * vocab / count_spread) for i in range(count_spread)]
    return sorted(set(top) | set(spread))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", required=True)
    parser.add_argument("--prompts", required=True, help="JSON list of prompt strings")
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-new-tokens", type=int, default=12)
    args = parser.parse_args()

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    with open(args.prompts, encoding="utf-8") as f:
        prompts = json.load(f)
    os.makedirs(args.out, exist_ok=True)
    cuda = torch.cuda.is_available()
    card = torch.cuda.get_device_name(0) if cuda else "none"

    for name in sorted(os.listdir(args.models)):
        match = NAME.match(name)
        if not match:
            continue
        path = os.path.join(args.models, name)
        dtype = match.group("dtype")
        device = "cpu" if dtype == "f32" or not cuda else "cuda"
        model = AutoModelForCausalLM.from_pretrained(path, dtype=DTYPES[dtype]).to(device).eval()
        tokenizer = AutoTokenizer.from_pretrained(path)
        cases = []
        for text in prompts:
            ids = tokenizer(text, return_tensors="pt").input_ids.to(device)
            with torch.no_grad():
                first = model(ids).logits[0, -1].float().cpu()
                out = model.generate(ids, max_new_tokens=args.max_new_tokens, do_sample=False,
                                     output_scores=True, return_dict_in_generate=True,
                                     pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None
                                     else model.config.eos_token_id)
            greedy = out.sequences[0, ids.shape[1]:].tolist()
            margins = []
            for score in out.scores:
                top2 = torch.topk(score[0].float(), 2).values.tolist()
                margins.append(top2[0] - top2[1])
            chosen = logit_ids(first)
            cases.append({
                "prompt": text,
                "input_ids": ids[0].tolist(),
                "logit_ids": chosen,
                "logits": [float(first[i]) for i in chosen],
                "max_abs_logit": float(first.abs().max()),
                "greedy": greedy,
                "margins": margins,
            })
        fixture = {
            "checkpoint": name,
            "preset": match.group("preset"),
            "dtype": dtype,
            "seed": int(match.group("seed")),
            "reference": {
                "transformers": transformers.__version__,
                "torch": torch.__version__,
                "device": device if device == "cpu" else card,
                "python": platform.python_version(),
            },
            "max_new_tokens": args.max_new_tokens,
            "cases": cases,
        }
        with open(os.path.join(args.out, name + ".json"), "w", encoding="utf-8") as f:
            json.dump(fixture, f, ensure_ascii=False, indent=1)
        print(f"{name}: {len(cases)} prompts on {fixture['reference']['device']}")


if __name__ == "__main__":
    main()
