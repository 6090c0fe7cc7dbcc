"""Reference: FAISS's HNSW index on the vectors agentd's ANN benchmark searches.

This is the bar agentd's `HnswIndex` is measured against. The Rust side
(crates/agentd-retrieval/examples/ann_bench.rs) prepares the data once and
runs this script as a subprocess, so both engines see the same unit vectors,
the same held-out queries and the same exact neighbours:

    python ann_faiss.py --base base.f32 --queries queries.f32 --truth truth.u32 \
        --dim 50 --m 16 --ef-construction 128 --ef 10,12,16,... --targets 0.9,0.95,0.99

Files are raw little-endian arrays, row after row: float32 vectors, and for
the truth the ids (uint32, rows of the base file) of each query's exact
nearest neighbours, best first. Cosine similarity on unit vectors is the
inner product, hence `IndexHNSWFlat(d, M, METRIC_INNER_PRODUCT)`.

The index is built once per thread count (`faiss.omp_set_num_threads`);
searches run on the last one built. The sweep walks the efSearch values in
order; each gets one single-thread pass that gives its recall@k, and the first
value reaching a target is timed again, best of `--repeats`, with one and
two threads (a batch search splits the queries between the threads). The
sweep stops once the highest target is reached.

Prints one JSON object on stdout.
"""

import argparse
import json
import time

import faiss
import numpy as np


def rss_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def recall_at(found, truth, k):
    hits = 0
    for row, expected in zip(found, truth):
        hits += len(set(row[:k].tolist()) & set(expected[:k].tolist()))
    return hits / (len(truth) * k)


def timed_search(index, queries, k, threads):
    faiss.omp_set_num_threads(threads)
    start = time.perf_counter()
    _, ids = index.search(queries, k)
    return time.perf_counter() - start, ids


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--queries", required=True)
    parser.add_argument("--truth", required=True)
    parser.add_argument("--dim", type=int, required=True)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=128)
    parser.add_argument("--ef", required=True, help="efSearch values to sweep, comma-separated, ascending")
    parser.add_argument("--targets", default="0.9,0.95,0.99")
    parser.add_argument("--build-threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    d = args.dim
    base = np.fromfile(args.base, dtype="<f4").reshape(-1, d)
    queries = np.fromfile(args.queries, dtype="<f4").reshape(-1, d)
    truth_width = np.fromfile(args.truth, dtype="<u4").size // len(queries)
    truth = np.fromfile(args.truth, dtype="<u4").reshape(len(queries), truth_width)
    if truth_width < args.k:
        raise SystemExit(f"the truth file holds {truth_width} neighbours a query, fewer than k={args.k}")

    builds = []
    index = None
    index_bytes = 0
    rss_delta = 0
    for threads in [int(t) for t in args.build_threads.split(",")]:
        index = None  # free the previous build before measuring the next
        faiss.omp_set_num_threads(threads)
        before = rss_bytes()
        start = time.perf_counter()
        index = faiss.IndexHNSWFlat(d, args.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = args.ef_construction
        index.add(base)
        seconds = time.perf_counter() - start
        if not builds:
            rss_delta = rss_bytes() - before
            index_bytes = faiss.serialize_index(index).nbytes
        builds.append({"threads": threads, "seconds": seconds})

    targets = sorted(float(t) for t in args.targets.split(","))
    sweep = []
    for ef in [int(e) for e in args.ef.split(",")]:
        index.hnsw.efSearch = ef
        seconds, ids = timed_search(index, queries, args.k, 1)
        recall = recall_at(ids, truth, args.k)
        point = {"ef": ef, "recall": recall, "qps": {"1": len(queries) / seconds}}
        if targets and recall >= targets[0]:
            while targets and recall >= targets[0]:
                targets.pop(0)
            for threads in (1, 2):
                best = min(timed_search(index, queries, args.k, threads)[0] for _ in range(args.repeats))
                point["qps"][str(threads)] = len(queries) / best
        sweep.append(point)
        if not targets:
            break

    print(
        json.dumps(
            {
                "engine": f"faiss {faiss.__version__} IndexHNSWFlat",
                "build": builds,
                "index_bytes": index_bytes,
                "rss_delta_bytes": rss_delta,
                "sweep": sweep,
            }
        )
    )


if __name__ == "__main__":
    main()
