"""The reference figures for local generation: llama.cpp through its Python
binding (PyPI llama-cpp-python), on the same GGUF file, prompts and threads
agentd's benchmark uses.

Usage: generate_llama_cpp.py --model FILE.gguf --threads N < runs.json
where runs.json is [{"prompt": TEXT, "max_tokens": N}, ...] (the prompt
already rendered with the model's chat template). Prints one JSON object:
per run, prompt tokens, seconds to evaluate the prompt and sample the first
token (time to first token), and generated tokens with their seconds.
Greedy sampling; generation stops at an end-of-generation token or
max_tokens, as agentd's does.
"""

import argparse
import json
import sys
import time

import llama_cpp
from llama_cpp import Llama

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--context", type=int, default=4096)
args = parser.parse_args()
runs = json.load(sys.stdin)

llm = Llama(
    model_path=args.model,
    n_ctx=args.context,
    n_batch=512,
    n_ubatch=512,
    n_threads=args.threads,
    n_threads_batch=args.threads,
    verbose=False,
)

results = []
for run in runs:
    llm.reset()
    llm._ctx.kv_cache_clear() if hasattr(llm._ctx, "kv_cache_clear") else None
    tokens = llm.tokenize(run["prompt"].encode(), add_bos=False, special=True)
    start = time.perf_counter()
    llm.eval(tokens)
    token = llm.sample(temp=0.0, top_k=1)
    first = time.perf_counter()
    generated = 1
    while generated < run["max_tokens"] and not llama_cpp.llama_token_is_eog(llm._model.vocab, token):
        llm.eval([token])
        token = llm.sample(temp=0.0, top_k=1)
        generated += 1
    end = time.perf_counter()
    results.append(
        {
            "prompt_tokens": len(tokens),
            "ttft_s": first - start,
            "generated_tokens": generated,
            "generation_s": end - first,
        }
    )

print(json.dumps({"engine": f"llama-cpp-python {llama_cpp.__version__}", "runs": results}))
