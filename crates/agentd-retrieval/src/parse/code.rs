//! Source code: split along its definitions.
//!
//! A passage of code is only useful whole: half a function answers nothing.
//! So each top-level definition (function, type, class, impl, …) becomes
//! one code block, with the comments, doc comments, attributes and
//! decorators directly above it, under a heading that names it (`fn
//! parse`, `class Foo`, `def run`): the chunker then never mixes two
//! definitions in one chunk, and every chunk carries its definition in its
//! heading path. Only a definition too long for one chunk is cut, by the
//! chunker.
//!
//! Decisions:
//! - Line-based heuristics per language, no grammar: a small lexer skips
//!   strings and comments and counts brackets; definitions are found by
//!   their keywords (or, for C-like members, by `name(` at the start of a
//!   line) at the region's outer indentation. Braced languages end a
//!   definition where its braces close, Python and YAML where the
//!   indentation returns, Ruby at the matching `end`, SQL at `;`, TOML at
//!   the next table. This keeps the build light (no tree-sitter) and reads
//!   broken or unusual code without failing: at worst a cut falls between
//!   two other lines.
//! - Top-level definitions are level-2 headings. A class (impl, module, …)
//!   longer than [`SPLIT_BYTES`] is split again into its members, one level
//!   deeper; a shorter one stays whole, its methods in their context.
//! - A definition on one line without comments or attributes (`type Id =
//!   u64;`, `struct Marker;`) gets no heading: a section per line would
//!   make chunks of a line each. It is loose code, like imports and
//!   everything else between definitions, which is split at blank lines.
//! - Blocks are exact slices of the source, so their spans are exact.
//! - Every line is lexed once and looked at a bounded number of times, so
//!   a 5 MB minified line costs what reading it costs.

use std::ops::Range;

use super::Language;
use crate::chunk::{Block, BlockKind};

/// A container longer than this (about a chunk of code) is split into its
/// members.
pub const SPLIT_BYTES: usize = 1500;

/// Deepest heading level given to nested members.
const MAX_LEVEL: u8 = 5;

/// Longest heading, in bytes.
const MAX_HEADING: usize = 100;

pub(super) fn blocks(language: Language, source: &str) -> Vec<Block> {
    let syntax = Syntax::of(language);
    let lines = lex(source, &syntax);
    let mut splitter = Splitter { source, lines: &lines, syntax: &syntax, blocks: Vec::new() };
    splitter.region(0..lines.len(), 0, 2);
    splitter.blocks
}

/// How a definition's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// Where its braces close (or at `;` if it opens none).
    Braces,
    /// Before the first line indented no deeper than it.
    Indent,
    /// At the `end` aligned with it.
    End,
    /// At the first `;` outside brackets.
    Statement,
    /// Before the next definition.
    Section,
}

/// A string literal's delimiters.
struct Quote {
    open: &'static str,
    close: &'static str,
    /// Whether it may run over several lines.
    multiline: bool,
    /// Whether a backslash escapes the next character.
    escapes: bool,
}

const fn quote(open: &'static str, close: &'static str, multiline: bool, escapes: bool) -> Quote {
    Quote { open, close, multiline, escapes }
}

/// What the splitter needs to know of a language.
struct Syntax {
    line_comments: &'static [&'static str],
    block_comment: Option<(&'static str, &'static str)>,
    /// In the order they are tried: longer openers first.
    quotes: &'static [Quote],
    /// `'x'` is a character literal but `'a` a lifetime (Rust).
    char_literals: bool,
    open_brackets: &'static [u8],
    close_brackets: &'static [u8],
    /// Line prefixes (attributes, decorators) that belong to the next
    /// definition.
    attributes: &'static [&'static str],
    body: Body,
    /// YAML: a list may sit at its key's indentation.
    list_items: bool,
    /// The heading of the definition starting on this (trimmed) line;
    /// `member` when inside a container.
    definition: fn(&str, bool) -> Option<String>,
    /// Heading keywords of definitions that can be split into members.
    containers: &'static [&'static str],
}

const C_QUOTES: &[Quote] = &[quote("\"", "\"", false, true), quote("'", "'", false, true)];
const BRACES: (&[u8], &[u8]) = (b"{", b"}");
const ALL_BRACKETS: (&[u8], &[u8]) = (b"([{", b")]}");

impl Syntax {
    fn of(language: Language) -> Syntax {
        let c_like = |definition: fn(&str, bool) -> Option<String>, containers: &'static [&'static str]| Syntax {
            line_comments: &["//"],
            block_comment: Some(("/*", "*/")),
            quotes: C_QUOTES,
            char_literals: false,
            open_brackets: BRACES.0,
            close_brackets: BRACES.1,
            attributes: &["@"],
            body: Body::Braces,
            list_items: false,
            definition,
            containers,
        };
        match language {
            Language::Rust => Syntax {
                quotes: const { &[quote("r#\"", "\"#", true, false), quote("\"", "\"", true, true)] },
                char_literals: true,
                attributes: &["#["],
                ..c_like(rust, &["impl", "trait", "mod"])
            },
            Language::Python => Syntax {
                line_comments: &["#"],
                block_comment: None,
                quotes: const {
                    &[
                        quote("\"\"\"", "\"\"\"", true, true),
                        quote("'''", "'''", true, true),
                        quote("\"", "\"", false, true),
                        quote("'", "'", false, true),
                    ]
                },
                open_brackets: ALL_BRACKETS.0,
                close_brackets: ALL_BRACKETS.1,
                body: Body::Indent,
                ..c_like(python, &["class"])
            },
            Language::JavaScript | Language::TypeScript => Syntax {
                quotes: const {
                    &[quote("`", "`", true, true), quote("\"", "\"", false, true), quote("'", "'", false, true)]
                },
                ..c_like(javascript, &["class", "namespace"])
            },
            Language::Go => Syntax {
                quotes: const {
                    &[quote("`", "`", true, false), quote("\"", "\"", false, true), quote("'", "'", false, true)]
                },
                attributes: &[],
                ..c_like(go, &[])
            },
            Language::Java => Syntax {
                quotes: const {
                    &[
                        quote("\"\"\"", "\"\"\"", true, true),
                        quote("\"", "\"", false, true),
                        quote("'", "'", false, true),
                    ]
                },
                ..c_like(java, &["class", "interface", "enum", "record"])
            },
            Language::Kotlin => Syntax {
                quotes: const {
                    &[
                        quote("\"\"\"", "\"\"\"", true, false),
                        quote("\"", "\"", false, true),
                        quote("'", "'", false, true),
                    ]
                },
                ..c_like(kotlin, &["class", "interface", "object"])
            },
            Language::Swift => Syntax {
                quotes: const { &[quote("\"\"\"", "\"\"\"", true, true), quote("\"", "\"", false, true)] },
                ..c_like(swift, &["class", "struct", "enum", "protocol", "extension", "actor"])
            },
            Language::C => Syntax { attributes: &[], ..c_like(c, &[]) },
            Language::Cpp => Syntax {
                quotes: const {
                    &[quote("R\"(", ")\"", true, false), quote("\"", "\"", false, true), quote("'", "'", false, true)]
                },
                attributes: &["template", "[["],
                ..c_like(cpp, &["class", "struct", "namespace"])
            },
            Language::CSharp => Syntax {
                quotes: const {
                    &[quote("@\"", "\"", true, false), quote("\"", "\"", false, true), quote("'", "'", false, true)]
                },
                attributes: &["["],
                ..c_like(csharp, &["class", "struct", "interface", "record", "namespace"])
            },
            Language::Php => Syntax {
                line_comments: &["//", "#"],
                quotes: const { &[quote("\"", "\"", true, true), quote("'", "'", true, true)] },
                attributes: &["#["],
                ..c_like(php, &["class", "trait", "interface", "enum"])
            },
            Language::Ruby => Syntax {
                line_comments: &["#"],
                block_comment: Some(("=begin", "=end")),
                quotes: const { &[quote("\"", "\"", true, true), quote("'", "'", true, true)] },
                open_brackets: ALL_BRACKETS.0,
                close_brackets: ALL_BRACKETS.1,
                attributes: &[],
                body: Body::End,
                ..c_like(ruby, &["class", "module"])
            },
            Language::Shell => Syntax {
                line_comments: &["#"],
                block_comment: None,
                quotes: const { &[quote("\"", "\"", true, true), quote("'", "'", true, false)] },
                attributes: &[],
                ..c_like(shell, &[])
            },
            Language::Sql => Syntax {
                line_comments: &["--"],
                quotes: const {
                    &[quote("$$", "$$", true, false), quote("'", "'", true, false), quote("\"", "\"", false, false)]
                },
                open_brackets: b"(",
                close_brackets: b")",
                attributes: &[],
                body: Body::Statement,
                ..c_like(sql, &[])
            },
            Language::Toml => Syntax {
                line_comments: &["#"],
                block_comment: None,
                quotes: const {
                    &[
                        quote("\"\"\"", "\"\"\"", true, true),
                        quote("'''", "'''", true, false),
                        quote("\"", "\"", false, true),
                        quote("'", "'", false, false),
                    ]
                },
                open_brackets: b"",
                close_brackets: b"",
                attributes: &[],
                body: Body::Section,
                ..c_like(toml, &[])
            },
            Language::Yaml => Syntax {
                line_comments: &["#"],
                block_comment: None,
                quotes: const { &[quote("\"", "\"", false, true), quote("'", "'", false, false)] },
                open_brackets: b"",
                close_brackets: b"",
                attributes: &[],
                body: Body::Indent,
                list_items: true,
                ..c_like(yaml, &[])
            },
        }
    }
}

/// What the lexer learned of one line.
#[derive(Debug, Clone, Copy, Default)]
struct Line {
    /// The line's bytes, without its `\n`.
    start: usize,
    end: usize,
    /// Leading spaces and tabs.
    indent: usize,
    blank: bool,
    /// The line starts outside strings and comments.
    in_code: bool,
    /// The line has comments and no code.
    comment_only: bool,
    /// Bracket depth at the line's start, the deepest within it, at its end.
    depth: i64,
    max_depth: i64,
    end_depth: i64,
    /// The line's last code character is `;`.
    semicolon: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    BlockComment,
    /// Inside the string of this quote (an index into `Syntax::quotes`).
    Quoted(usize),
}

/// Lexes `source` line by line, in one pass over its bytes. Every
/// delimiter is ASCII, so bytes of multi-byte characters never match one.
fn lex(source: &str, syntax: &Syntax) -> Vec<Line> {
    let bytes = source.as_bytes();
    let mut lines = Vec::new();
    let mut state = State::Code;
    let mut depth = 0_i64;
    let mut line = Line::default();
    let mut has_code = false;
    let mut has_comment = false;
    let mut last_code = 0_u8;
    let mut i = 0;
    let start_line = |line: &mut Line, at: usize, state: State, depth: i64| {
        let indent = bytes[at..].iter().take_while(|b| **b == b' ' || **b == b'\t').count();
        *line = Line { start: at, indent, in_code: state == State::Code, depth, max_depth: depth, ..Line::default() };
    };
    start_line(&mut line, 0, state, depth);
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'\n' {
            if let State::Quoted(q) = state
                && !syntax.quotes[q].multiline
            {
                state = State::Code;
            }
            finish(&mut line, source, i, depth, has_code, has_comment, last_code);
            lines.push(line);
            (has_code, has_comment, last_code) = (false, false, 0);
            start_line(&mut line, i + 1, state, depth);
            i += 1;
            continue;
        }
        let rest = &bytes[i..];
        match state {
            State::Code => {
                if byte.is_ascii_whitespace() {
                    i += 1;
                } else if let Some(comment) = syntax.line_comments.iter().find(|c| is_comment_at(bytes, i, c)) {
                    has_comment = true;
                    i += comment.len();
                    i += bytes[i..].iter().position(|b| *b == b'\n').unwrap_or(bytes.len() - i);
                } else if let Some((open, _)) =
                    syntax.block_comment.filter(|(open, _)| rest.starts_with(open.as_bytes()))
                {
                    has_comment = true;
                    state = State::BlockComment;
                    i += open.len();
                } else if let Some(q) = syntax.quotes.iter().position(|q| rest.starts_with(q.open.as_bytes())) {
                    has_code = true;
                    last_code = byte;
                    state = State::Quoted(q);
                    i += syntax.quotes[q].open.len();
                } else if byte == b'\'' && syntax.char_literals {
                    has_code = true;
                    last_code = byte;
                    i += char_literal_len(rest);
                } else {
                    has_code = true;
                    last_code = byte;
                    if syntax.open_brackets.contains(&byte) {
                        depth += 1;
                        line.max_depth = line.max_depth.max(depth);
                    } else if syntax.close_brackets.contains(&byte) {
                        depth -= 1;
                    }
                    i += 1;
                }
            }
            State::BlockComment => {
                has_comment |= !byte.is_ascii_whitespace();
                match syntax.block_comment {
                    Some((_, close)) if rest.starts_with(close.as_bytes()) => {
                        state = State::Code;
                        i += close.len();
                    }
                    _ => i += 1,
                }
            }
            State::Quoted(q) => {
                let quote = &syntax.quotes[q];
                if quote.escapes && byte == b'\\' {
                    i += if rest.get(1) == Some(&b'\n') { 1 } else { 2 };
                } else if rest.starts_with(quote.close.as_bytes()) {
                    state = State::Code;
                    i += quote.close.len();
                } else {
                    i += 1;
                }
            }
        }
    }
    finish(&mut line, source, bytes.len(), depth, has_code, has_comment, last_code);
    lines.push(line);
    // A final newline leaves an empty last line: not a line of the file.
    if source.ends_with('\n') {
        lines.pop();
    }
    lines
}

fn finish(line: &mut Line, source: &str, end: usize, depth: i64, code: bool, comment: bool, last_code: u8) {
    line.end = end;
    line.blank = source[line.start..end].trim().is_empty();
    line.comment_only = comment && !code;
    line.end_depth = depth;
    line.semicolon = last_code == b';';
}

/// A comment opener at `at`. `#` opens one only at the start of a word
/// (`$#` in shell is a variable) and not as PHP's or Rust's `#[`.
fn is_comment_at(bytes: &[u8], at: usize, comment: &str) -> bool {
    if !bytes[at..].starts_with(comment.as_bytes()) {
        return false;
    }
    if comment == "#" {
        let word_start = at == 0 || bytes[at - 1].is_ascii_whitespace() || bytes[at - 1] == b';';
        return word_start && bytes.get(at + 1) != Some(&b'[');
    }
    true
}

/// Bytes taken by a Rust `'`: a whole character literal (`'x'`, `'\n'`,
/// `'\u{1F600}'`), or just the quote of a lifetime or label.
fn char_literal_len(rest: &[u8]) -> usize {
    if rest.get(1) == Some(&b'\\') {
        // An escape: up to the closing quote, a few bytes on.
        return rest.iter().skip(2).take(12).position(|b| *b == b'\'').map_or(1, |at| at + 3);
    }
    let width = match rest.get(1) {
        Some(b) if *b < 0x80 => 1,
        Some(b) if *b >= 0xF0 => 4,
        Some(b) if *b >= 0xE0 => 3,
        Some(_) => 2,
        None => return 1,
    };
    if rest.get(1 + width) == Some(&b'\'') { 2 + width } else { 1 }
}

struct Splitter<'a> {
    source: &'a str,
    lines: &'a [Line],
    syntax: &'a Syntax,
    blocks: Vec<Block>,
}

impl Splitter<'_> {
    fn text(&self, line: usize) -> &str {
        let line = &self.lines[line];
        &self.source[line.start..line.end]
    }

    fn is_code(&self, k: usize) -> bool {
        let line = &self.lines[k];
        line.in_code && !line.blank && !line.comment_only
    }

    /// Splits the lines of `range` into definitions and loose code; its
    /// definitions are the code lines least indented but at least `min_indent`.
    fn region(&mut self, range: Range<usize>, min_indent: usize, level: u8) {
        let Some(base) = range.clone().find(|k| self.is_code(*k) && self.lines[*k].indent >= min_indent) else {
            self.loose(range);
            return;
        };
        let indent = self.lines[base].indent;
        let mut loose_from = range.start;
        let mut k = base;
        while k < range.end {
            let Some(heading) = self.definition_at(k, indent, level > 2) else {
                k += 1;
                continue;
            };
            let end = self.end_of(k, range.end);
            let lead = self.lead_start(k, loose_from);
            if end == k && lead == k {
                k += 1; // one line: loose code
                continue;
            }
            self.loose(loose_from..lead);
            self.definition(heading, lead, k, end, level);
            loose_from = end + 1;
            k = end + 1;
        }
        self.loose(loose_from..range.end);
    }

    fn definition_at(&self, k: usize, indent: usize, member: bool) -> Option<String> {
        if !self.is_code(k) || self.lines[k].indent != indent {
            return None;
        }
        let heading = (self.syntax.definition)(self.text(k).trim(), member)?;
        Some(shorten(heading))
    }

    /// The first of the comment and attribute lines directly above the
    /// definition on line `k`, not above `floor`.
    fn lead_start(&self, k: usize, floor: usize) -> usize {
        let indent = self.lines[k].indent;
        let mut start = k;
        while start > floor {
            let line = &self.lines[start - 1];
            let text = self.text(start - 1).trim_start();
            let attribute = line.in_code
                && line.indent == indent
                && self.syntax.attributes.iter().any(|prefix| text.starts_with(prefix));
            if line.blank || !(line.comment_only || attribute) {
                break;
            }
            start -= 1;
        }
        start
    }

    /// The last line of the definition starting on line `k`.
    fn end_of(&self, k: usize, to: usize) -> usize {
        let first = self.lines[k];
        let last_nonblank = |until: usize| (k..until).rev().find(|j| !self.lines[*j].blank).unwrap_or(k);
        // Another definition at the same indentation.
        let next_definition = |j: usize| self.definition_at(j, first.indent, false).is_some();
        match self.syntax.body {
            Body::Braces => {
                let mut opened = false;
                for j in k..to {
                    let line = &self.lines[j];
                    if j > k && !opened && line.blank {
                        // A declaration without a body.
                        return last_nonblank(j);
                    }
                    if j > k && self.is_code(j) && line.indent <= first.indent && next_definition(j) {
                        // Braces that did not balance: the next definition
                        // starts all the same.
                        return last_nonblank(self.lead_start(j, k + 1));
                    }
                    opened |= line.max_depth > first.depth;
                    if (opened || line.semicolon) && line.end_depth <= first.depth {
                        return j;
                    }
                }
                last_nonblank(to)
            }
            Body::Indent | Body::End => {
                let mut last = k;
                for j in k + 1..to {
                    let line = &self.lines[j];
                    if line.blank {
                        continue;
                    }
                    // Inside a string or brackets opened above, or deeper.
                    if !line.in_code || line.depth > first.depth || line.indent > first.indent {
                        last = j;
                        continue;
                    }
                    if line.comment_only {
                        continue; // a comment at the left margin: may belong to what follows
                    }
                    let text = self.text(j).trim();
                    if self.syntax.body == Body::End && line.indent == first.indent && is_end(text) {
                        return j;
                    }
                    // A YAML list may sit at its key's indentation.
                    if self.syntax.list_items && (text == "-" || text.starts_with("- ")) {
                        last = j;
                        continue;
                    }
                    return last;
                }
                last
            }
            Body::Statement => {
                for j in k..to {
                    if j > k && self.is_code(j) && self.lines[j].indent <= first.indent && next_definition(j) {
                        return last_nonblank(self.lead_start(j, k + 1));
                    }
                    let line = &self.lines[j];
                    if line.semicolon && line.end_depth <= first.depth {
                        return j;
                    }
                }
                last_nonblank(to)
            }
            Body::Section => {
                let next = (k + 1..to).find(|j| next_definition(*j)).map_or(to, |j| self.lead_start(j, k + 1));
                last_nonblank(next)
            }
        }
    }

    fn definition(&mut self, heading: String, lead: usize, k: usize, end: usize, level: u8) {
        let line = self.lines[k];
        self.blocks.push(Block { kind: BlockKind::Heading(level), text: heading.clone(), span: line.start..line.end });
        let size = self.lines[end].end - self.lines[lead].start;
        let keyword = heading.split_whitespace().next().unwrap_or("");
        if size > SPLIT_BYTES && level < MAX_LEVEL && self.syntax.containers.contains(&keyword) {
            self.code(lead..k + 1);
            self.region(k + 1..end + 1, line.indent + 1, level + 1);
        } else {
            self.code(lead..end + 1);
        }
    }

    /// Loose code: one block per run of non-blank lines (a blank line
    /// inside a string or comment does not end one), leaving out runs with
    /// nothing to read (a lone `}`).
    fn loose(&mut self, range: Range<usize>) {
        let mut from = None;
        for k in range.clone() {
            if self.lines[k].blank && self.lines[k].in_code {
                if let Some(start) = from.take() {
                    self.code(start..k);
                }
            } else {
                from.get_or_insert(k);
            }
        }
        if let Some(start) = from {
            self.code(start..range.end);
        }
    }

    /// One code block for `lines`, without blank lines at either end.
    fn code(&mut self, lines: Range<usize>) {
        let Some(first) = lines.clone().find(|k| !self.lines[*k].blank) else { return };
        let last = lines.rev().find(|k| !self.lines[*k].blank).unwrap_or(first);
        let span = self.lines[first].start..self.lines[last].end;
        let text = &self.source[span.clone()];
        let trimmed = text.trim();
        if !trimmed.chars().any(char::is_alphanumeric) || trimmed == "end" {
            return;
        }
        self.blocks.push(Block { kind: BlockKind::Code, text: text.to_owned(), span });
    }
}

/// Ruby's `end`, maybe followed by a call or punctuation.
fn is_end(text: &str) -> bool {
    text.strip_prefix("end").is_some_and(|rest| !rest.starts_with(is_ident_char))
}

fn shorten(heading: String) -> String {
    let heading = heading.split_whitespace().collect::<Vec<_>>().join(" ");
    if heading.len() <= MAX_HEADING {
        return heading;
    }
    let mut cut = MAX_HEADING;
    while !heading.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &heading[..cut])
}

// ---- Recognising definitions -------------------------------------------

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// Drops leading `words` (each a whole word) from `line`, in any order.
fn skip_words<'a>(mut line: &'a str, words: &[&str]) -> &'a str {
    'strip: loop {
        for word in words {
            if let Some(rest) = line.strip_prefix(word)
                && rest.starts_with(char::is_whitespace)
            {
                line = rest.trim_start();
                continue 'strip;
            }
        }
        return line;
    }
}

/// The keyword `line` starts with, if one of `keywords` as a whole word,
/// and the rest of the line after it.
fn keyword<'a>(line: &'a str, keywords: &[&'static str]) -> Option<(&'static str, &'a str)> {
    keywords.iter().find_map(|keyword| {
        let rest = line.strip_prefix(keyword)?;
        let whole = keyword.ends_with(|c: char| !is_ident_char(c)) || !rest.starts_with(is_ident_char);
        whole.then(|| (*keyword, rest.trim_start()))
    })
}

/// The (possibly qualified: `a.b`, `A::b`) name `text` starts with.
fn name(text: &str) -> &str {
    let mut end = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if is_ident_char(c) {
            end = at + c.len_utf8();
        } else if (c == '.' || c == ':') && end == at && end > 0 {
            // A separator counts only when a name part follows it.
            let next = text[at..].trim_start_matches([':', '.']);
            if !next.starts_with(is_ident_char) {
                break;
            }
            while chars.peek().is_some_and(|(_, c)| *c == ':' || *c == '.') {
                chars.next();
            }
        } else {
            break;
        }
    }
    &text[..end]
}

fn named(keyword: &str, rest: &str) -> Option<String> {
    let name = name(rest);
    (!name.is_empty()).then(|| format!("{keyword} {name}"))
}

/// Words that start statements, never definitions.
const STATEMENTS: &[&str] = &[
    "if",
    "else",
    "for",
    "foreach",
    "while",
    "do",
    "switch",
    "case",
    "catch",
    "try",
    "return",
    "throw",
    "new",
    "delete",
    "sizeof",
    "await",
    "yield",
    "using",
    "lock",
    "synchronized",
    "with",
    "echo",
    "print",
    "assert",
];

/// A function or method recognised by its shape, `… name(…)` not ending in
/// `;` nor assigning: the only way for C's functions and for members of
/// classes in languages without a function keyword.
fn callable(line: &str, modifiers: &[&str]) -> Option<String> {
    let line = skip_words(line, modifiers);
    if line.starts_with(['#', '(', '.', '}', '='])
        || line.trim_end().ends_with(';')
        || keyword(line, STATEMENTS).is_some()
    {
        return None;
    }
    let open = line.find('(')?;
    let before = line[..open].trim_end();
    if before.contains('=') && !before.contains("operator") || before.ends_with(|c: char| !is_ident_char(c)) {
        return None;
    }
    // The name is the last word before the parenthesis.
    let start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_ident_char(*c) || matches!(c, ':' | '.' | '~'))
        .last()
        .map_or(before.len(), |(at, _)| at);
    let name = before[start..].trim_start_matches([':', '.']);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    Some(format!("{name}()"))
}

fn rust(line: &str, _member: bool) -> Option<String> {
    let mut line = line;
    if let Some(rest) = line.strip_prefix("pub(") {
        line = rest.split_once(')')?.1.trim_start();
    }
    let line = skip_words(line, &["pub", "default", "async", "const", "unsafe", "extern", "\"C\"", "\"system\""]);
    let (keyword, rest) = keyword(line, &["fn", "struct", "enum", "trait", "impl", "mod", "union", "macro_rules!"])?;
    if keyword != "impl" {
        return named(keyword, rest);
    }
    // `impl<T> Trait for Type<T> where … {`: the part naming the types.
    let mut rest = rest;
    if rest.starts_with('<') {
        let mut depth = 0;
        let close = rest.char_indices().find(|(_, c)| {
            depth += match c {
                '<' => 1,
                '>' => -1,
                _ => 0,
            };
            depth == 0
        })?;
        rest = rest[close.0 + 1..].trim_start();
    }
    let end = [rest.find('{'), rest.find(" where")].into_iter().flatten().min().unwrap_or(rest.len());
    let target = rest[..end].trim();
    (!target.is_empty()).then(|| format!("impl {target}"))
}

fn python(line: &str, _member: bool) -> Option<String> {
    let (keyword, rest) = keyword(skip_words(line, &["async"]), &["def", "class"])?;
    named(keyword, rest)
}

fn javascript(line: &str, member: bool) -> Option<String> {
    let modifiers = &["export", "default", "declare", "async", "abstract"];
    let stripped = skip_words(line, modifiers);
    let keywords = &["function*", "function", "class", "interface", "enum", "namespace", "type"];
    if let Some((keyword, rest)) = keyword(stripped, keywords) {
        return named(keyword.trim_end_matches('*'), rest.trim_start_matches('*').trim_start());
    }
    if let Some((keyword, rest)) = keyword(stripped, &["const", "let", "var"]) {
        return function_value(rest).then(|| named(keyword, rest)).flatten();
    }
    if member {
        let member_modifiers = &[
            "static",
            "async",
            "get",
            "set",
            "public",
            "private",
            "protected",
            "readonly",
            "override",
            "abstract",
            "declare",
            "*",
        ];
        // `#name` is a private member.
        let stripped = skip_words(line, member_modifiers).trim_start_matches('#');
        let name = name(stripped);
        if function_value(stripped) && !name.is_empty() && keyword(name, STATEMENTS).is_none() {
            return Some(format!("{name}()"));
        }
        return callable(stripped, &[]).filter(|_| line.trim_end().ends_with('{'));
    }
    // `module.exports = (…) => {`, `Foo.prototype.bar = function (…) {`.
    let target = name(stripped);
    let after = stripped[target.len()..].trim_start();
    if !target.is_empty() && after.starts_with('=') && !after.starts_with("==") && function_value(stripped) {
        return Some(target.to_owned());
    }
    // Top-level calls taking a callback (`describe('…', () => {`).
    callable(stripped, &[]).filter(|_| line.trim_end().ends_with('{'))
}

/// `name = <function or multi-line value>` (after `const`, in a class body).
fn function_value(rest: &str) -> bool {
    let Some((_, value)) = rest.split_once('=') else { return false };
    let value = value.trim();
    value.contains("=>")
        || value.starts_with("function")
        || value.starts_with("async")
        || value.starts_with("class")
        || value.ends_with(['{', '[', '('])
}

fn go(line: &str, _member: bool) -> Option<String> {
    let (keyword, rest) = keyword(line, &["func", "type"])?;
    if keyword == "func" && rest.starts_with('(') {
        let (receiver, rest) = rest.split_once(')')?;
        return named(&format!("func {receiver})"), rest.trim_start());
    }
    named(keyword, rest)
}

const JAVA_MODIFIERS: &[&str] = &[
    "public",
    "private",
    "protected",
    "static",
    "final",
    "abstract",
    "sealed",
    "non-sealed",
    "strictfp",
    "synchronized",
    "native",
    "default",
    "transient",
];

fn java(line: &str, member: bool) -> Option<String> {
    let stripped = skip_words(line, JAVA_MODIFIERS);
    if let Some((keyword, rest)) = keyword(stripped, &["class", "interface", "enum", "record", "@interface"]) {
        return named(keyword, rest);
    }
    member.then(|| callable(stripped, &[])).flatten().filter(|_| !line.trim_end().ends_with(','))
}

fn kotlin(line: &str, _member: bool) -> Option<String> {
    let modifiers = &[
        "public",
        "private",
        "internal",
        "protected",
        "open",
        "abstract",
        "final",
        "sealed",
        "data",
        "inline",
        "value",
        "enum",
        "annotation",
        "companion",
        "override",
        "suspend",
        "operator",
        "infix",
        "tailrec",
        "external",
        "inner",
        "actual",
        "expect",
    ];
    let (keyword, rest) = keyword(skip_words(line, modifiers), &["fun", "class", "interface", "object"])?;
    // `fun <T> List<T>.name(`: the generic parameters are not the name.
    let rest = if rest.starts_with('<') { rest.split_once('>').map_or(rest, |(_, r)| r.trim_start()) } else { rest };
    named(keyword, rest)
}

fn swift(line: &str, _member: bool) -> Option<String> {
    let modifiers = &[
        "public",
        "private",
        "fileprivate",
        "internal",
        "open",
        "final",
        "static",
        "override",
        "mutating",
        "nonmutating",
        "convenience",
        "required",
        "dynamic",
        "indirect",
        "nonisolated",
        "class",
    ];
    let keywords = &["func", "class", "struct", "enum", "protocol", "extension", "actor", "init", "deinit"];
    // `class func`: `class` is a modifier only when a keyword follows.
    let stripped = skip_words(line, modifiers);
    let (keyword, rest) = keyword(stripped, keywords).or_else(|| keyword(line, keywords))?;
    if keyword == "init" || keyword == "deinit" {
        return Some(keyword.to_owned());
    }
    named(keyword, rest)
}

fn c(line: &str, _member: bool) -> Option<String> {
    let modifiers = &["static", "inline", "extern", "const", "unsigned", "signed", "volatile", "register"];
    if line.contains('(') {
        return callable(line, modifiers);
    }
    let (keyword, rest) = keyword(skip_words(line, &["typedef", "static"]), &["struct", "union", "enum"])?;
    named(keyword, rest)
}

fn cpp(line: &str, _member: bool) -> Option<String> {
    let modifiers = &[
        "static",
        "inline",
        "extern",
        "virtual",
        "explicit",
        "constexpr",
        "consteval",
        "friend",
        "const",
        "unsigned",
        "signed",
        "public:",
        "private:",
        "protected:",
    ];
    if !line.contains('(') || line.starts_with("class ") || line.starts_with("struct ") {
        let stripped = skip_words(line, &["typedef", "export", "inline"]);
        if let Some((keyword, rest)) = keyword(stripped, &["class", "struct", "union", "enum", "namespace"]) {
            let rest = skip_words(rest, &["class", "struct", "final"]);
            return named(keyword, rest);
        }
        return None;
    }
    callable(line, modifiers)
}

fn csharp(line: &str, member: bool) -> Option<String> {
    let modifiers = &[
        "public",
        "private",
        "protected",
        "internal",
        "static",
        "sealed",
        "abstract",
        "partial",
        "virtual",
        "override",
        "async",
        "readonly",
        "unsafe",
        "extern",
        "new",
        "file",
    ];
    let stripped = skip_words(line, modifiers);
    let keywords = &["class", "struct", "interface", "enum", "record", "namespace"];
    if let Some((keyword, rest)) = keyword(stripped, keywords) {
        return named(keyword, skip_words(rest, &["struct", "class"]));
    }
    member.then(|| callable(stripped, &[])).flatten().filter(|_| !line.trim_end().ends_with(','))
}

fn php(line: &str, _member: bool) -> Option<String> {
    let modifiers = &["abstract", "final", "public", "private", "protected", "static", "readonly"];
    let (keyword, rest) = keyword(skip_words(line, modifiers), &["function", "class", "interface", "trait", "enum"])?;
    named(keyword, rest.trim_start_matches('&'))
}

fn ruby(line: &str, _member: bool) -> Option<String> {
    let (keyword, rest) = keyword(line, &["def", "class", "module"])?;
    let name = name(rest);
    if name.is_empty() {
        return None;
    }
    // Predicates, bang methods and setters keep their suffix.
    let suffix = rest[name.len()..].chars().next().filter(|c| matches!(c, '?' | '!' | '='));
    Some(format!("{keyword} {name}{}", suffix.map(String::from).unwrap_or_default()))
}

fn shell(line: &str, _member: bool) -> Option<String> {
    if let Some((_, rest)) = keyword(line, &["function"]) {
        return named("function", rest);
    }
    let name = name(line);
    let rest = line[name.len()..].trim_start();
    (!name.is_empty() && rest.starts_with("()")).then(|| format!("function {name}"))
}

fn sql(line: &str, _member: bool) -> Option<String> {
    let mut words = line.split_whitespace().map(|w| (w, w.to_ascii_lowercase()));
    let (_, first) = words.next()?;
    if first != "create" {
        return None;
    }
    let skip =
        ["or", "replace", "temp", "temporary", "unique", "materialized", "recursive", "unlogged", "global", "local"];
    let kinds = [
        "table",
        "view",
        "index",
        "function",
        "procedure",
        "trigger",
        "type",
        "schema",
        "sequence",
        "domain",
        "extension",
    ];
    let mut kind = None;
    for (word, lower) in words {
        match kind {
            None if skip.contains(&lower.as_str()) => {}
            None if kinds.contains(&lower.as_str()) => kind = Some(lower),
            None => return None,
            Some(_) if ["if", "not", "exists", "concurrently"].contains(&lower.as_str()) => {}
            Some(kind) => {
                let name = word.split('(').next().unwrap_or(word).trim_matches(['"', '`', ';']);
                return Some(format!("create {kind} {name}"));
            }
        }
    }
    None
}

fn toml(line: &str, _member: bool) -> Option<String> {
    if !line.starts_with('[') {
        return None;
    }
    let close = line.rfind(']')?;
    Some(line[..=close].to_owned())
}

fn yaml(line: &str, _member: bool) -> Option<String> {
    if line.starts_with(['-', '#', '{', '[', '%']) || line.starts_with("...") {
        return None;
    }
    let (key, value) = line.split_once(": ").or_else(|| line.strip_suffix(':').map(|key| (key, "")))?;
    let value = value.split(" #").next().unwrap_or("").trim();
    let nested = value.is_empty() || value.starts_with(['|', '>', '&']);
    nested.then(|| key.trim().trim_matches(['"', '\'']).to_owned()).filter(|key| !key.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The headings, and each code block's first line, in order.
    fn outline(language: Language, source: &str) -> Vec<String> {
        let blocks = blocks(language, source);
        for block in &blocks {
            if block.kind == BlockKind::Code {
                assert_eq!(&source[block.span.clone()], block.text, "code blocks are exact slices");
            }
        }
        blocks
            .iter()
            .map(|b| match b.kind {
                BlockKind::Heading(level) => format!("{} {}", "#".repeat(level as usize), b.text),
                _ => b.text.lines().next().unwrap_or("").trim().to_owned(),
            })
            .collect()
    }

    #[test]
    fn python_splits_at_defs_and_classes_with_their_decorators() {
        let source = r#""""Module docs.

Their second paragraph.
"""
import os

CONSTANT = 1


@decorator
def first(a,
          b):
    """Docstring
with a line at column 0."""
    return a + b

# About Second.
class Second:
    def method(self):
        return {
    "key": "value",
}

async def third():
    pass
print("done")
"#;
        assert_eq!(
            outline(Language::Python, source),
            [
                "\"\"\"Module docs.",
                "CONSTANT = 1",
                "## def first",
                "@decorator",
                "## class Second",
                "# About Second.",
                "## def third",
                "async def third():",
                "print(\"done\")",
            ]
        );
        let blocks = blocks(Language::Python, source);
        let first = blocks.iter().find(|b| b.text.starts_with("@decorator")).unwrap();
        assert!(first.text.ends_with("return a + b"), "{:?}", first.text);
    }

    #[test]
    fn rust_splits_at_items_with_docs_and_attributes() {
        let source = r#"//! Module docs.

use std::fmt;

/// A thing.
#[derive(Debug)]
pub struct Thing<'a> {
    name: &'a str,
}

const LIMIT: usize = 3;

/// A documented one-liner.
pub struct Marker;

impl<'a> fmt::Display for Thing<'a> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let brace = '{';
        write!(f, "{}{brace}", self.name)
    }
}

pub(crate) async fn run(
    input: &str,
) -> Result<(), String>
where
    String: Clone,
{
    let s = "}";
    Ok(())
}
"#;
        assert_eq!(
            outline(Language::Rust, source),
            [
                "//! Module docs.",
                "use std::fmt;",
                "## struct Thing",
                "/// A thing.",
                "const LIMIT: usize = 3;",
                "## struct Marker",
                "/// A documented one-liner.",
                "## impl fmt::Display for Thing<'a>",
                "impl<'a> fmt::Display for Thing<'a> {",
                "## fn run",
                "pub(crate) async fn run(",
            ]
        );
        let blocks = blocks(Language::Rust, source);
        assert!(blocks.last().unwrap().text.ends_with("Ok(())\n}"));
    }

    #[test]
    fn javascript_splits_at_functions_classes_and_arrow_constants() {
        let source = r#"import x from "y";

/**
 * Adds.
 */
export function add(a, b) {
  const s = `template ${"}"}
  spanning } lines`;
  return a + b;
}

export const handler = async (event) => {
  return { ok: true };
};

class Widget extends Base {
  render() {
    return "<div>";
  }
}

describe("add", () => {
  it("adds", () => {});
});

module.exports = async (x) => {
  return x;
};
"#;
        assert_eq!(
            outline(Language::JavaScript, source),
            [
                "import x from \"y\";",
                "## function add",
                "/**",
                "## const handler",
                "export const handler = async (event) => {",
                "## class Widget",
                "class Widget extends Base {",
                "## describe()",
                "describe(\"add\", () => {",
                "## module.exports",
                "module.exports = async (x) => {",
            ]
        );
        let method = |name: &str| format!("  {name} (a) {{\n{}  }}\n\n", "    a += 1;\n".repeat(40));
        let class = format!(
            "class Command {{\n  static count = 0\n\n{}{}{}}}\n",
            method("static get usage"),
            method("#validate"),
            method("async run")
        );
        assert_eq!(
            outline(Language::JavaScript, &class),
            [
                "## class Command",
                "class Command {",
                "static count = 0",
                "### usage()",
                "static get usage (a) {",
                "### validate()",
                "#validate (a) {",
                "### run()",
                "async run (a) {"
            ]
        );
    }

    #[test]
    fn a_long_class_is_split_into_its_methods() {
        let body = "        x = 1\n".repeat(60);
        let source = format!(
            "class Big:\n    \"\"\"Docs.\"\"\"\n\n    def one(self):\n{body}\n    # Two.\n    def two(self):\n{body}\n\ndef after():\n    pass\n"
        );
        assert_eq!(
            outline(Language::Python, &source),
            [
                "## class Big",
                "class Big:",
                "\"\"\"Docs.\"\"\"",
                "### def one",
                "def one(self):",
                "### def two",
                "# Two.",
                "## def after",
                "def after():",
            ]
        );
        let java_method = |name: &str| {
            format!("    public int {name}(int x) {{\n{}        return x;\n    }}\n", "        x++;\n".repeat(60))
        };
        let source = format!(
            "package a;\n\n@Entity\npublic class Service {{\n    private int count = 0;\n\n    @Override\n{}\n{}}}\n",
            java_method("first"),
            java_method("second")
        );
        assert_eq!(
            outline(Language::Java, &source),
            [
                "package a;",
                "## class Service",
                "@Entity",
                "private int count = 0;",
                "### first()",
                "@Override",
                "### second()",
                "public int second(int x) {",
            ]
        );
    }

    #[test]
    fn other_languages_find_their_definitions() {
        let go = "package main\n\n// Serve serves.\nfunc (s *Server) Serve(addr string) error {\n\treturn nil\n}\n\ntype Config struct {\n\tAddr string\n}\n";
        assert_eq!(
            outline(Language::Go, go),
            ["package main", "## func (s *Server) Serve", "// Serve serves.", "## type Config", "type Config struct {"]
        );
        let c = "#include <stdio.h>\n\nstatic int\nadd(int a, int b);\n\nint main(int argc, char **argv)\n{\n    return add(1, 2);\n}\n";
        assert_eq!(
            outline(Language::C, c),
            ["#include <stdio.h>", "static int", "## main()", "int main(int argc, char **argv)"]
        );
        let ruby = "module Util\n  def self.helper?\n    true\n  end\nend\n\nclass Foo < Bar\n  def run\n  end\nend\n";
        assert_eq!(outline(Language::Ruby, ruby), ["## module Util", "module Util", "## class Foo", "class Foo < Bar"]);
        let sql = "-- Users.\nCREATE TABLE IF NOT EXISTS users (\n  id INT,\n  name TEXT\n);\n\nCREATE OR REPLACE FUNCTION f() RETURNS int AS $$\nBEGIN\n  RETURN 1;\nEND;\n$$ LANGUAGE plpgsql;\nSELECT 1;\n";
        assert_eq!(
            outline(Language::Sql, sql),
            [
                "## create table users",
                "-- Users.",
                "## create function f",
                "CREATE OR REPLACE FUNCTION f() RETURNS int AS $$",
                "SELECT 1;"
            ]
        );
        let toml = "name = \"x\"\n\n# The package.\n[package]\nversion = \"1\"\nedition = \"2024\"\n\n[[bin]]\nname = \"a\"\npath = \"b\"\n";
        assert_eq!(
            outline(Language::Toml, toml),
            ["name = \"x\"", "## [package]", "# The package.", "## [[bin]]", "[[bin]]"]
        );
        let yaml = "version: 3\nservices:\n  web:\n    image: x\nvolumes:\n- a\n- b\nname: done\n";
        assert_eq!(
            outline(Language::Yaml, yaml),
            ["version: 3", "## services", "services:", "## volumes", "volumes:", "name: done"]
        );
        let shell = "#!/bin/sh\nset -e\n\nbuild() {\n  echo \"}\"\n}\n\nfunction clean {\n  rm -rf out\n}\n";
        assert_eq!(
            outline(Language::Shell, shell),
            ["#!/bin/sh", "## function build", "build() {", "## function clean", "function clean {"]
        );
    }

    #[test]
    fn unbalanced_braces_do_not_swallow_the_rest_of_the_file() {
        let source = "fn broken() {\n    let x = {;\n}\n\nfn next() {\n    1\n}\n";
        assert_eq!(outline(Language::Rust, source), ["## fn broken", "fn broken() {", "## fn next", "fn next() {"]);
    }

    #[test]
    fn code_without_definitions_splits_at_blank_lines() {
        let source = "a = 1\nb = 2\n\n\nc = 3\n";
        assert_eq!(outline(Language::Python, source), ["a = 1", "c = 3"]);
        for garbage in ["", "\n\n", "{{{{", "}}}}", "\"", "'", "/*", "fn", "impl<", "def", "class:", "'\\", "r#\""] {
            for language in Language::ALL {
                let _ = blocks(language, garbage);
            }
        }
    }

    #[test]
    fn a_huge_single_line_is_one_block() {
        let line = "var a=function(b){return b+1};".repeat(160_000); // ~5 MB
        // How long it takes is measured by `examples/parse_bench.rs`.
        let blocks = blocks(Language::JavaScript, &line);
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].text.len(), line.len());
        let mut many = "fn f() {\n    x;\n}\n".repeat(100_000); // 1.7 MB of small items
        many.push_str(&"}".repeat(100_000));
        let items = super::blocks(Language::Rust, &many);
        assert!(!items.is_empty());
    }
}
