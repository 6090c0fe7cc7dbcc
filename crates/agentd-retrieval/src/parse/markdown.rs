//! Markdown: CommonMark (with tables and strikethrough) through a real
//! parser.
//!
//! Headings are kept as structure, code blocks whole, and list items, table
//! rows and quotes become the paragraphs they read as. Emphasis and links
//! are dropped to their text; each block spans its Markdown source, markup
//! included, so a citation shows the passage as written.

use std::ops::Range;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use crate::chunk::{Block, BlockKind};

/// A block being read from Markdown events.
struct Open {
    kind: BlockKind,
    text: String,
    span: Range<usize>,
}

/// Markdown (CommonMark with tables and strikethrough).
pub fn markdown(source: &str) -> Vec<Block> {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    let mut blocks = Vec::new();
    let mut open: Option<Open> = None;
    let close = |open: &mut Option<Open>, blocks: &mut Vec<Block>| {
        if let Some(block) = open.take() {
            let text = if block.kind == BlockKind::Code { block.text } else { block.text.trim().to_owned() };
            if !text.trim().is_empty() {
                blocks.push(Block { kind: block.kind, text, span: block.span });
            }
        }
    };
    for (event, range) in Parser::new_ext(source, options).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                close(&mut open, &mut blocks);
                open = Some(Open { kind: BlockKind::Heading(level as u8), text: String::new(), span: range });
            }
            Event::Start(Tag::CodeBlock(_)) => {
                close(&mut open, &mut blocks);
                open = Some(Open { kind: BlockKind::Code, text: String::new(), span: range });
            }
            Event::Start(Tag::Paragraph | Tag::Item | Tag::TableRow | Tag::TableHead) => {
                close(&mut open, &mut blocks);
                open = Some(Open { kind: BlockKind::Paragraph, text: String::new(), span: range });
            }
            Event::End(
                TagEnd::Heading(_)
                | TagEnd::CodeBlock
                | TagEnd::Paragraph
                | TagEnd::Item
                | TagEnd::TableRow
                | TagEnd::TableHead,
            ) => close(&mut open, &mut blocks),
            Event::Text(text) | Event::Code(text) | Event::InlineHtml(text) => {
                let block = open.get_or_insert_with(|| Open {
                    kind: BlockKind::Paragraph,
                    text: String::new(),
                    span: range.clone(),
                });
                block.text.push_str(&text);
                block.span.end = block.span.end.max(range.end);
            }
            Event::End(TagEnd::TableCell) => {
                if let Some(block) = open.as_mut() {
                    block.text.push_str(" | ");
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some(block) = open.as_mut() {
                    block.text.push(if block.kind == BlockKind::Code { '\n' } else { ' ' });
                }
            }
            _ => {}
        }
    }
    close(&mut open, &mut blocks);
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_keeps_headings_paragraphs_code_and_lists() {
        let source = "# Title\n\nSome *emphasis* and `code`.\n\n## Part\n\n- one\n- two\n\n```rust\nfn main() {}\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n";
        let blocks = markdown(source);
        let kinds: Vec<BlockKind> = blocks.iter().map(|b| b.kind).collect();
        assert_eq!(
            kinds,
            [
                BlockKind::Heading(1),
                BlockKind::Paragraph,
                BlockKind::Heading(2),
                BlockKind::Paragraph,
                BlockKind::Paragraph,
                BlockKind::Code,
                BlockKind::Paragraph,
                BlockKind::Paragraph,
            ]
        );
        assert_eq!(blocks[0].text, "Title");
        assert_eq!(blocks[1].text, "Some emphasis and code.");
        assert_eq!(blocks[3].text, "one");
        assert_eq!(blocks[5].text, "fn main() {}\n");
        assert!(source[blocks[5].span.clone()].starts_with("```rust"));
        assert_eq!(blocks[7].text, "1 | 2 |");
        for block in &blocks {
            assert!(source.get(block.span.clone()).is_some(), "spans are on character boundaries");
        }
    }

    #[test]
    fn arbitrary_markdown_never_panics() {
        for source in ["", "#", "```", "> quote\n>\n> more", "* a\n  * b\n\n  c", "[x]: y\n\n<div>\n</div>", "|a|\n|-|"]
        {
            let _ = markdown(source);
        }
    }
}
