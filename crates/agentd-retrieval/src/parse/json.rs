//! JSON and JSON Lines: data documents read as text.
//!
//! Decisions:
//! - The document must be valid JSON; otherwise it is
//!   [`ParseError::Malformed`] with the line and column of the first error
//!   (and so is nesting deeper than [`MAX_NESTING`] levels, which bounds
//!   the renderer's recursion).
//! - [`Parsed::text`] is the document re-indented (two spaces, keys in
//!   their order, strings and numbers exactly as written): minified JSON
//!   becomes lines a reader, the chunker and a citation can use.
//! - Each member of the top-level object, and each element of a top-level
//!   array, is one paragraph (`"key": value` keeps its key). A member
//!   longer than [`SPLIT_BYTES`] whose value is an object or array becomes
//!   a heading (its key, or `[index]` in an array) over its own members,
//!   up to heading level 6; below that the chunker cuts what is too long.
//! - JSON Lines: each line must be valid JSON (errors name the line); each
//!   record, re-indented the same way, is one paragraph.
//! - Validation, re-indenting and splitting are each one pass: a 5 MB
//!   single-line document takes linear time.

use std::ops::Range;

use serde::de::IgnoredAny;

use super::{Format, ParseError, Parsed, push_block};
use crate::chunk::{Block, BlockKind};

/// A member longer than this (about a chunk) is split into its own members.
pub const SPLIT_BYTES: usize = 1500;

/// Deepest heading level; nodes deeper keep no children.
const MAX_LEVEL: usize = 6;

/// Deepest nesting of arrays and objects accepted (as `serde_json`'s own
/// limit when it builds values).
pub const MAX_NESTING: usize = 128;

pub(super) fn parse(source: String) -> Result<Parsed, ParseError> {
    serde_json::from_str::<IgnoredAny>(&source)
        .map_err(|error| ParseError::Malformed { format: Format::Json, reason: error.to_string() })?;
    if nesting(source.as_bytes()) > MAX_NESTING {
        let reason = format!("arrays and objects nested deeper than {MAX_NESTING} levels");
        return Err(ParseError::Malformed { format: Format::Json, reason });
    }
    let mut renderer = Renderer { source: source.as_bytes(), at: 0, out: String::with_capacity(source.len() * 5 / 4) };
    let root = renderer.value(0, 0);
    let text = renderer.out;
    let mut blocks = Vec::new();
    if root.kind == Kind::Scalar {
        blocks.push(Block { kind: BlockKind::Paragraph, text: text.clone(), span: 0..text.len() });
    } else {
        select(&text, &root, 1, &mut blocks);
    }
    Ok(Parsed { text, blocks, title: None })
}

pub(super) fn parse_lines(source: String) -> Result<Parsed, ParseError> {
    let mut text = String::new();
    let mut blocks = Vec::new();
    for (number, line) in source.lines().enumerate() {
        let record = line.trim();
        if record.is_empty() {
            continue;
        }
        let leading = line.len() - line.trim_start().len();
        let malformed = |message: &str, column: usize| ParseError::Malformed {
            format: Format::JsonLines,
            reason: format!("{message} at line {} column {}", number + 1, leading + column),
        };
        serde_json::from_str::<IgnoredAny>(record).map_err(|error| {
            let message = error.to_string();
            malformed(message.rsplit_once(" at line ").map_or(message.as_str(), |(message, _)| message), error.column())
        })?;
        if nesting(record.as_bytes()) > MAX_NESTING {
            return Err(malformed(&format!("arrays and objects nested deeper than {MAX_NESTING} levels"), 1));
        }
        let mut renderer = Renderer { source: record.as_bytes(), at: 0, out: String::with_capacity(record.len()) };
        renderer.value(0, MAX_LEVEL);
        blocks.push(push_block(&mut text, BlockKind::Paragraph, &renderer.out));
    }
    Ok(Parsed { text, blocks, title: None })
}

/// The deepest nesting of arrays and objects in valid JSON.
fn nesting(source: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0_usize, 0, false, false);
    for byte in source {
        match (in_string, byte) {
            (true, _) if escaped => escaped = false,
            (true, b'\\') => escaped = true,
            (true, b'"') | (false, b'"') => in_string = !in_string,
            (false, b'[' | b'{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Scalar,
    Array,
    Object,
}

/// A value as rendered into the text.
struct Node {
    kind: Kind,
    /// Where the value is in the rendered text.
    out: Range<usize>,
    /// Where its key is, for an object's member.
    key: Option<Range<usize>>,
    /// Members or elements (none kept below [`MAX_LEVEL`]).
    children: Vec<Node>,
}

/// Re-indents valid JSON, remembering where each shallow value lands.
struct Renderer<'a> {
    source: &'a [u8],
    at: usize,
    out: String,
}

impl Renderer<'_> {
    fn skip_space(&mut self) {
        while self.at < self.source.len() && self.source[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn peek(&self) -> u8 {
        self.source.get(self.at).copied().unwrap_or(b'\0')
    }

    /// Copies source bytes `from..self.at`. The source is valid UTF-8 and
    /// every cut falls on an ASCII delimiter, so it is a valid `str`.
    fn copy(&mut self, from: usize) {
        self.out.push_str(std::str::from_utf8(&self.source[from..self.at]).unwrap_or_default());
    }

    fn indent(&mut self, depth: usize) {
        self.out.extend(std::iter::repeat_n("  ", depth));
    }

    fn string(&mut self) {
        let from = self.at;
        self.at += 1;
        while self.at < self.source.len() {
            match self.source[self.at] {
                b'\\' => self.at += 2,
                b'"' => {
                    self.at += 1;
                    break;
                }
                _ => self.at += 1,
            }
        }
        self.at = self.at.min(self.source.len());
        self.copy(from);
    }

    /// Renders the value at the cursor. Recursion is bounded by the
    /// validation's nesting limit.
    fn value(&mut self, depth: usize, level: usize) -> Node {
        self.skip_space();
        let start = self.out.len();
        let (kind, close) = match self.peek() {
            b'{' => (Kind::Object, b'}'),
            b'[' => (Kind::Array, b']'),
            b'"' => {
                self.string();
                return Node { kind: Kind::Scalar, out: start..self.out.len(), key: None, children: Vec::new() };
            }
            _ => {
                let from = self.at;
                while self.at < self.source.len() && !b",]} \t\r\n".contains(&self.source[self.at]) {
                    self.at += 1;
                }
                self.copy(from);
                return Node { kind: Kind::Scalar, out: start..self.out.len(), key: None, children: Vec::new() };
            }
        };
        self.out.push(self.peek() as char);
        self.at += 1;
        let mut children = Vec::new();
        let mut empty = true;
        loop {
            self.skip_space();
            match self.peek() {
                b',' => {
                    self.at += 1;
                    continue;
                }
                byte if byte == close || self.at >= self.source.len() => {
                    self.at += 1;
                    break;
                }
                _ => {}
            }
            self.out.push_str(if empty { "\n" } else { ",\n" });
            empty = false;
            self.indent(depth + 1);
            let key = (kind == Kind::Object).then(|| {
                let from = self.out.len();
                self.string();
                let key = from..self.out.len();
                self.skip_space();
                self.at += 1; // the colon
                self.out.push_str(": ");
                key
            });
            let mut child = self.value(depth + 1, level + 1);
            child.key = key;
            if level < MAX_LEVEL {
                children.push(child);
            }
        }
        if !empty {
            self.out.push('\n');
            self.indent(depth);
        }
        self.out.push(close as char);
        Node { kind, out: start..self.out.len(), key: None, children }
    }
}

/// One paragraph per child of `node`; a long container child becomes a
/// heading over its own children instead.
fn select(text: &str, node: &Node, level: usize, blocks: &mut Vec<Block>) {
    for (index, child) in node.children.iter().enumerate() {
        let span = child.key.as_ref().map_or(child.out.start, |key| key.start)..child.out.end;
        if span.len() > SPLIT_BYTES && !child.children.is_empty() && level <= MAX_LEVEL {
            let (heading, heading_span) = match &child.key {
                Some(key) => {
                    let raw = &text[key.clone()];
                    (serde_json::from_str::<String>(raw).unwrap_or_else(|_| raw.to_owned()), key.clone())
                }
                None => (format!("[{index}]"), child.out.start..child.out.start + 1),
            };
            blocks.push(Block { kind: BlockKind::Heading(level as u8), text: heading, span: heading_span });
            select(text, child, level + 1, blocks);
        } else {
            blocks.push(Block { kind: BlockKind::Paragraph, text: text[span.clone()].to_owned(), span });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minified_json_is_reindented_with_a_paragraph_per_member() {
        let parsed =
            parse(r#"{"name":"agentd","tags":["a","b"],"nested":{"x":1.50,"s":"é \"q\" , ]"},"empty":{}}"#.to_owned())
                .unwrap();
        assert_eq!(
            parsed.text,
            "{\n  \"name\": \"agentd\",\n  \"tags\": [\n    \"a\",\n    \"b\"\n  ],\n  \"nested\": {\n    \"x\": 1.50,\n    \"s\": \"é \\\"q\\\" , ]\"\n  },\n  \"empty\": {}\n}"
        );
        let texts: Vec<&str> = parsed.blocks.iter().map(|b| b.text.as_str()).collect();
        assert_eq!(texts[0], "\"name\": \"agentd\"");
        assert!(texts[2].starts_with("\"nested\": {\n"));
        assert_eq!(texts.len(), 4);
        for block in &parsed.blocks {
            assert_eq!(&parsed.text[block.span.clone()], block.text);
        }
        let rendered: serde_json::Value = serde_json::from_str(&parsed.text).unwrap();
        assert_eq!(rendered["nested"]["s"], "é \"q\" , ]", "the text is still the same JSON");
    }

    #[test]
    fn a_long_member_becomes_a_heading_over_its_members() {
        let records: Vec<String> = (0..100).map(|i| format!(r#"{{"id":{i},"title":"Record number {i}"}}"#)).collect();
        let source = format!(r#"{{"version":1,"data":{{"records":[{}],"count":100}}}}"#, records.join(","));
        let parsed = parse(source).unwrap();
        let outline: Vec<(BlockKind, String)> =
            parsed.blocks.iter().take(4).map(|b| (b.kind, b.text.lines().next().unwrap().trim().to_owned())).collect();
        assert_eq!(
            outline,
            [
                (BlockKind::Paragraph, "\"version\": 1".to_owned()),
                (BlockKind::Heading(1), "data".to_owned()),
                (BlockKind::Heading(2), "records".to_owned()),
                (BlockKind::Paragraph, "{".to_owned()),
            ]
        );
        assert_eq!(parsed.blocks.len(), 3 + 100 + 1);
        assert!(parsed.blocks[3].text.contains("\"title\": \"Record number 0\""));
        assert_eq!(parsed.blocks.last().unwrap().text, "\"count\": 100");
    }

    #[test]
    fn invalid_json_names_line_and_column() {
        let error = parse("{\n  \"a\": 1,\n  \"b\" 2\n}".to_owned()).unwrap_err();
        assert_eq!(
            error,
            ParseError::Malformed { format: Format::Json, reason: "expected `:` at line 3 column 7".to_owned() }
        );
        assert_eq!(error.to_string(), "malformed json: expected `:` at line 3 column 7");
        assert!(matches!(parse("[1, 2".to_owned()), Err(ParseError::Malformed { .. })));
        assert!(matches!(parse("{} {}".to_owned()), Err(ParseError::Malformed { .. })));
        let deep = |n| format!("{}\"[{{\"{}", "[".repeat(n), "]".repeat(n));
        assert!(parse(deep(MAX_NESTING)).is_ok());
        let error = parse(deep(MAX_NESTING + 1)).unwrap_err();
        assert_eq!(error.to_string(), "malformed json: arrays and objects nested deeper than 128 levels");
        assert!(matches!(parse(deep(1_000_000)), Err(ParseError::Malformed { .. })), "no stack overflow");
    }

    #[test]
    fn scalars_and_arrays_at_the_top() {
        let parsed = parse("\"just a string\"".to_owned()).unwrap();
        assert_eq!(parsed.blocks[0].text, "\"just a string\"");
        let parsed = parse("[1, {\"a\": null}, \"x\"]".to_owned()).unwrap();
        let texts: Vec<&str> = parsed.blocks.iter().map(|b| b.text.as_str()).collect();
        assert_eq!(texts, ["1", "{\n    \"a\": null\n  }", "\"x\""]);
    }

    #[test]
    fn json_lines_are_one_reindented_paragraph_per_record() {
        let parsed = parse_lines("{\"a\":1,\"b\":[]}\n\n  [2, 3]  \n\"four\"\n".to_owned()).unwrap();
        let texts: Vec<&str> = parsed.blocks.iter().map(|b| &parsed.text[b.span.clone()]).collect();
        assert_eq!(texts, ["{\n  \"a\": 1,\n  \"b\": []\n}", "[\n  2,\n  3\n]", "\"four\""]);
        let error = parse_lines("{\"a\": 1}\n  {\"a\": }\n".to_owned()).unwrap_err();
        assert_eq!(error.to_string(), "malformed json_lines: expected value at line 2 column 9");
        let deep = format!("1\n{}{}", "[".repeat(MAX_NESTING + 1), "]".repeat(MAX_NESTING + 1));
        assert!(matches!(parse_lines(deep), Err(ParseError::Malformed { .. })));
    }

    #[test]
    fn a_huge_single_line_is_split_into_its_items() {
        let item = r#"{"id":12345,"name":"a name","values":[1,2,3,4,5],"flag":true},"#;
        let source = format!("[{}{{}}]", item.repeat(5_000_000 / item.len()));
        // How long it takes is measured by `examples/parse_bench.rs`.
        let parsed = parse(source).unwrap();
        assert!(parsed.blocks.len() > 70_000);
    }
}
