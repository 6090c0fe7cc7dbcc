//! Keeping a tenant's repeated page chrome out of its chunks.
//!
//! Generated documentation repeats the same blocks on every page: a
//! navigation bar ("Prev | Up | Home | Next"), a "Stability: 2 - Stable"
//! banner, a copyright footer. Often they are plain `div`s and tables, not
//! `nav` elements a parser could skip. Chunked with the page, they become
//! passages that match every query a little and answer none, and they
//! blur the embedding of the text they are cut with.
//!
//! Decisions:
//! - Evidence comes from the tenant's other documents: a block is
//!   boilerplate when [`MIN_OTHER_DOCUMENTS`] other documents hold the same
//!   text. One page alone cannot tell a footer from a closing paragraph.
//! - Only the ends of a document are looked at (its first and last
//!   [`EDGE_BLOCKS`] paragraphs), and only unbroken runs there are dropped:
//!   chrome sits at the edges, while a sentence repeated inside many pages
//!   ("New in version 3.8.") is part of the text around it.
//! - Headings and code are never dropped; a run stops at code. A document
//!   whose text would all be dropped keeps it all.
//! - The first few documents of a tenant are chunked before their
//!   boilerplate is known to repeat, and keep it: re-ingesting them (a new
//!   version) drops it.

use sha2::{Digest, Sha256};

use crate::chunk::{Block, BlockKind};

/// Paragraphs looked at from each end of a document.
pub const EDGE_BLOCKS: usize = 8;
/// Other documents that must hold a block for it to be boilerplate.
pub const MIN_OTHER_DOCUMENTS: i64 = 5;

/// A block's text, lowercased with runs of whitespace made one space,
/// hashed to 64 bits.
pub fn fingerprint(text: &str) -> i64 {
    let normal: String = text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    let digest = Sha256::digest(normal.as_bytes());
    i64::from_le_bytes(digest[..8].try_into().expect("a SHA-256 digest has 8 bytes"))
}

/// The indexes of the paragraphs at the ends of `blocks` (the first and
/// last [`EDGE_BLOCKS`] paragraphs, each once).
fn edge_paragraphs(blocks: &[Block]) -> Vec<usize> {
    let paragraphs: Vec<usize> =
        blocks.iter().enumerate().filter(|(_, b)| b.kind == BlockKind::Paragraph).map(|(i, _)| i).collect();
    let mut edges: Vec<usize> = paragraphs.iter().take(EDGE_BLOCKS).copied().collect();
    let tail = paragraphs.len().saturating_sub(EDGE_BLOCKS).max(edges.len());
    edges.extend(paragraphs[tail..].iter().copied());
    edges
}

/// The fingerprints of the paragraphs at the ends of `blocks`: what is
/// recorded for a document and looked up in the others.
pub fn edge_prints(blocks: &[Block]) -> Vec<i64> {
    edge_paragraphs(blocks).into_iter().map(|i| fingerprint(&blocks[i].text)).collect()
}

/// `blocks` without the unbroken runs of boilerplate paragraphs at either
/// end; `repeated` says whether a fingerprint is held by enough other
/// documents. Returns the blocks kept and how many were dropped.
pub fn strip(blocks: Vec<Block>, repeated: impl Fn(i64) -> bool) -> (Vec<Block>, usize) {
    let mut drop = vec![false; blocks.len()];
    let mut mark = |order: &mut dyn Iterator<Item = usize>| {
        let mut seen = 0;
        for i in order {
            match blocks[i].kind {
                BlockKind::Heading(_) => continue,
                BlockKind::Code => break,
                BlockKind::Paragraph => {
                    seen += 1;
                    if seen > EDGE_BLOCKS || !repeated(fingerprint(&blocks[i].text)) {
                        break;
                    }
                    drop[i] = true;
                }
            }
        }
    };
    mark(&mut (0..blocks.len()));
    mark(&mut (0..blocks.len()).rev());
    let dropped = drop.iter().filter(|d| **d).count();
    let text_left = blocks.iter().zip(&drop).any(|(b, d)| !d && !matches!(b.kind, BlockKind::Heading(_)));
    if dropped == 0 || !text_left {
        return (blocks, 0);
    }
    let kept = blocks.into_iter().zip(drop).filter(|(_, d)| !d).map(|(b, _)| b).collect();
    (kept, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(kind: BlockKind, text: &str) -> Block {
        Block { kind, text: text.into(), span: 0..text.len() }
    }

    fn para(text: &str) -> Block {
        block(BlockKind::Paragraph, text)
    }

    fn texts(blocks: &[Block]) -> Vec<&str> {
        blocks.iter().map(|b| b.text.as_str()).collect()
    }

    const CHROME: [&str; 3] =
        ["Prev | Up | Home | Next", "Stability: 2 - Stable", "© 2024 Example Corp. All rights reserved."];

    fn is_chrome(print: i64) -> bool {
        CHROME.iter().any(|c| fingerprint(c) == print)
    }

    #[test]
    fn fingerprints_ignore_case_and_spacing() {
        assert_eq!(fingerprint("Prev | Up  |\n Home"), fingerprint("prev | up | home"));
        assert_ne!(fingerprint("Prev | Up"), fingerprint("Prev | Down"));
    }

    #[test]
    fn runs_of_repeated_paragraphs_at_both_ends_are_dropped_and_headings_kept() {
        let blocks = vec![
            para(CHROME[0]),
            block(BlockKind::Heading(1), "File system"),
            para(CHROME[1]),
            para("The fs module reads and writes files."),
            para(CHROME[1]),
            para("Its promise API returns promises."),
            para(CHROME[0]),
            para(CHROME[2]),
        ];
        let (kept, dropped) = strip(blocks, is_chrome);
        assert_eq!(dropped, 4);
        // The banner inside the page stays: it is not at an edge.
        assert_eq!(
            texts(&kept),
            vec![
                "File system",
                "The fs module reads and writes files.",
                CHROME[1],
                "Its promise API returns promises."
            ]
        );
    }

    #[test]
    fn code_stops_a_run_and_a_page_of_chrome_only_is_kept_whole() {
        let blocks = vec![block(BlockKind::Code, CHROME[0]), para(CHROME[0]), para("Own text.")];
        assert_eq!(strip(blocks.clone(), is_chrome).1, 0);
        let only_chrome = vec![block(BlockKind::Heading(1), "Index"), para(CHROME[0]), para(CHROME[2])];
        let (kept, dropped) = strip(only_chrome.clone(), is_chrome);
        assert_eq!((kept, dropped), (only_chrome, 0));
    }

    #[test]
    fn only_paragraphs_near_the_ends_are_fingerprinted() {
        let blocks: Vec<Block> = (0..30).map(|n| para(&format!("paragraph {n}"))).collect();
        let prints = edge_prints(&blocks);
        assert_eq!(prints.len(), 2 * EDGE_BLOCKS);
        assert_eq!(prints[0], fingerprint("paragraph 0"));
        assert_eq!(prints[prints.len() - 1], fingerprint("paragraph 29"));
        assert!(!prints.contains(&fingerprint("paragraph 15")));
        let short: Vec<Block> = (0..3).map(|n| para(&format!("p{n}"))).collect();
        assert_eq!(edge_prints(&short).len(), 3);
    }
}
