//! Plain text: paragraphs are runs of non-blank lines.
//!
//! Nothing else in a plain text file is reliable structure: indentation,
//! underlines or numbering may or may not mean something, so the only cut
//! made is the one every reader agrees on, the blank line. Each paragraph
//! keeps its exact span, without the surrounding whitespace.

use std::ops::Range;

use crate::chunk::{Block, BlockKind};

/// Plain text: one paragraph per run of non-blank lines.
pub fn plain_text(source: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut start = None::<usize>;
    let mut end = 0;
    let mut offset = 0;
    for line in source.split_inclusive('\n') {
        let content = line.trim_end_matches(['\n', '\r']);
        if content.trim().is_empty() {
            if let Some(from) = start.take() {
                blocks.push(paragraph(source, from..end));
            }
        } else {
            start.get_or_insert(offset + (content.len() - content.trim_start().len()));
            end = offset + content.trim_end().len();
        }
        offset += line.len();
    }
    if let Some(from) = start {
        blocks.push(paragraph(source, from..end));
    }
    blocks
}

fn paragraph(source: &str, span: Range<usize>) -> Block {
    Block { kind: BlockKind::Paragraph, text: source[span.clone()].to_owned(), span }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_paragraphs_keep_their_exact_spans() {
        let source = "  First line\nstill first.\n\n\r\nSecond é.\n\n\n";
        let blocks = plain_text(source);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].text, "First line\nstill first.");
        assert_eq!(&source[blocks[1].span.clone()], "Second é.");
        assert!(plain_text("").is_empty() && plain_text("\n \n\t\n").is_empty());
    }
}
