"""Reference throughput: all-MiniLM-L6-v2 (int8 ONNX) under Python onnxruntime.

This is the bar agentd's local embedder is measured against: the same
model.onnx and tokenizer.json agentd loads, run the way a Python service
would (sentence-transformers' definition of the model: BERT, mean over the
attention mask, L2 normalisation). The timings include everything a caller
waits for: tokenizing (truncation at 256 tokens, padding to the longest text
of the batch), the forward pass, pooling and normalising.

    python embed_onnxruntime.py --model DIR/model.onnx \
        --tokenizer DIR/tokenizer.json --sentences bench/sentences.txt

Prints one JSON object on stdout:
{"engine": "onnxruntime X.Y.Z", "batch1_per_s": ..., "batch32_per_s": ..., ...}

Run it in the venv `bench/setup-venv` makes.
"""

import argparse
import json
import time

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer


def load(model_path, tokenizer_path, threads, max_tokens, spin):
    tokenizer = Tokenizer.from_file(tokenizer_path)
    # The shipped tokenizer.json truncates and pads to 128: replace both.
    tokenizer.enable_truncation(max_length=max_tokens)
    tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]") or 0, pad_token="[PAD]")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    return tokenizer, session


def embed(tokenizer, session, texts):
    """Unit vectors of the texts, one row each."""
    encodings = tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    types = np.zeros_like(ids)
    (hidden,) = session.run(
        ["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    )
    weights = mask[:, :, None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


def texts_per_second(tokenizer, session, sentences, batch):
    start = time.perf_counter()
    for i in range(0, len(sentences), batch):
        embed(tokenizer, session, sentences[i : i + batch])
    return len(sentences) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model.onnx (all-minilm-l6-v2-int8)")
    parser.add_argument("--tokenizer", required=True, help="tokenizer.json (all-minilm-l6-v2)")
    parser.add_argument("--sentences", required=True, help="a text file, one sentence a line")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    parser.add_argument("--max-tokens", type=int, default=256, help="truncation (default 256)")
    parser.add_argument(
        "--no-spin", action="store_true", help="threads sleep between runs instead of busy-waiting (agentd's setting)"
    )
    args = parser.parse_args()

    with open(args.sentences, encoding="utf-8") as f:
        sentences = [line.rstrip("\n") for line in f if line.strip()]
    tokenizer, session = load(args.model, args.tokenizer, args.threads, args.max_tokens, not args.no_spin)
    embed(tokenizer, session, sentences[:32])  # warm-up: first-run allocations

    result = {
        "engine": f"onnxruntime {ort.__version__}" + (" (no spin)" if args.no_spin else ""),
        "batch1_per_s": round(texts_per_second(tokenizer, session, sentences, 1), 1),
        "batch32_per_s": round(texts_per_second(tokenizer, session, sentences, 32), 1),
        "texts": len(sentences),
        "threads": args.threads,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
