//! Parsers: a document's bytes in, its text and structural [`Block`]s out.
//!
//! Every format the ingestion accepts has its own module; this one names
//! the formats ([`Format`]), dispatches to them ([`parse`]) and owns what
//! they share: decoding bytes to text and the errors a caller can show a
//! person.
//!
//! Each block keeps the byte span of [`Parsed::text`] it came from, so
//! chunks (and the citations built on them) can point back to the exact
//! place. For text formats `Parsed::text` is the source itself, decoded
//! (a UTF-8 byte-order mark removed, `\r\n` and lone `\r` turned into
//! `\n`); for formats whose bytes are not what a reader sees (HTML, PDF,
//! CSV, JSON) it is the text the parser extracted or rendered, and that is
//! the text to store and cite.

mod code;
mod csv;
mod format;
mod html;
mod json;
mod markdown;
mod pdf;
mod text;

use std::borrow::Cow;

use crate::chunk::Block;

pub use format::{Format, Language};
pub use markdown::markdown;
pub use text::plain_text;

/// A parsed document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The text the blocks' spans point into.
    pub text: String,
    pub blocks: Vec<Block>,
    /// The document's own title when it names one: an HTML `<title>` (or
    /// its first `<h1>`), a PDF's metadata, a Markdown file's first
    /// top-level heading.
    pub title: Option<String>,
}

/// Why a document could not be parsed. Each reads as a sentence that can
/// be shown to the person who uploaded the document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the document has no text")]
    Empty,
    #[error("not valid UTF-8 (first bad byte at offset {offset})")]
    InvalidUtf8 { offset: usize },
    #[error("the PDF has no text layer (scanned pages need OCR first)")]
    NoTextLayer,
    #[error("unreadable PDF: {0}")]
    Pdf(String),
    #[error("unsupported format: {0}")]
    Unsupported(String),
    #[error("malformed {}: {reason}", format.name())]
    Malformed { format: Format, reason: String },
}

/// Parses `bytes` as `format`.
///
/// Never panics, whatever the bytes: PDF extraction, the one parser that
/// can, is isolated (see the `pdf` module).
pub fn parse(format: Format, bytes: &[u8]) -> Result<Parsed, ParseError> {
    let parsed = match format {
        Format::Pdf => return pdf::parse(bytes),
        Format::PlainText => from_source(decode(bytes)?, plain_text),
        Format::Markdown => {
            let parsed = from_source(decode(bytes)?, markdown);
            let title = parsed.blocks.iter().find(|b| b.kind == crate::BlockKind::Heading(1)).map(|b| b.text.clone());
            Parsed { title, ..parsed }
        }
        Format::Html => html::parse(&decode(bytes)?)?,
        Format::Code(language) => from_source(decode(bytes)?, |text| code::blocks(language, text)),
        Format::Json => json::parse(decode(bytes)?)?,
        Format::JsonLines => json::parse_lines(decode(bytes)?)?,
        Format::Csv => csv::parse(&decode(bytes)?)?,
    };
    if parsed.blocks.iter().all(|b| matches!(b.kind, crate::BlockKind::Heading(_))) {
        return Err(ParseError::Empty);
    }
    Ok(parsed)
}

/// A parsed text format whose text is the decoded source itself.
fn from_source(text: String, blocks: impl FnOnce(&str) -> Vec<Block>) -> Parsed {
    let blocks = blocks(&text);
    Parsed { text, blocks, title: None }
}

/// The text of a text format: UTF-8 (a byte-order mark is dropped), line
/// endings made `\n`, and not blank.
///
/// NUL bytes are refused: they are valid UTF-8 but no text file has them,
/// so the bytes are something else under a text name.
pub(crate) fn decode(bytes: &[u8]) -> Result<String, ParseError> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let (skipped, bytes) = match bytes.strip_prefix(BOM) {
        Some(rest) => (BOM.len(), rest),
        None => (0, bytes),
    };
    let text = std::str::from_utf8(bytes)
        .map_err(|error| ParseError::InvalidUtf8 { offset: skipped + error.valid_up_to() })?;
    if text.contains('\0') {
        return Err(ParseError::Unsupported("binary data (NUL bytes) in a text document".to_owned()));
    }
    if text.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(match normalize_newlines(text) {
        Cow::Borrowed(text) => text.to_owned(),
        Cow::Owned(text) => text,
    })
}

/// `\r\n` and lone `\r` as `\n`, in one pass.
fn normalize_newlines(text: &str) -> Cow<'_, str> {
    if !text.contains('\r') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\r') {
        out.push_str(&rest[..at]);
        out.push('\n');
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('\n') {
            rest = after;
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Appends `block_text` to `text` as a new block (after a blank line) and
/// returns the block. For parsers that build their text as they go.
pub(crate) fn push_block(text: &mut String, kind: crate::BlockKind, block_text: &str) -> Block {
    if !text.is_empty() {
        text.push_str("\n\n");
    }
    let start = text.len();
    text.push_str(block_text);
    Block { kind, text: block_text.to_owned(), span: start..text.len() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BlockKind;

    #[test]
    fn invalid_utf8_reports_the_offset_of_the_first_bad_byte() {
        let mut bytes = "héllo wörld ".repeat(100).into_bytes();
        let bad = bytes.len();
        bytes.extend_from_slice(b"\xFF\xFEmore");
        let error = parse(Format::PlainText, &bytes).unwrap_err();
        assert_eq!(error, ParseError::InvalidUtf8 { offset: bad });
        assert_eq!(error.to_string(), format!("not valid UTF-8 (first bad byte at offset {bad})"));
        // The offset counts the byte-order mark, as it is in the bytes given.
        let error = parse(Format::Markdown, b"\xEF\xBB\xBFab\xC3").unwrap_err();
        assert_eq!(error, ParseError::InvalidUtf8 { offset: 5 });
    }

    #[test]
    fn a_byte_order_mark_is_dropped_and_line_endings_made_unix() {
        let parsed = parse(Format::PlainText, b"\xEF\xBB\xBFFirst\r\nline\r\n\r\nSecond\rpara").unwrap();
        assert_eq!(parsed.text, "First\nline\n\nSecond\npara");
        assert_eq!(parsed.blocks[0].text, "First\nline");
        assert_eq!(&parsed.text[parsed.blocks[1].span.clone()], "Second\npara");
    }

    #[test]
    fn empty_and_blank_documents_are_refused_in_every_text_format() {
        let formats = [
            Format::PlainText,
            Format::Markdown,
            Format::Html,
            Format::Code(Language::Rust),
            Format::Json,
            Format::JsonLines,
            Format::Csv,
        ];
        for format in formats {
            for bytes in [&b""[..], b" \n\t\r\n ", b"\xEF\xBB\xBF\n"] {
                assert_eq!(parse(format, bytes), Err(ParseError::Empty), "{format:?} {bytes:?}");
            }
        }
        assert_eq!(ParseError::Empty.to_string(), "the document has no text");
        // Markup with nothing to read is empty too.
        assert_eq!(parse(Format::Markdown, b"# Only a heading\n"), Err(ParseError::Empty));
        assert_eq!(parse(Format::Html, b"<html><script>x()</script></html>"), Err(ParseError::Empty));
        assert_eq!(parse(Format::Json, b" {} "), Err(ParseError::Empty));
        assert_eq!(parse(Format::Json, b"[]"), Err(ParseError::Empty));
    }

    #[test]
    fn a_huge_single_line_of_text_or_markdown_is_one_block() {
        let line = "word, *emphasis* and `code` ".repeat(180_000); // ~5 MB
        // How long it takes is measured by `examples/parse_bench.rs`.
        for format in [Format::PlainText, Format::Markdown] {
            let parsed = parse(format, line.as_bytes()).unwrap();
            assert_eq!(parsed.blocks.len(), 1, "{format:?}");
        }
    }

    #[test]
    fn nul_bytes_are_not_text() {
        let error = parse(Format::PlainText, b"PK\x03\x04\0\0binary").unwrap_err();
        assert!(matches!(error, ParseError::Unsupported(_)), "{error}");
    }

    #[test]
    fn markdown_gives_its_first_top_level_heading_as_title() {
        let parsed = parse(Format::Markdown, b"Intro.\n\n# The Title\n\nBody.\n\n# Other\n").unwrap();
        assert_eq!(parsed.title.as_deref(), Some("The Title"));
        assert_eq!(parsed.blocks[1].kind, BlockKind::Heading(1));
    }

    #[test]
    fn garbage_bytes_never_panic_in_any_format() {
        let mut state = 0x2545_f491_u32;
        let mut garbage = Vec::new();
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            garbage.push(state as u8);
        }
        let ascii: Vec<u8> = garbage.iter().map(|b| b"<>{}[]\"',:;\n #/*()=-%PDFabc"[*b as usize % 27]).collect();
        let formats = [
            Format::PlainText,
            Format::Markdown,
            Format::Html,
            Format::Pdf,
            Format::Code(Language::Rust),
            Format::Code(Language::Python),
            Format::Code(Language::Cpp),
            Format::Json,
            Format::JsonLines,
            Format::Csv,
        ];
        for format in formats {
            assert!(parse(format, &garbage).is_err(), "{format:?}: random bytes are not valid UTF-8");
            // Valid UTF-8 made of every format's syntax characters.
            let _ = parse(format, &ascii);
        }
    }
}
