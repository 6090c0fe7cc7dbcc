"""The benchmark's 2000 English sentences, made without any network.

Embedding throughput depends on text length, so a benchmark needs realistic
prose rather than one template repeated. Python ships such prose: the
reference manual's topics in `pydoc_data/topics.py`. This script takes its
paragraphs of running text (skipping headings, code blocks and grammar
rules), splits them into sentences, keeps those of 6 to 40 words, drops
duplicates, and writes the first 2000, one per line, in a fixed order
(topics sorted by name, sentences in reading order). The topics hold a
little under 2000 such sentences, so the docstrings of a fixed list of
standard modules (members sorted by name) follow them.

The text differs slightly between Python releases, so the output is
committed as `bench/sentences.txt` and that file is what the benchmarks
read; this script documents where it came from and rebuilds it:

    python3 bench/sentences.py > bench/sentences.txt
"""

import importlib
import inspect
import re
import sys

import pydoc_data.topics

COUNT = 2000
MIN_WORDS, MAX_WORDS = 6, 40
# Read after the topics, in this order.
MODULES = [
    "argparse", "collections", "datetime", "json", "logging", "pathlib", "subprocess", "threading",
    "unittest", "asyncio", "email", "http.client", "urllib.request", "shutil", "tarfile", "zipfile",
]

# A sentence ends at . ! or ? followed by space and a capital or a quote.
SENTENCE_END = re.compile(r'(?<=[.!?])\s+(?=["(]?[A-Z])')
# Headings are underlined with a row of one of these characters.
UNDERLINE = re.compile(r"^([*=\-^~#])\1{2,}$")


def paragraphs(text):
    """Paragraphs of running prose: no code, grammar rules or headings."""
    for block in re.split(r"\n\s*\n", text):
        lines = [line.strip() for line in block.split("\n")]
        if any(UNDERLINE.match(line) for line in lines):
            continue  # a heading
        if any(marker in block for marker in ("::=", ">>>", "...:")):
            continue  # grammar rules, interactive sessions
        # A list item or a note reads as prose once its marker is gone.
        lines[0] = re.sub(r"^([*+\-]|\d+\.|[A-Za-z ]+:)\s+(?=[A-Z])", "", lines[0])
        paragraph = " ".join(lines)
        letters = sum(c.isalpha() or c.isspace() for c in paragraph)
        if letters < 0.85 * len(paragraph):
            continue  # code: too many symbols for prose
        yield paragraph


def documents():
    """The texts to read, in a fixed order."""
    topics = pydoc_data.topics.topics
    for name in sorted(topics):
        yield topics[name]
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        yield inspect.getdoc(module) or ""
        for _, member in sorted(inspect.getmembers(module), key=lambda item: item[0]):
            if inspect.isclass(member) or inspect.isfunction(member):
                yield inspect.getdoc(member) or ""


def sentences():
    for text in documents():
        for paragraph in paragraphs(text):
            paragraph = re.sub(r"\s+", " ", paragraph).strip()
            for sentence in SENTENCE_END.split(paragraph):
                sentence = sentence.strip()
                words = len(sentence.split())
                if MIN_WORDS <= words <= MAX_WORDS and sentence[-1] in ".!?" and sentence[0].isupper():
                    yield sentence


def main():
    seen, chosen = set(), []
    for sentence in sentences():
        if sentence not in seen:
            seen.add(sentence)
            chosen.append(sentence)
            if len(chosen) == COUNT:
                break
    if len(chosen) < COUNT:
        sys.exit(f"only {len(chosen)} sentences found, {COUNT} needed")
    sys.stdout.write("".join(s + "\n" for s in chosen))


if __name__ == "__main__":
    main()
