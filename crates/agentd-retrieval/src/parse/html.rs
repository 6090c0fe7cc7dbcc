//! HTML: the text a person sees on the page, in its structure.
//!
//! The page is parsed by html5ever (through `scraper`), the HTML standard's
//! algorithm that browsers use, so broken markup (unclosed tags, stray end
//! tags, garbage) reads as it does in a browser and nothing panics. The tree
//! is an arena walked without recursion: deep nesting cannot overflow the
//! stack. html5ever's time grows with the square of the nesting depth
//! (8,000 nested `div`s take seconds), so a page nested deeper than
//! [`MAX_NESTING`] elements is refused as malformed before parsing; real
//! pages stay within a few hundred.
//!
//! Decisions:
//! - Only visible text: `script`, `style`, `noscript`, `template`, `svg`,
//!   `iframe`, `object`, media fallbacks, a closed `dialog`, the `head` (its
//!   `title` apart) and anything marked hidden (`hidden`,
//!   `aria-hidden="true"`, an inline `display: none` or `visibility:
//!   hidden`) are skipped. Stylesheets cannot be applied, so what a class
//!   hides stays.
//! - Navigation (`nav`, `role="navigation"`) is skipped too: menus and
//!   sidebars are links to other pages, never the passage that answers.
//! - `h1`–`h6` are headings, `pre` is code kept verbatim; every other block
//!   element (`p`, `li`, `blockquote`, `dt`/`dd`, `figcaption`, …) and loose
//!   text in containers (`div`, `section`, `body`, …) is a paragraph.
//!   A table row is one paragraph, its cells joined by ` | `.
//! - Inline content is joined as it renders: runs of whitespace become one
//!   space, `<br>` a line break; entities are decoded by the parser.
//! - [`Parsed::text`] is the extracted blocks joined by blank lines and the
//!   spans point into it: that is what a citation shows.
//! - The title is the `<title>`, else the first `h1`. A page without an
//!   `h1` starts with its title as a level-1 heading, so its chunks carry
//!   it in their heading path.

use ego_tree::iter::Edge;
use scraper::node::Element;
use scraper::{Html, Node};

use super::{Format, ParseError, Parsed, push_block};
use crate::chunk::{Block, BlockKind};

/// Deepest element nesting accepted.
pub const MAX_NESTING: usize = 1024;

pub(super) fn parse(source: &str) -> Result<Parsed, ParseError> {
    if nesting(source) > MAX_NESTING {
        let reason = format!("elements nested deeper than {MAX_NESTING} levels");
        return Err(ParseError::Malformed { format: Format::Html, reason });
    }
    let document = Html::parse_document(source);
    let mut reader = Reader::default();
    // The element whose subtree is being skipped, if any.
    let mut skipping = None;
    for edge in document.tree.root().traverse() {
        match edge {
            Edge::Open(node) => {
                if skipping.is_some() {
                    continue;
                }
                match node.value() {
                    Node::Text(text) => reader.text(text),
                    Node::Element(element) => {
                        if element.name() == "title" {
                            reader.in_title = true;
                        } else if is_skipped(element) {
                            skipping = Some(node.id());
                        } else {
                            reader.open(element.name());
                        }
                    }
                    _ => {}
                }
            }
            Edge::Close(node) => {
                if skipping == Some(node.id()) {
                    skipping = None;
                } else if skipping.is_none()
                    && let Node::Element(element) = node.value()
                {
                    if element.name() == "title" {
                        reader.in_title = false;
                    } else {
                        reader.close(element.name());
                    }
                }
            }
        }
    }
    Ok(reader.finish())
}

/// An estimate of the deepest element nesting, from the tags alone: end
/// tags close, and elements that are void or closed implicitly (`p`, `li`,
/// `td`, …) do not count. Linear, so it can guard the parser.
fn nesting(source: &str) -> usize {
    const NOT_COUNTED: &[&str] = &[
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr", "param",
        "keygen", "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "rt", "rp", "tbody", "thead", "tfoot",
        "colgroup", "caption", "html", "head", "body",
    ];
    const RAW_TEXT: &[&str] = &["script", "style", "textarea", "title", "xmp", "noscript"];
    let bytes = source.as_bytes();
    let (mut depth, mut deepest, mut at) = (0_usize, 0, 0);
    while let Some(offset) = bytes[at..].iter().position(|b| *b == b'<') {
        at += offset + 1;
        if bytes[at..].starts_with(b"!--") {
            at += source[at..].find("-->").map_or(bytes.len() - at, |end| end + 3);
            continue;
        }
        let closing = bytes.get(at) == Some(&b'/');
        let name_start = at + usize::from(closing);
        let name_len = bytes[name_start..].iter().take_while(|b| b.is_ascii_alphanumeric()).count();
        if name_len == 0 || !bytes[name_start].is_ascii_alphabetic() {
            continue;
        }
        let name = source[name_start..name_start + name_len].to_ascii_lowercase();
        let tag_end = bytes[at..].iter().position(|b| *b == b'>').map_or(bytes.len(), |end| at + end);
        if closing {
            depth = depth.saturating_sub(usize::from(!NOT_COUNTED.contains(&name.as_str())));
        } else if RAW_TEXT.contains(&name.as_str()) {
            // Its text may hold `<`; it ends at its end tag.
            at = tag_end.min(bytes.len());
            while let Some(offset) = source[at..].find("</") {
                at += offset + 2;
                if bytes[at..].get(..name.len()).is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes())) {
                    break;
                }
            }
        } else if !NOT_COUNTED.contains(&name.as_str()) && bytes.get(tag_end.wrapping_sub(1)) != Some(&b'/') {
            depth += 1;
            deepest = deepest.max(depth);
        }
    }
    deepest
}

/// Elements whose content is never shown as text.
fn is_skipped(element: &Element) -> bool {
    const INVISIBLE: &[&str] = &[
        "script", "style", "noscript", "template", "svg", "math", "iframe", "object", "embed", "canvas", "video",
        "audio", "select", "datalist", "map",
    ];
    if INVISIBLE.contains(&element.name()) || element.name() == "nav" || element.attr("role") == Some("navigation") {
        return true;
    }
    if element.name() == "dialog" && element.attr("open").is_none() {
        return true;
    }
    if element.attr("hidden").is_some() || element.attr("aria-hidden").is_some_and(|v| v.trim() == "true") {
        return true;
    }
    element.attr("style").is_some_and(|style| {
        let style: String = style.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
        style.contains("display:none") || style.contains("visibility:hidden")
    })
}

/// Elements that start and end a block of their own.
fn block_kind(name: &str) -> Option<BlockKind> {
    Some(match name {
        "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => BlockKind::Heading(name.as_bytes()[1] - b'0'),
        "pre" | "listing" | "xmp" | "plaintext" => BlockKind::Code,
        "p" | "div" | "section" | "article" | "main" | "header" | "footer" | "nav" | "aside" | "body" | "html"
        | "li" | "ul" | "ol" | "dl" | "dt" | "dd" | "blockquote" | "figure" | "figcaption" | "table" | "caption"
        | "thead" | "tbody" | "tfoot" | "tr" | "address" | "details" | "summary" | "form" | "fieldset" | "legend"
        | "hr" | "center" | "hgroup" | "search" | "menu" | "dialog" => BlockKind::Paragraph,
        _ => return None,
    })
}

/// Gathers blocks while the tree is walked.
#[derive(Default)]
struct Reader {
    blocks: Vec<(BlockKind, String)>,
    /// The text of the block being read.
    current: String,
    /// The kinds of the open block elements, innermost last.
    open: Vec<BlockKind>,
    /// Whether the current text ends in collapsible whitespace.
    pending_space: bool,
    in_title: bool,
    /// Inside `head`, where only the title is text.
    in_head: bool,
    title: String,
    /// Cells seen in the current table row.
    cells: usize,
}

impl Reader {
    fn kind(&self) -> BlockKind {
        self.open.last().copied().unwrap_or(BlockKind::Paragraph)
    }

    fn text(&mut self, text: &str) {
        if self.in_title {
            self.title.push_str(text);
        } else if self.in_head {
            // Nothing else in the head is shown.
        } else if self.kind() == BlockKind::Code {
            self.current.push_str(text);
        } else {
            for (i, word) in text.split(char::is_whitespace).enumerate() {
                if i > 0 {
                    self.pending_space = true;
                }
                if word.is_empty() {
                    continue;
                }
                if self.pending_space && !self.current.is_empty() && !self.current.ends_with('\n') {
                    self.current.push(' ');
                }
                self.pending_space = false;
                self.current.push_str(word);
            }
        }
    }

    fn open(&mut self, name: &str) {
        match name {
            "head" => self.in_head = true,
            "br" if self.kind() == BlockKind::Code => self.current.push('\n'),
            "br" => {
                self.current.truncate(self.current.trim_end_matches(' ').len());
                self.current.push('\n');
                self.pending_space = false;
            }
            "td" | "th" => {
                if self.cells > 0 && !self.current.is_empty() {
                    self.current.push_str(" | ");
                    self.pending_space = false;
                }
                self.cells += 1;
            }
            "tr" => {
                self.flush();
                self.cells = 0;
                self.open.push(BlockKind::Paragraph);
            }
            "img" | "input" | "wbr" => self.pending_space = true,
            _ if self.kind() == BlockKind::Code => {
                // Inside `pre` everything stays in the one code block; a
                // block element only starts a new line.
                if block_kind(name).is_some() {
                    self.code_line_break();
                    self.open.push(BlockKind::Code);
                }
            }
            _ => {
                if let Some(kind) = block_kind(name) {
                    self.flush();
                    self.open.push(kind);
                }
                // Inline elements such as `<code>` in a paragraph join
                // their neighbours as they render.
            }
        }
    }

    fn code_line_break(&mut self) {
        if !self.current.is_empty() && !self.current.ends_with('\n') {
            self.current.push('\n');
        }
    }

    fn close(&mut self, name: &str) {
        if name == "head" {
            self.in_head = false;
        } else if name == "tr" || block_kind(name).is_some() {
            let nested_code = self.open.len() >= 2 && self.open[self.open.len() - 2] == BlockKind::Code;
            if nested_code {
                self.code_line_break();
            } else {
                self.flush();
            }
            self.open.pop();
        } else if name == "td" || name == "th" {
            self.pending_space = true;
        }
    }

    /// Ends the current block.
    fn flush(&mut self) {
        let text = std::mem::take(&mut self.current);
        self.pending_space = false;
        let kind = self.kind();
        let text = match kind {
            BlockKind::Code => text.trim_matches('\n').trim_end().to_owned(),
            BlockKind::Heading(_) => without_permalink(&text).to_owned(),
            _ => text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n"),
        };
        if !text.trim().is_empty() {
            self.blocks.push((kind, text));
        }
    }

    fn finish(mut self) -> Parsed {
        self.flush();
        let title = normalize_space(&self.title);
        let first_h1 = self.blocks.iter().find(|(kind, _)| *kind == BlockKind::Heading(1)).map(|(_, t)| t.clone());
        let mut blocks: Vec<(BlockKind, String)> = Vec::with_capacity(self.blocks.len() + 1);
        if first_h1.is_none() && !title.is_empty() {
            blocks.push((BlockKind::Heading(1), title.clone()));
        }
        blocks.append(&mut self.blocks);
        let mut text = String::new();
        let blocks: Vec<Block> = blocks.iter().map(|(kind, block)| push_block(&mut text, *kind, block)).collect();
        let title = if title.is_empty() { first_h1 } else { Some(title) };
        Parsed { text, blocks, title }
    }
}

/// A heading without the permalink sign documentation generators append
/// to it (Sphinx's `¶`, `§`, `🔗`, or a `#` standing alone), which is a
/// link, not a word of the heading ("F#" keeps its sign).
fn without_permalink(heading: &str) -> &str {
    let heading = heading.trim();
    let mut stripped = heading.trim_end_matches(['¶', '§', '🔗']).trim_end();
    if let Some(before) = stripped.strip_suffix('#')
        && before.ends_with(char::is_whitespace)
    {
        stripped = before.trim_end();
    }
    if stripped.is_empty() { heading } else { stripped }
}

fn normalize_space(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(source: &str) -> Parsed {
        parse(source).unwrap()
    }

    fn kinds_and_texts(parsed: &Parsed) -> Vec<(BlockKind, &str)> {
        parsed.blocks.iter().map(|b| (b.kind, b.text.as_str())).collect()
    }

    #[test]
    fn permalink_signs_after_headings_are_not_part_of_them() {
        let source = r##"<h1>statistics — Maths<a class="headerlink" href="#s">¶</a></h1><p>Text ¶ stays.</p>
            <h2>C# and F#</h2><h2>Install <a href="#i">#</a></h2><h3>¶</h3>"##;
        let parsed = read(source);
        let texts: Vec<&str> = parsed.blocks.iter().map(|b| b.text.as_str()).collect();
        assert_eq!(texts, vec!["statistics — Maths", "Text ¶ stays.", "C# and F#", "Install", "¶"]);
    }

    #[test]
    fn headings_paragraphs_lists_and_code_with_spans_into_the_text() {
        let source = r##"<!DOCTYPE html><html><head><title>  The   Guide </title>
            <meta charset="utf-8"><style>body { color: red }</style></head>
            <body><h1>Guide</h1><p>Intro with <b>bold</b> and <a href="#">a link</a>.</p>
            <section><h2>Install</h2><ul><li>First step</li><li>Second&nbsp;step &amp; more</li></ul>
            <h3>Details</h3><pre><code>fn main() {
    println!("hi");
}</code></pre><pre>struct S<span>&lt;T&gt;</span><div>where T: Copy</div>{}</pre>
            </section></body></html>"##;
        let parsed = read(source);
        assert_eq!(
            kinds_and_texts(&parsed),
            [
                (BlockKind::Heading(1), "Guide"),
                (BlockKind::Paragraph, "Intro with bold and a link."),
                (BlockKind::Heading(2), "Install"),
                (BlockKind::Paragraph, "First step"),
                (BlockKind::Paragraph, "Second step & more"),
                (BlockKind::Heading(3), "Details"),
                (BlockKind::Code, "fn main() {\n    println!(\"hi\");\n}"),
                (BlockKind::Code, "struct S<T>\nwhere T: Copy\n{}"),
            ]
        );
        assert_eq!(parsed.title.as_deref(), Some("The Guide"));
        for block in &parsed.blocks {
            assert_eq!(&parsed.text[block.span.clone()], block.text);
        }
        assert!(!parsed.text.contains("color"), "style is not text");
    }

    #[test]
    fn scripts_styles_and_hidden_elements_are_not_extracted() {
        let source = r#"<body><script>var secret = "script text";</script>
            <noscript>enable js</noscript><template><p>template text</p></template>
            <p>Visible</p><div hidden>hidden attr</div><span aria-hidden="true">aria hidden</span>
            <div style="display: none">display none</div><svg><text>svg text</text></svg>
            <nav><a href="/">Home</a></nav><div role="navigation">menu</div><dialog>closed</dialog>
            <dialog open>Open dialog</dialog>
            <p style="color: blue">Also visible</p></body>"#;
        let parsed = read(source);
        assert_eq!(parsed.text, "Visible\n\nOpen dialog\n\nAlso visible");
    }

    #[test]
    fn loose_text_nested_blocks_and_tables() {
        let source = "<div>Loose <em>text</em><p>In a p</p>after\n  the p<br>next line</div>\
            <table><tr><th>Name</th><th>Age</th></tr><tr><td>Ann</td><td>41</td></tr></table>\
            <blockquote>Quoted</blockquote><dl><dt>Term</dt><dd>Meaning</dd></dl>\
            <figure><img src=x><figcaption>Caption</figcaption></figure>";
        let parsed = read(source);
        let texts: Vec<&str> = parsed.blocks.iter().map(|b| b.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "Loose text",
                "In a p",
                "after the p\nnext line",
                "Name | Age",
                "Ann | 41",
                "Quoted",
                "Term",
                "Meaning",
                "Caption"
            ]
        );
        assert!(parsed.blocks.iter().all(|b| b.kind == BlockKind::Paragraph));
    }

    #[test]
    fn headings_nest_and_a_page_without_h1_starts_with_its_title() {
        let parsed = read("<title>Page &amp; Co</title><h2>A</h2><p>a</p><h3>A.1</h3><p>b</p><h2>B</h2><p>c</p>");
        assert_eq!(
            kinds_and_texts(&parsed),
            [
                (BlockKind::Heading(1), "Page & Co"),
                (BlockKind::Heading(2), "A"),
                (BlockKind::Paragraph, "a"),
                (BlockKind::Heading(3), "A.1"),
                (BlockKind::Paragraph, "b"),
                (BlockKind::Heading(2), "B"),
                (BlockKind::Paragraph, "c"),
            ]
        );
        assert_eq!(read("<h1>First <i>one</i></h1><h1>Second</h1>").title.as_deref(), Some("First one"));
    }

    #[test]
    fn broken_markup_reads_as_a_browser_reads_it() {
        let parsed = read("<p>one<p>two <b>bold <i>both</b> italic</i><li>item</div></span>&bogus; &lt;x&gt;");
        let texts: Vec<&str> = parsed.blocks.iter().map(|b| b.text.as_str()).collect();
        assert_eq!(texts, ["one", "two bold both italic", "item&bogus; <x>"]);
        for garbage in ["<", "<<<>>>", "</p></p>", "<a <b", "<!--", "<![CDATA[", "<table><td><table>", "\u{0}<p>"] {
            let _ = parse(garbage);
        }
    }

    #[test]
    fn deep_nesting_is_bounded_and_a_huge_line_is_fine() {
        let deep = |n| format!("{}deep text{}", "<div>".repeat(n), "</div>".repeat(n));
        let started = std::time::Instant::now();
        assert_eq!(parse(&deep(MAX_NESTING)).unwrap().text, "deep text");
        let error = parse(&deep(MAX_NESTING + 1)).unwrap_err();
        assert_eq!(error.to_string(), "malformed html: elements nested deeper than 1024 levels");
        assert!(parse(&"<div>".repeat(1_000_000)).is_err());
        // Implicitly closed elements, raw text and comments do not count.
        let many =
            "<p>x<li>y<br><img src=a>".repeat(5_000) + &"<script>if (a<b) {}</script><!-- <div> -->".repeat(5_000);
        assert!(parse(&many).is_ok());
        assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
        let words = "word ".repeat(400_000);
        let started = std::time::Instant::now();
        let parsed = read(&format!("<p>{words}</p>"));
        assert_eq!(parsed.text.len(), words.len() - 1);
        assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    }
}
