//! Cutting a parsed document into chunks an embedding model can read.
//!
//! A chunk must fit the model's token window, or its tail is silently
//! ignored when embedded. Within that budget, chunks follow the document's
//! structure: a heading starts a new chunk once the chunk before it holds
//! enough text to stand alone (a passage should not mix two sections, but
//! a reference page of one-line sections should not become a heap of
//! passages too short to say what they are about: a short section takes
//! the next one in, heading line included), paragraphs and code blocks are
//! kept whole when they fit, and only a block too long for one chunk is
//! cut, at word boundaries.
//! Consecutive chunks of one section overlap by a few tokens, so a sentence
//! cut at a boundary is still found whole in one of them. Every chunk keeps
//! its heading path and the byte and character span of the source it came
//! from, so a citation can point back to the exact place.

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// Counts the tokens of a text as the embedding model reads it, without
/// the model's special markers (`[CLS]`, `[SEP]`).
pub trait TokenCounter {
    fn count(&self, text: &str) -> usize;
}

/// What a block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// A heading of this level (1 is the highest).
    Heading(u8),
    Paragraph,
    Code,
}

/// A structural piece of a parsed document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub kind: BlockKind,
    /// The text as it should be embedded and shown.
    pub text: String,
    /// Where the block is in the source, in bytes.
    pub span: Range<usize>,
}

/// How big chunks are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkOptions {
    /// Most tokens in a chunk (the model's window minus its markers).
    pub max_tokens: usize,
    /// Tokens a chunk repeats from the end of the previous one in the same
    /// section.
    pub overlap_tokens: usize,
    /// A heading starts a new chunk only once the chunk holds this many
    /// tokens; a shorter chunk takes in the next section, heading line and
    /// all, while it fits (0: every heading starts a chunk).
    pub min_tokens: usize,
}

impl ChunkOptions {
    /// The window of MiniLM-class models and a small overlap. Short
    /// sections are not merged: on `bench/eval`, merging them up to 128
    /// tokens lowered MRR@10 (hybrid 0.738 to 0.723, vector 0.734 to 0.727).
    pub const DEFAULT: ChunkOptions = ChunkOptions { max_tokens: 254, overlap_tokens: 32, min_tokens: 0 };
}

impl Default for ChunkOptions {
    fn default() -> Self {
        ChunkOptions::DEFAULT
    }
}

/// A passage ready to embed and index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Position in the document, from 0.
    pub position: usize,
    pub text: String,
    /// The headings above the chunk, outermost first.
    pub heading_path: Vec<String>,
    /// Where the chunk's text is in the source, in bytes and in characters.
    pub byte_span: Range<usize>,
    pub char_span: Range<usize>,
    pub tokens: usize,
}

/// A piece of text being gathered into a chunk.
#[derive(Debug, Clone)]
struct Piece {
    text: String,
    span: Range<usize>,
    tokens: usize,
    /// The headings above the piece (a heading's own piece included).
    path: Vec<String>,
}

/// Cuts `blocks` (parsed from `source`) into chunks.
pub fn chunk_blocks(source: &str, blocks: &[Block], counter: &dyn TokenCounter, options: ChunkOptions) -> Vec<Chunk> {
    let max = options.max_tokens.max(1);
    let overlap = options.overlap_tokens.min(max / 2);
    let mut chunker = Chunker {
        source,
        chunks: Vec::new(),
        headings: Vec::new(),
        current: Vec::new(),
        pending: Vec::new(),
        lead: Vec::new(),
        max,
        overlap,
    };
    for block in blocks {
        match block.kind {
            BlockKind::Heading(level) => {
                let text = block.text.trim();
                chunker.headings.retain(|(l, _)| *l < level);
                chunker.headings.push((level, text.to_owned()));
                let piece = Piece {
                    text: text.to_owned(),
                    span: block.span.clone(),
                    tokens: counter.count(text),
                    path: chunker.path(),
                };
                if !chunker.current.is_empty() && chunker.tokens() < options.min_tokens {
                    // Held back until the section's first block shows
                    // whether the heading and it still fit this chunk.
                    chunker.pending.push(piece);
                } else {
                    chunker.flush(false);
                    chunker.lead.retain(|h| piece.path.starts_with(&h.path));
                    chunker.lead.push(piece);
                }
            }
            BlockKind::Paragraph | BlockKind::Code => {
                let tokens = counter.count(&block.text);
                if tokens <= max && block.text.len() <= max * MAX_BYTES_PER_TOKEN {
                    let piece =
                        Piece { text: block.text.clone(), span: block.span.clone(), tokens, path: chunker.path() };
                    chunker.start_section(&piece);
                    chunker.add(piece);
                } else {
                    for (i, piece) in split_block(block, counter, max, overlap, &chunker.path()).into_iter().enumerate()
                    {
                        if i == 0 {
                            chunker.start_section(&piece);
                        }
                        chunker.add(piece);
                    }
                }
            }
        }
    }
    chunker.flush(false);
    chunker.chunks
}

struct Chunker<'a> {
    source: &'a str,
    chunks: Vec<Chunk>,
    headings: Vec<(u8, String)>,
    current: Vec<Piece>,
    /// Headings seen since the last text, waiting to join the current
    /// chunk with their section's first block.
    pending: Vec<Piece>,
    /// The headings the current chunk starts under: they go into its text
    /// if it takes in later sections, which its path cannot name.
    lead: Vec<Piece>,
    max: usize,
    overlap: usize,
}

impl Chunker<'_> {
    fn path(&self) -> Vec<String> {
        self.headings.iter().map(|(_, h)| h.clone()).collect()
    }

    /// Before a section's first block: its held-back headings join the
    /// current chunk when they and the block fit, or the chunk ends there.
    fn start_section(&mut self, first: &Piece) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let shared = shared_path(self.current.iter().chain(&pending).chain([first])).len();
        let lead: Vec<Piece> = std::mem::take(&mut self.lead).into_iter().filter(|h| h.path.len() > shared).collect();
        let tokens: usize = lead.iter().chain(&pending).chain([first]).map(|p| p.tokens).sum();
        let bytes: usize = lead.iter().chain(&pending).chain([first]).map(|p| p.text.len()).sum();
        if self.tokens() + tokens <= self.max && self.bytes() + bytes <= self.max * MAX_BYTES_PER_TOKEN {
            self.current.splice(0..0, lead);
            self.current.extend(pending);
        } else {
            self.flush(false);
        }
    }

    fn tokens(&self) -> usize {
        self.current.iter().map(|p| p.tokens).sum()
    }

    fn bytes(&self) -> usize {
        self.current.iter().map(|p| p.text.len()).sum()
    }

    /// Whether `piece` still fits: in tokens, and in bytes (a tokenizer that
    /// reads a long run of symbols as one unknown token must not make a
    /// chunk of megabytes).
    fn fits(&self, piece: &Piece) -> bool {
        self.tokens() + piece.tokens <= self.max && self.bytes() + piece.text.len() <= self.max * MAX_BYTES_PER_TOKEN
    }

    fn add(&mut self, piece: Piece) {
        if !self.current.is_empty() && !self.fits(&piece) {
            self.flush(true);
            // The overlap must leave room for the new piece.
            while !self.current.is_empty() && !self.fits(&piece) {
                self.current.remove(0);
            }
        }
        self.current.push(piece);
    }

    /// Emits the gathered pieces as a chunk; with `keep_overlap`, keeps the
    /// last pieces (up to the overlap) to start the next one.
    fn flush(&mut self, keep_overlap: bool) {
        self.pending.clear();
        if self.current.is_empty() {
            return;
        }
        let start = self.current.first().map_or(0, |p| p.span.start);
        let end = self.current.last().map_or(0, |p| p.span.end);
        let text = self.current.iter().map(|p| p.text.as_str()).collect::<Vec<_>>().join("\n\n");
        let char_start = self.source[..start].chars().count();
        let char_end = char_start + self.source[start..end].chars().count();
        // A chunk that took in later sections has their headings in its
        // text, and is under the headings all its pieces share.
        let heading_path = shared_path(self.current.iter());
        self.lead.clear();
        self.chunks.push(Chunk {
            position: self.chunks.len(),
            text,
            heading_path,
            byte_span: start..end,
            char_span: char_start..char_end,
            tokens: self.tokens(),
        });
        let mut kept = Vec::new();
        if keep_overlap {
            let mut tokens = 0;
            for piece in self.current.iter().rev() {
                if tokens + piece.tokens > self.overlap {
                    break;
                }
                tokens += piece.tokens;
                kept.insert(0, piece.clone());
            }
        }
        self.current = kept;
    }
}

/// The headings all `pieces` are under.
fn shared_path<'p>(mut pieces: impl Iterator<Item = &'p Piece>) -> Vec<String> {
    let mut path = pieces.next().map(|p| p.path.clone()).unwrap_or_default();
    for piece in pieces {
        let common = path.iter().zip(&piece.path).take_while(|(a, b)| a == b).count();
        path.truncate(common);
    }
    path
}

/// Cuts a block too long for one chunk into pieces at whitespace, small
/// enough (a quarter of a chunk, and no more than the overlap) that the
/// overlap can repeat whole pieces. A single word longer than `max` tokens
/// becomes a piece of its own, cut at characters.
fn split_block(block: &Block, counter: &dyn TokenCounter, max: usize, overlap: usize, path: &[String]) -> Vec<Piece> {
    let quarter = max / 4;
    let target = if overlap > 0 { quarter.min(overlap) } else { quarter }.max(1);
    let source = &block.text;
    // The block's text maps onto its span only when it is the source text
    // itself; otherwise every piece points at the whole block.
    let exact = block.span.len() == source.len();
    let mut pieces = Vec::new();
    let mut start = None::<usize>;
    let mut end = 0;
    let mut tokens = 0;
    let push = |pieces: &mut Vec<Piece>, from: usize, to: usize, tokens: usize| {
        let span = if exact { block.span.start + from..block.span.start + to } else { block.span.clone() };
        pieces.push(Piece { text: source[from..to].to_owned(), span, tokens, path: path.to_vec() });
    };
    for (at, word) in words(source) {
        let count = counter.count(word);
        if count > max || word.len() > max * MAX_BYTES_PER_TOKEN {
            if let Some(from) = start.take() {
                push(&mut pieces, from, end, tokens);
            }
            for (from, to) in char_cuts(word, counter, max) {
                push(&mut pieces, at + from, at + to, counter.count(&word[from..to]));
            }
            tokens = 0;
            continue;
        }
        if start.is_some() && tokens + count > target {
            push(&mut pieces, start.take().unwrap_or(0), end, tokens);
            tokens = 0;
        }
        start.get_or_insert(at);
        end = at + word.len();
        tokens += count;
    }
    if let Some(from) = start {
        push(&mut pieces, from, end, tokens);
    }
    pieces
}

/// The words of `text` with their byte offsets.
fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split_whitespace().map(move |word| (word.as_ptr() as usize - text.as_ptr() as usize, word))
}

/// Cuts one huge word into character runs of at most `max` tokens.
/// Bytes a single token spans at most, for cutting words without spaces.
const MAX_BYTES_PER_TOKEN: usize = 16;

fn char_cuts(word: &str, counter: &dyn TokenCounter, max: usize) -> Vec<(usize, usize)> {
    // No token is longer than this many bytes times `max`, so a cut never
    // needs to look further: each cut costs the same however long the word
    // (a multi-megabyte base64 blob stays linear), and a tokenizer that
    // reads an overlong word as one unknown token cannot make one huge piece.
    let window = max.saturating_mul(MAX_BYTES_PER_TOKEN).max(MAX_BYTES_PER_TOKEN);
    let mut cuts = Vec::new();
    let mut from = 0;
    while from < word.len() {
        let mut to = word.len().min(from + window);
        while !word.is_char_boundary(to) {
            to -= 1;
        }
        if to == from {
            to = from + word[from..].chars().next().map_or(1, char::len_utf8);
        }
        // Halve until it fits, then grow back in smaller steps.
        while counter.count(&word[from..to]) > max {
            let mut mid = from + (to - from) / 2;
            while !word.is_char_boundary(mid) {
                mid += 1;
            }
            if mid >= to {
                break;
            }
            to = mid;
        }
        cuts.push((from, to));
        from = to;
    }
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One token per whitespace-separated word, as a stand-in tokenizer.
    struct Words;

    impl TokenCounter for Words {
        fn count(&self, text: &str) -> usize {
            text.split_whitespace().map(|w| w.len().div_ceil(10)).sum()
        }
    }

    /// Blocks of a Markdown-like text: `#` headings, blank-line paragraphs.
    fn blocks(source: &str) -> Vec<Block> {
        let mut out = Vec::new();
        let mut offset = 0;
        for part in source.split("\n\n") {
            let trimmed = part.trim();
            let start = offset + part.find(trimmed).unwrap_or(0);
            let span = start..start + trimmed.len();
            offset += part.len() + 2;
            if trimmed.is_empty() {
                continue;
            }
            let level = trimmed.chars().take_while(|c| *c == '#').count();
            let kind = if level > 0 { BlockKind::Heading(level as u8) } else { BlockKind::Paragraph };
            let text = trimmed.trim_start_matches('#').trim().to_owned();
            let text = if level > 0 { text } else { trimmed.to_owned() };
            out.push(Block { kind, text, span });
        }
        out
    }

    fn options(max: usize, overlap: usize) -> ChunkOptions {
        ChunkOptions { max_tokens: max, overlap_tokens: overlap, min_tokens: 0 }
    }

    #[test]
    fn headings_start_chunks_and_give_their_path() {
        let source =
            "# Guide\n\nIntro words here.\n\n## Install\n\nRun the script.\n\n## Use\n\nCall it.\n\n# Other\n\nElse.";
        let chunks = chunk_blocks(source, &blocks(source), &Words, options(100, 0));
        let paths: Vec<Vec<String>> = chunks.iter().map(|c| c.heading_path.clone()).collect();
        assert_eq!(
            paths,
            [vec!["Guide"], vec!["Guide", "Install"], vec!["Guide", "Use"], vec!["Other"]]
                .map(|p| p.into_iter().map(String::from).collect::<Vec<_>>())
        );
        assert_eq!(chunks[1].text, "Run the script.");
        assert_eq!(chunks.iter().map(|c| c.position).collect::<Vec<_>>(), [0, 1, 2, 3]);
    }

    /// The reference page shape: a heading per function, a line or two each.
    const REFERENCE: &str = "# fs\n\nFile system calls.\n\n## open\n\nOpens a file.\n\n## close\n\nCloses it.\n\n\
        ## read\n\nReads bytes.\n\n# Other\n\nElse entirely.";

    #[test]
    fn short_sections_join_the_next_with_their_heading_line() {
        let options = ChunkOptions { min_tokens: 5, ..options(100, 0) };
        let chunks = chunk_blocks(REFERENCE, &blocks(REFERENCE), &Words, options);
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "File system calls.\n\nopen\n\nOpens a file.",
                "close\n\nCloses it.\n\nread\n\nReads bytes.",
                "Else entirely."
            ]
        );
        // A chunk is under the headings all its parts share.
        let paths: Vec<Vec<&str>> =
            chunks.iter().map(|c| c.heading_path.iter().map(String::as_str).collect()).collect();
        assert_eq!(paths, [vec!["fs"], vec!["fs"], vec!["Other"]]);
        // The span runs from the first part to the last, heading marks and all.
        for chunk in &chunks {
            let first = chunk.text.split("\n\n").next().unwrap_or_default();
            let last = chunk.text.rsplit("\n\n").next().unwrap_or_default();
            let spanned = &REFERENCE[chunk.byte_span.clone()];
            assert!(spanned.trim_start_matches(['#', ' ']).starts_with(first), "{spanned:?}");
            assert!(spanned.ends_with(last), "{spanned:?}");
        }
    }

    #[test]
    fn a_section_that_does_not_fit_starts_its_own_chunk() {
        let source = "# A\n\nshort.\n\n## B\n\none two three four five six seven eight";
        let options = ChunkOptions { min_tokens: 50, ..options(8, 0) };
        let chunks = chunk_blocks(source, &blocks(source), &Words, options);
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["short.", "one two three four five six seven eight"]);
        assert_eq!(chunks[1].heading_path, ["A", "B"], "its heading is in its path, not its text");
        assert!(chunks.iter().all(|c| c.tokens <= 8));
    }

    #[test]
    fn with_no_minimum_every_heading_starts_a_chunk() {
        let chunks = chunk_blocks(REFERENCE, &blocks(REFERENCE), &Words, options(100, 0));
        assert_eq!(chunks.len(), 5);
        assert!(chunks.iter().all(|c| !c.text.contains("\n\n")), "no heading line in any text");
    }

    #[test]
    fn spans_point_back_to_the_source() {
        let source = "# Été\n\nPremière phrase ici.\n\nDeuxième phrase là.";
        let chunks = chunk_blocks(source, &blocks(source), &Words, options(100, 0));
        assert_eq!(chunks.len(), 1);
        let chunk = &chunks[0];
        assert_eq!(&source[chunk.byte_span.clone()], "Première phrase ici.\n\nDeuxième phrase là.");
        let chars: String = source.chars().skip(chunk.char_span.start).take(chunk.char_span.len()).collect();
        assert_eq!(chars, "Première phrase ici.\n\nDeuxième phrase là.");
    }

    #[test]
    fn paragraphs_are_packed_up_to_the_budget_and_never_beyond() {
        let paragraphs: Vec<String> = (0..20).map(|i| format!("para{i} one two three four")).collect();
        let source = paragraphs.join("\n\n");
        let chunks = chunk_blocks(&source, &blocks(&source), &Words, options(12, 0));
        assert!(chunks.iter().all(|c| c.tokens <= 12), "{chunks:?}");
        assert_eq!(chunks.len(), 10, "two five-token paragraphs a chunk");
        // Nothing is lost: every paragraph is in some chunk.
        for p in &paragraphs {
            assert!(chunks.iter().any(|c| c.text.contains(p.as_str())), "{p} missing");
        }
    }

    #[test]
    fn consecutive_chunks_of_a_section_overlap() {
        let paragraphs: Vec<String> = (0..6).map(|i| format!("p{i} a b")).collect();
        let source = paragraphs.join("\n\n");
        let chunks = chunk_blocks(&source, &blocks(&source), &Words, options(9, 3));
        assert!(chunks.len() >= 2);
        for pair in chunks.windows(2) {
            let last_of_first = pair[0].text.rsplit("\n\n").next().unwrap();
            assert!(pair[1].text.starts_with(last_of_first), "{:?} then {:?}", pair[0].text, pair[1].text);
            assert!(pair[1].byte_span.start < pair[0].byte_span.end, "the spans overlap too");
        }
    }

    #[test]
    fn a_long_paragraph_is_cut_at_words_with_exact_spans() {
        let words: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
        let source = words.join(" ");
        let chunks = chunk_blocks(&source, &blocks(&source), &Words, options(40, 8));
        assert!(chunks.len() > 5);
        for chunk in &chunks {
            assert!(chunk.tokens <= 40);
            assert!(!chunk.text.starts_with(' ') && !chunk.text.ends_with(' '));
            let first_word = chunk.text.split_whitespace().next().unwrap();
            assert!(source[chunk.byte_span.clone()].starts_with(first_word));
        }
        for word in &words {
            assert!(chunks.iter().any(|c| c.text.split_whitespace().any(|w| w == word)), "{word} lost");
        }
    }

    #[test]
    fn a_single_enormous_word_is_cut_and_nothing_panics() {
        let source = "é".repeat(5000);
        let chunks = chunk_blocks(&source, &blocks(&source), &Words, options(16, 4));
        assert!(chunks.iter().all(|c| c.tokens <= 16));
        let total: usize = chunks.iter().map(|c| c.text.chars().count()).sum();
        assert!(total >= 5000, "every character is in some chunk");
    }

    #[test]
    fn empty_input_gives_no_chunks() {
        assert!(chunk_blocks("", &[], &Words, ChunkOptions::default()).is_empty());
        let only_headings = "# A\n\n## B";
        assert!(chunk_blocks(only_headings, &blocks(only_headings), &Words, ChunkOptions::default()).is_empty());
    }

    /// Reads any run of non-spaces as one token, as WordPiece does with an
    /// overlong word ([UNK]).
    struct OneTokenWords;

    impl TokenCounter for OneTokenWords {
        fn count(&self, text: &str) -> usize {
            text.split_whitespace().count()
        }
    }

    #[test]
    fn a_huge_word_is_cut_in_linear_time_and_bounded_pieces() {
        let word = "QUJD".repeat(500_000); // 2 MB without a space
        let source = format!("# Blob\n\n{word}\n");
        let blocks = blocks(&source);
        let options = ChunkOptions { max_tokens: 64, overlap_tokens: 8, min_tokens: 0 };
        for counter in [&Words as &dyn TokenCounter, &OneTokenWords] {
            let chunks = chunk_blocks(&source, &blocks, counter, options);
            assert!(chunks.len() >= word.len() / (64 * MAX_BYTES_PER_TOKEN));
            assert!(chunks.iter().all(|c| c.text.len() <= 64 * MAX_BYTES_PER_TOKEN), "chunks stay bounded");
            // Together the chunks cover the word, with no gap.
            let start = source.find(&word).unwrap_or_default();
            assert_eq!(chunks[0].byte_span.start, start);
            assert_eq!(chunks[chunks.len() - 1].byte_span.end, start + word.len());
            assert!(chunks.windows(2).all(|w| w[1].byte_span.start <= w[0].byte_span.end));
        }
    }
}
