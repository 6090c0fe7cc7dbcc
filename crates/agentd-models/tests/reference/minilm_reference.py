"""Reference embeddings for all-MiniLM-L6-v2, computed independently of candle.

The Rust test `local_embedder.rs` compares agentd's vectors with the ones this
script writes. To be a real check it shares nothing with the Rust code but the
model files: the BERT forward pass is written out here in numpy (float64),
reading the weights straight from model.safetensors (a JSON header and raw
little-endian arrays, parsed by hand), and tokens come from the Python
`tokenizers` package. Each sentence is encoded alone, so no padding is
involved; the sentence-transformers definition of the model follows:
BERT -> mean over the tokens -> L2 normalisation, with inputs truncated to
256 tokens (the model's max_seq_length).

Run (needs `pip install numpy tokenizers`, no torch):

    python3 minilm_reference.py MODELS_DIR/all-minilm-l6-v2 \
        ../data/sentences.json ../data/minilm_reference.json
"""

import hashlib
import json
import math
import struct
import sys

import numpy as np
from tokenizers import Tokenizer

MAX_TOKENS = 256


def load_safetensors(path):
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
        data = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        start, end = info["data_offsets"]
        array = np.frombuffer(data[start:end], dtype="<f4").reshape(info["shape"])
        tensors[name] = array.astype(np.float64)
    return tensors


def layer_norm(x, weight, bias, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


_erf = np.vectorize(math.erf)


def gelu(x):
    # The exact (erf) GELU, BERT's "gelu".
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def bert(w, cfg, ids):
    eps = cfg["layer_norm_eps"]
    heads = cfg["num_attention_heads"]
    n = len(ids)
    x = w["embeddings.word_embeddings.weight"][ids]
    x = x + w["embeddings.position_embeddings.weight"][:n]
    x = x + w["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def dense(name, h):
            return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        q, k, v = (dense(f"attention.self.{m}", x) for m in ("query", "key", "value"))
        head_dim = q.shape[1] // heads
        q, k, v = (t.reshape(n, heads, head_dim).transpose(1, 0, 2) for t in (q, k, v))
        attn = softmax(q @ k.transpose(0, 2, 1) / math.sqrt(head_dim))
        ctx = (attn @ v).transpose(1, 0, 2).reshape(n, heads * head_dim)
        x = layer_norm(
            x + dense("attention.output.dense", ctx),
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
            eps,
        )
        h = gelu(dense("intermediate.dense", x))
        x = layer_norm(
            x + dense("output.dense", h), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps
        )
    return x


def main(model_dir, sentences_path, out_path):
    cfg = json.load(open(f"{model_dir}/config.json"))
    weights = load_safetensors(f"{model_dir}/model.safetensors")
    tokenizer = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    sentences = json.load(open(sentences_path))["sentences"]

    vectors, token_counts = [], []
    for text in sentences:
        ids = tokenizer.encode(text).ids
        hidden = bert(weights, cfg, np.array(ids))
        pooled = hidden.mean(axis=0)
        vectors.append([round(float(v), 8) for v in pooled / np.linalg.norm(pooled)])
        token_counts.append(len(ids))

    with open(f"{model_dir}/model.safetensors", "rb") as f:
        model_sha256 = hashlib.sha256(f.read()).hexdigest()
    out = {
        "model_sha256": model_sha256,
        "max_tokens": MAX_TOKENS,
        "token_counts": token_counts,
        "vectors": vectors,
    }
    with open(out_path, "w") as f:
        json.dump(out, f)
        f.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:4])
