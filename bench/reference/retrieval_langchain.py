"""Reference ingestion and search: LangChain with FAISS and BM25.

This is the peer `agentd-bench retrieval` runs in the same run: the retrieval
stack a Python team would assemble today, from LangChain's own parts, over
the same documentation corpus (`bench/corpus-data`), the same embedding
model (the model.onnx and tokenizer.json agentd loads, run as
embed_onnxruntime.py runs them: its `load` and `embed` are imported) and the
same query sentences.

- Loading: HTML pages with `BSHTMLLoader` (BeautifulSoup, lxml parser), Markdown
  pages with `TextLoader`; a document's title is its path relative to the
  corpus folder. A page that fails to load is counted as failed and skipped.
- Chunking: `RecursiveCharacterTextSplitter` with lengths counted in tokens
  of the embedding model's tokenizer (no special tokens, no truncation).
- Embedding: an `Embeddings` class around the onnxruntime session: truncation
  at 256 tokens, documents in batches of 32 (padded to the batch's longest
  text), a query alone. Vectors are unit length.
- Vector store: `FAISS.from_embeddings`, which builds LangChain's default
  index, the exact `IndexFlatL2` (on unit vectors, the same order as cosine
  similarity).
- Keyword: `BM25Retriever` (rank_bm25's BM25Okapi) over the same chunks, with
  its default preprocessing (whitespace split).
- Hybrid: `EnsembleRetriever` (in langchain-classic since LangChain 1.0),
  weights 1 and 1, reciprocal rank fusion with c = 60, over the vector and
  BM25 retrievers returning 50 candidates each; it returns every fused
  candidate, so the first 10 are kept. It queries its retrievers one after
  the other.

Two measures:

- Ingestion, end to end: files loaded, split (`--chunk-tokens`,
  `--overlap-tokens`), embedded and indexed (FAISS and BM25). The files are
  those listed in `--files` (paths relative to `--corpus`, one a line, taken
  in that order), or without it every page of the `--ingest` folders. The
  wall time and each stage's time are kept apart: parse (the loaders),
  split, embed (inside the Embeddings class, `embed_documents`) and index
  (`FAISS.from_embeddings` on the vectors already made, plus
  `BM25Retriever.from_documents`).
- Search: an index over more than 100,000 small chunks, then queries. With
  `--search-from DIR` the chunks and their vectors are the ones agentd made
  (DIR/chunks.jsonl, one `{"title": ..., "text": ...}` a line, and
  DIR/vectors.f32, raw little-endian float32 rows in the same order), so
  both sides search identical chunks and vectors and the measure compares
  index and query work alone; `build_s` is then FAISS and BM25 building
  only. Without it, the whole corpus is loaded, split in small chunks
  (`--search-chunk-tokens`, `--search-overlap-tokens`) and embedded here,
  built as in ingestion, and `build_s` covers all of that. Then the first
  `--warm-up` + `--search-queries` (default `--queries`) lines of the
  sentences file (cycled if fewer) are the queries, one at a time, in each
  mode (hybrid, vector, keyword), 10 results each; queries are embedded by
  the Embeddings class above. A latency is the time of the retriever's
  `invoke(query)`, query embedding included for hybrid and vector; the
  warm-up queries' are left out. rank_bm25 scores every chunk on each query,
  so on that many chunks a caller may time fewer queries here than agentd.

    python retrieval_langchain.py --corpus DIR --model DIR/model.onnx \\
        --tokenizer DIR/tokenizer.json --files FILES.txt \\
        --search-from CHUNKS_DIR --queries 1000 --search-queries 200

Progress goes to stderr. Prints one JSON object on stdout:
{"engine": "LangChain X + FAISS Y + rank_bm25 Z", "versions": {...},
 "ingestion": {"documents": ..., "failed": ..., "chunks": ..., "bytes": ..., "wall_s": ...,
               "parse_s": ..., "split_s": ..., "embed_s": ..., "index_s": ...},
 "search": {"documents": ..., "chunks": ..., "build_s": ...,
            "modes": {"hybrid": [ms, ...], "vector": [...], "keyword": [...]}}}
where `documents` counts every page tried, failed ones included (in
`search` with `--search-from`: the distinct titles), `bytes` their sizes on
disk, each latency array holds `--search-queries` values, and `ingestion` or
`search` is null when skipped.

Run it in the venv `bench/setup-venv` makes.
"""

import argparse
import json
import os
import platform
import sys
import time
import warnings
from importlib.metadata import version

import numpy as np
from langchain_core.documents import Document

from langchain_classic.retrievers import EnsembleRetriever
from langchain_community.document_loaders import BSHTMLLoader, TextLoader
from langchain_community.retrievers import BM25Retriever
from langchain_community.vectorstores import FAISS
from langchain_core.embeddings import Embeddings
from langchain_text_splitters import RecursiveCharacterTextSplitter
from tokenizers import Tokenizer
from bs4 import XMLParsedAsHTMLWarning

# Some manual pages are XHTML; BeautifulSoup warns once per page that an HTML
# parser reads them, which is what a loader of web pages does anyway.
warnings.filterwarnings("ignore", category=XMLParsedAsHTMLWarning)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from embed_onnxruntime import embed, load  # noqa: E402

MAX_TOKENS = 256
BATCH = 32
TOP_K = 10
CANDIDATES = 50
RRF_C = 60
EXTENSIONS = (".html", ".md")
PACKAGES = [
    "langchain-core",
    "langchain-community",
    "langchain-classic",
    "langchain-text-splitters",
    "faiss-cpu",
    "rank-bm25",
    "beautifulsoup4",
    "lxml",
    "onnxruntime",
    "tokenizers",
    "numpy",
]


def progress(message):
    print(message, file=sys.stderr, flush=True)


class OnnxEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 under onnxruntime, as a LangChain embedding model.

    `seconds` adds up the time spent in `embed_documents`, so that a vector
    store's own work can be told apart from embedding."""

    def __init__(self, tokenizer, session):
        self.tokenizer = tokenizer
        self.session = session
        self.seconds = 0.0

    def embed_documents(self, texts):
        start = time.perf_counter()
        vectors = []
        for i in range(0, len(texts), BATCH):
            vectors.extend(embed(self.tokenizer, self.session, texts[i : i + BATCH]).tolist())
            done = i + BATCH
            if done % (BATCH * 200) == 0:
                progress(f"  embedded {done}/{len(texts)} chunks")
        self.seconds += time.perf_counter() - start
        return vectors

    def embed_query(self, text):
        return embed(self.tokenizer, self.session, [text])[0].tolist()


def token_counter(tokenizer_path):
    """The splitter's length function: tokens of the embedding model's
    tokenizer, without special tokens; the shipped tokenizer.json truncates
    and pads to 128, so both are turned off."""
    tokenizer = Tokenizer.from_file(tokenizer_path)
    tokenizer.no_truncation()
    tokenizer.no_padding()

    def count(text):
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    return count


def list_files(corpus, folders, limit):
    """The pages under the folders, sorted within each folder, as paths."""
    files = []
    for folder in folders:
        found = []
        for root, dirs, names in os.walk(os.path.join(corpus, folder)):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            found.extend(os.path.join(root, n) for n in names if n.endswith(EXTENSIONS))
        files.extend(sorted(found))
    if not files:
        raise SystemExit(f"no .html or .md files under {', '.join(folders)} in {corpus}")
    return files[:limit] if limit else files


def read_file_list(corpus, list_path, limit):
    """The pages named in the list (paths relative to the corpus, one a
    line), in its order, as paths."""
    with open(list_path, encoding="utf-8") as f:
        names = [line.rstrip("\r\n") for line in f]
    files = [os.path.join(corpus, name) for name in names if name.strip()]
    if not files:
        raise SystemExit(f"{list_path} names no files")
    return files[:limit] if limit else files


def load_pages(corpus, files):
    """Loads every page; returns (documents, failed, bytes)."""
    documents, failed, size = [], 0, 0
    for path in files:
        size += os.path.getsize(path)
        if path.endswith(".html"):
            loader = BSHTMLLoader(path, open_encoding="utf-8", bs_kwargs={"features": "lxml"})
        else:
            loader = TextLoader(path, encoding="utf-8")
        try:
            pages = loader.load()
        except Exception as error:  # a page that cannot be read is a failed document
            progress(f"  failed: {path}: {error}")
            failed += 1
            continue
        title = os.path.relpath(path, corpus)
        for page in pages:
            page.metadata["title"] = title
        documents.extend(pages)
    return documents, failed, size


def build(corpus, files, embeddings, count_tokens, chunk_tokens, overlap_tokens):
    """Loads, splits, embeds and indexes the files; returns the indexes, the
    counts and each stage's seconds."""
    started = time.perf_counter()
    pages, failed, size = load_pages(corpus, files)
    parsed = time.perf_counter()
    progress(f"  loaded {len(pages)} pages ({failed} failed) in {parsed - started:.1f} s")

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_tokens, chunk_overlap=overlap_tokens, length_function=count_tokens
    )
    chunks = splitter.split_documents(pages)
    for n, chunk in enumerate(chunks):
        chunk.metadata["chunk"] = n  # the ensemble's key: equal texts stay distinct chunks
    split = time.perf_counter()
    progress(f"  split into {len(chunks)} chunks in {split - parsed:.1f} s")
    if not chunks:
        raise SystemExit("the documents make no chunks")

    embeddings.seconds = 0.0
    texts = [c.page_content for c in chunks]
    vectors = embeddings.embed_documents(texts)
    embedded = time.perf_counter()
    progress(f"  embedded in {embeddings.seconds:.1f} s")

    store = FAISS.from_embeddings(zip(texts, vectors), embeddings, metadatas=[c.metadata for c in chunks])
    bm25 = BM25Retriever.from_documents(chunks, k=TOP_K)
    indexed = time.perf_counter()
    progress(f"  indexed (FAISS, BM25) in {indexed - embedded:.1f} s")

    stats = {
        "documents": len(files),
        "failed": failed,
        "chunks": len(chunks),
        "bytes": size,
        "wall_s": indexed - started,
        "parse_s": parsed - started,
        "split_s": split - parsed,
        "embed_s": embeddings.seconds,
        "index_s": indexed - embedded,
    }
    return store, bm25, stats


def build_from(directory, embeddings):
    """The indexes over chunks and vectors made elsewhere (chunks.jsonl and
    vectors.f32 in the directory): nothing is loaded, split or embedded
    here. Returns the indexes, the counts and the building seconds."""
    chunks, titles = [], set()
    with open(os.path.join(directory, "chunks.jsonl"), encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            record = json.loads(line)
            titles.add(record["title"])
            chunks.append(Document(page_content=record["text"], metadata={"title": record["title"]}))
    for n, chunk in enumerate(chunks):
        chunk.metadata["chunk"] = n  # the ensemble's key, as in `build`
    if not chunks:
        raise SystemExit(f"{directory}/chunks.jsonl holds no chunks")
    vectors = np.fromfile(os.path.join(directory, "vectors.f32"), dtype="<f4")
    if vectors.size % len(chunks):
        raise SystemExit(f"vectors.f32 holds {vectors.size} floats, not a multiple of {len(chunks)} chunks")
    vectors = vectors.reshape(len(chunks), -1)
    dimensions = len(embeddings.embed_query("dimensions"))
    if vectors.shape[1] != dimensions:
        raise SystemExit(f"vectors.f32 holds {vectors.shape[1]}-d vectors; the model makes {dimensions}-d ones")
    progress(f"  read {len(chunks)} chunks of {len(titles)} documents, vectors of {vectors.shape[1]} dimensions")

    # FAISS.from_embeddings is typed for (text, list of floats) pairs, the
    # form LangChain's Embeddings.embed_documents returns; so the vectors are
    # handed over as lists. Making those lists stands in for what an
    # embedding stage hands over (in `build` it is inside embed_documents,
    # counted as embedding), so it is done before the clock starts: build_s
    # is FAISS's own work (which turns the lists back into a float32 array)
    # and BM25's.
    texts = [c.page_content for c in chunks]
    pairs = list(zip(texts, vectors.tolist()))
    del vectors
    started = time.perf_counter()
    store = FAISS.from_embeddings(pairs, embeddings, metadatas=[c.metadata for c in chunks])
    bm25 = BM25Retriever.from_documents(chunks, k=TOP_K)
    built = time.perf_counter()
    progress(f"  indexed (FAISS, BM25) in {built - started:.1f} s")
    stats = {"documents": len(titles), "chunks": len(chunks), "wall_s": built - started}
    return store, bm25, stats


def read_queries(path, count):
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    if not lines:
        raise SystemExit(f"{path} holds no sentences")
    return [lines[i % len(lines)] for i in range(count)]


def latencies(retriever, queries, warm_up, keep):
    """Milliseconds of each query after the warm-up ones."""
    times = []
    for query in queries:
        start = time.perf_counter()
        retriever.invoke(query)[:keep]  # what a caller gets: the first `keep` results
        times.append((time.perf_counter() - start) * 1000)
    return [round(t, 3) for t in times[warm_up:]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", required=True, help="the corpus folder (bench/corpus-data prints it)")
    parser.add_argument("--model", required=True, help="model.onnx (all-minilm-l6-v2-int8)")
    parser.add_argument("--tokenizer", required=True, help="tokenizer.json (all-minilm-l6-v2)")
    parser.add_argument(
        "--ingest", default="nodejs,python", help="the corpus folders ingested (default nodejs,python)"
    )
    parser.add_argument(
        "--files",
        metavar="LIST",
        help="ingest exactly these files: a text file of paths relative to --corpus, one a line (overrides --ingest)",
    )
    parser.add_argument(
        "--search-from",
        metavar="DIR",
        help="search over the chunks and vectors in DIR (chunks.jsonl, vectors.f32) instead of making them",
    )
    parser.add_argument("--chunk-tokens", type=int, default=254, help="ingestion chunk size (default 254)")
    parser.add_argument("--overlap-tokens", type=int, default=32, help="ingestion chunk overlap (default 32)")
    parser.add_argument("--search-chunk-tokens", type=int, default=64, help="search chunk size (default 64)")
    parser.add_argument(
        "--search-overlap-tokens", type=int, default=16, help="search chunk overlap (default 16)"
    )
    parser.add_argument(
        "--sentences",
        default=os.path.join(os.path.dirname(HERE), "sentences.txt"),
        help="query sentences, one a line (default bench/sentences.txt)",
    )
    parser.add_argument("--queries", type=int, default=1000, help="timed queries per mode (default 1000)")
    parser.add_argument(
        "--search-queries", type=int, default=None, help="timed queries per mode here (default --queries)"
    )
    parser.add_argument("--warm-up", type=int, default=20, help="untimed queries first (default 20)")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads (default 2)")
    parser.add_argument("--search-only", action="store_true", help="skip the ingestion measure")
    parser.add_argument("--skip-search", action="store_true", help="skip the search measure")
    parser.add_argument(
        "--limit-files", type=int, default=0, help="only the first N files of each measure (not with --search-from)"
    )
    args = parser.parse_args()

    tokenizer, session = load(args.model, args.tokenizer, args.threads, MAX_TOKENS, True)
    embeddings = OnnxEmbeddings(tokenizer, session)
    embeddings.embed_query("warm-up: first-run allocations")
    count_tokens = token_counter(args.tokenizer)
    versions = {name: version(name) for name in PACKAGES}
    versions["python"] = platform.python_version()

    ingestion = None
    if not args.search_only:
        if args.files:
            files = read_file_list(args.corpus, args.files, args.limit_files)
            progress(f"ingestion: {len(files)} files from {args.files}")
        else:
            folders = [f for f in args.ingest.split(",") if f]
            files = list_files(args.corpus, folders, args.limit_files)
            progress(f"ingestion: {len(files)} files from {', '.join(folders)}")
        _, _, ingestion = build(
            args.corpus, files, embeddings, count_tokens, args.chunk_tokens, args.overlap_tokens
        )

    search = None
    if not args.skip_search:
        count = args.queries if args.search_queries is None else args.search_queries
        queries = read_queries(args.sentences, args.warm_up + count)
        if args.search_from:
            progress(f"search: chunks and vectors from {args.search_from}")
            store, bm25, stats = build_from(args.search_from, embeddings)
        else:
            folders = sorted(
                e.name for e in os.scandir(args.corpus) if e.is_dir() and not e.name.startswith(".")
            )
            files = list_files(args.corpus, folders, args.limit_files)
            progress(f"search: {len(files)} files from {', '.join(folders)}")
            store, bm25, stats = build(
                args.corpus, files, embeddings, count_tokens, args.search_chunk_tokens, args.search_overlap_tokens
            )
        vector = store.as_retriever(search_kwargs={"k": TOP_K})
        hybrid = EnsembleRetriever(
            retrievers=[
                store.as_retriever(search_kwargs={"k": CANDIDATES}),
                BM25Retriever(vectorizer=bm25.vectorizer, docs=bm25.docs, k=CANDIDATES),
            ],
            weights=[1.0, 1.0],
            c=RRF_C,
            id_key="chunk",
        )
        modes = {}
        for mode, retriever in (("hybrid", hybrid), ("vector", vector), ("keyword", bm25)):
            progress(f"  {mode}: {len(queries)} queries")
            modes[mode] = latencies(retriever, queries, args.warm_up, TOP_K)
        search = {
            "documents": stats["documents"],
            "chunks": stats["chunks"],
            "build_s": stats["wall_s"],
            "modes": modes,
        }

    engine = (
        f"LangChain {versions['langchain-core']} + FAISS {versions['faiss-cpu']}"
        f" + rank_bm25 {versions['rank-bm25']}"
    )
    print(json.dumps({"engine": engine, "versions": versions, "ingestion": ingestion, "search": search}))


if __name__ == "__main__":
    main()
