#!/usr/bin/env python3
"""Checks the retrieval evaluation set against the manuals it is about.

Usage: python3 bench/eval/check.py [--corpus DIR] [--others] FILE.jsonl...

The corpus is the folder `bench/corpus-data` prints (its `python/` and
`nodejs/` pages); a page is named by its path in that folder, e.g.
`python/library/statistics.html` or `nodejs/fs.md`.

Every item must:
- have a unique `id`, a `difficulty` (easy, medium or hard), and either a
  `question` or `turns` (user and assistant messages alternating, starting
  and ending with the user, at least two user turns);
- name in `relevant` pages that exist, and an `answer_contains` string that
  is found (case and runs of whitespace aside) in the visible text of every
  one of them;
- be paraphrased: no run of SHARED_WORDS words of the question (the last
  turn of a conversation) may appear in a relevant page, and the question
  may not contain a relevant page's title.

With --others, each item also lists the pages outside `relevant` whose text
holds `answer_contains`, to judge whether `relevant` names every page that
answers. Lines starting with `#` are comments. Exits 1 on any error.
"""

import argparse
import html.parser
import json
import os
import re
import subprocess
import sys
from collections import Counter

SHARED_WORDS = 6
DIFFICULTIES = {"easy", "medium", "hard"}
SKIPPED_TAGS = {"script", "style", "nav", "noscript", "template", "svg"}


class _Text(html.parser.HTMLParser):
    """The visible text of a page and its <title>."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.title, self._skip, self._in_title = [], "", 0, False

    def handle_starttag(self, tag, attrs):
        if tag in SKIPPED_TAGS:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag in {"p", "div", "li", "tr", "br", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "dt", "dd"}:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in SKIPPED_TAGS and self._skip:
            self._skip -= 1
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        elif not self._skip:
            self.parts.append(data)


def page_text(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        raw = f.read()
    if path.endswith(".html"):
        parser = _Text()
        parser.feed(raw)
        return " ".join(parser.parts), parser.title.strip()
    title = next((line.lstrip("# ").strip() for line in raw.splitlines() if line.startswith("# ")), "")
    return raw, title


def normalise(text):
    return re.sub(r"\s+", " ", text).strip().lower()


def words(text):
    return re.findall(r"[a-z0-9_]+", text.lower())


def default_corpus():
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus-data")
    return subprocess.run(["bash", script], check=True, capture_output=True, text=True).stdout.strip()


def load_corpus(root):
    pages = {}
    for manual in ("python", "nodejs"):
        base = os.path.join(root, manual)
        for folder, _, files in os.walk(base):
            for name in files:
                if name.endswith((".html", ".md")):
                    path = os.path.join(folder, name)
                    text, title = page_text(path)
                    pages[os.path.relpath(path, root)] = (normalise(text), title)
    return pages


def last_question(item):
    if "turns" in item:
        return item["turns"][-1]["content"] if item["turns"] else ""
    return item.get("question", "")


def check_item(item, pages, seen_ids):
    errors = []
    known = {"id", "question", "turns", "relevant", "answer_contains", "difficulty", "note"}
    unknown = set(item) - known
    if unknown:
        errors.append(f"unknown fields {sorted(unknown)}")
    if not item.get("id"):
        errors.append("no id")
    elif item["id"] in seen_ids:
        errors.append(f"id {item['id']} repeated")
    seen_ids.add(item.get("id"))
    if item.get("difficulty") not in DIFFICULTIES:
        errors.append(f"difficulty must be one of {sorted(DIFFICULTIES)}")
    if ("question" in item) == ("turns" in item):
        errors.append("needs exactly one of question and turns")
    if "turns" in item:
        turns = item["turns"]
        roles = [t.get("role") for t in turns]
        expected = ["user" if i % 2 == 0 else "assistant" for i in range(len(turns))]
        if roles != expected or len(turns) < 3 or roles[-1] != "user":
            errors.append("turns must alternate user/assistant, start and end with user, at least two user turns")
        if any(not str(t.get("content", "")).strip() for t in turns):
            errors.append("a turn is empty")
    question = last_question(item)
    if not question.strip():
        errors.append("empty question")
    relevant = item.get("relevant") or []
    if not relevant:
        errors.append("relevant is empty")
    needle = normalise(item.get("answer_contains", ""))
    if not needle:
        errors.append("answer_contains is empty")
    q_words = words(question)
    q_grams = {tuple(q_words[i : i + SHARED_WORDS]) for i in range(len(q_words) - SHARED_WORDS + 1)}
    for page in relevant:
        if page not in pages:
            errors.append(f"no page {page}")
            continue
        text, title = pages[page]
        if needle and needle not in text:
            errors.append(f"answer_contains {item['answer_contains']!r} is not on {page}")
        page_words = words(text)
        page_grams = {tuple(page_words[i : i + SHARED_WORDS]) for i in range(len(page_words) - SHARED_WORDS + 1)}
        shared = q_grams & page_grams
        if shared:
            errors.append(f"question copies {' '.join(sorted(shared)[0])!r} from {page}")
        # Multi-word titles only: a one-word title ("Process", "os") is
        # also the ordinary word or name a user would type.
        short_title = re.split(r" [—–-] ", title)[0].strip().lower()
        if len(short_title.split()) > 1 and short_title in question.lower():
            errors.append(f"question contains the page title {short_title!r} of {page}")
    return errors


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--corpus")
    parser.add_argument("--others", action="store_true", help="list other pages holding answer_contains")
    args = parser.parse_args()
    pages = load_corpus(args.corpus or default_corpus())
    seen, failures, items = set(), 0, []
    for file in args.files:
        with open(file, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip() or line.startswith("#"):
                    continue
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as e:
                    print(f"{file}:{n}: not JSON: {e}")
                    failures += 1
                    continue
                items.append(item)
                for error in check_item(item, pages, seen):
                    print(f"{file}:{n} [{item.get('id')}]: {error}")
                    failures += 1
                if args.others and item.get("answer_contains"):
                    needle = normalise(item["answer_contains"])
                    others = [p for p, (t, _) in pages.items() if needle in t and p not in item.get("relevant", [])]
                    if others:
                        print(f"{file}:{n} [{item.get('id')}]: also on {len(others)}: {', '.join(sorted(others)[:12])}")
    single = [i for i in items if "question" in i]
    turns = [i for i in items if "turns" in i]
    by_manual = Counter(p.split("/")[0] for i in items for p in i.get("relevant", [])[:1])
    print(
        f"{len(single)} questions, {len(turns)} conversations; "
        f"difficulty {dict(Counter(i.get('difficulty') for i in items))}; first relevant page by manual {dict(by_manual)}; "
        f"{failures} errors"
    )
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
