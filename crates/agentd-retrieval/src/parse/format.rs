//! The formats the ingestion accepts, and telling which one a document is.
//!
//! Uploads come with a file name, sometimes a content type, and always
//! bytes; each is trusted in that order. An extension is what the person
//! meant; a content type is often a browser's generic guess
//! (`application/octet-stream`, or `text/plain` for anything unknown), so
//! it only decides when the name does not; sniffing the bytes is the last
//! resort. Bytes that look binary give `None`: the caller refuses the
//! document rather than indexing noise.

use serde::{Deserialize, Serialize};

/// A document format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    PlainText,
    Markdown,
    Html,
    Pdf,
    /// Source code, split along its definitions.
    Code(Language),
    Json,
    /// One JSON value per line (`.jsonl`, `.ndjson`).
    JsonLines,
    /// Comma-, semicolon- or tab-separated values with a header row.
    Csv,
}

/// A programming or configuration language read as [`Format::Code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    Rust,
    Python,
    #[serde(rename = "javascript")]
    JavaScript,
    #[serde(rename = "typescript")]
    TypeScript,
    Go,
    Java,
    Kotlin,
    Swift,
    C,
    Cpp,
    #[serde(rename = "csharp")]
    CSharp,
    Ruby,
    Php,
    Shell,
    Sql,
    Toml,
    Yaml,
}

impl Language {
    /// Every language, for listings and round trips.
    pub const ALL: [Language; 17] = [
        Language::Rust,
        Language::Python,
        Language::JavaScript,
        Language::TypeScript,
        Language::Go,
        Language::Java,
        Language::Kotlin,
        Language::Swift,
        Language::C,
        Language::Cpp,
        Language::CSharp,
        Language::Ruby,
        Language::Php,
        Language::Shell,
        Language::Sql,
        Language::Toml,
        Language::Yaml,
    ];

    /// The language's identifier (as in serde): `"rust"`, `"cpp"`, …
    pub fn name(&self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::JavaScript => "javascript",
            Language::TypeScript => "typescript",
            Language::Go => "go",
            Language::Java => "java",
            Language::Kotlin => "kotlin",
            Language::Swift => "swift",
            Language::C => "c",
            Language::Cpp => "cpp",
            Language::CSharp => "csharp",
            Language::Ruby => "ruby",
            Language::Php => "php",
            Language::Shell => "shell",
            Language::Sql => "sql",
            Language::Toml => "toml",
            Language::Yaml => "yaml",
        }
    }

    /// The language of a file extension (lowercase, without the dot).
    pub fn from_extension(extension: &str) -> Option<Language> {
        Some(match extension {
            "rs" => Language::Rust,
            "py" | "pyi" | "pyw" => Language::Python,
            "js" | "mjs" | "cjs" | "jsx" => Language::JavaScript,
            "ts" | "mts" | "cts" | "tsx" => Language::TypeScript,
            "go" => Language::Go,
            "java" => Language::Java,
            "kt" | "kts" => Language::Kotlin,
            "swift" => Language::Swift,
            "c" | "h" => Language::C,
            "cc" | "cpp" | "cxx" | "c++" | "hh" | "hpp" | "hxx" | "h++" | "ipp" => Language::Cpp,
            "cs" => Language::CSharp,
            "rb" | "rake" | "gemspec" => Language::Ruby,
            "php" => Language::Php,
            "sh" | "bash" | "zsh" | "ksh" => Language::Shell,
            "sql" => Language::Sql,
            "toml" => Language::Toml,
            "yaml" | "yml" => Language::Yaml,
            _ => return None,
        })
    }
}

impl Format {
    /// The format's identifier: `"plain_text"`, `"pdf"`, … and, for code,
    /// the language's (`"rust"`). [`Format::from_name`] reads it back.
    pub fn name(&self) -> &'static str {
        match self {
            Format::PlainText => "plain_text",
            Format::Markdown => "markdown",
            Format::Html => "html",
            Format::Pdf => "pdf",
            Format::Code(language) => language.name(),
            Format::Json => "json",
            Format::JsonLines => "json_lines",
            Format::Csv => "csv",
        }
    }

    /// Every format, each language of source code included.
    pub fn all() -> impl Iterator<Item = Format> {
        let simple = [
            Format::PlainText,
            Format::Markdown,
            Format::Html,
            Format::Pdf,
            Format::Json,
            Format::JsonLines,
            Format::Csv,
        ];
        simple.into_iter().chain(Language::ALL.map(Format::Code))
    }

    /// The format named `name` by [`Format::name`].
    pub fn from_name(name: &str) -> Option<Format> {
        Format::all().find(|format| format.name() == name)
    }

    /// Tells a document's format from its file name, else its content
    /// type, else its first bytes. `None` when the bytes look binary and
    /// nothing else says what they are.
    pub fn detect(file_name: &str, content_type: Option<&str>, bytes: &[u8]) -> Option<Format> {
        by_extension(file_name).or_else(|| content_type.and_then(by_content_type)).or_else(|| sniff(bytes))
    }
}

fn by_extension(file_name: &str) -> Option<Format> {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let (stem, extension) = base.rsplit_once('.')?;
    if stem.is_empty() {
        return None; // a dotfile such as `.bashrc` has no extension
    }
    let extension = extension.to_ascii_lowercase();
    Some(match extension.as_str() {
        "txt" | "text" | "log" | "rst" | "adoc" => Format::PlainText,
        "md" | "markdown" | "mdown" | "mkd" | "mdx" => Format::Markdown,
        "html" | "htm" | "xhtml" => Format::Html,
        "pdf" => Format::Pdf,
        "json" | "geojson" => Format::Json,
        "jsonl" | "ndjson" => Format::JsonLines,
        "csv" | "tsv" => Format::Csv,
        other => Format::Code(Language::from_extension(other)?),
    })
}

fn by_content_type(content_type: &str) -> Option<Format> {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    Some(match essence.as_str() {
        "text/plain" => Format::PlainText,
        "text/markdown" | "text/x-markdown" => Format::Markdown,
        "text/html" | "application/xhtml+xml" => Format::Html,
        "application/pdf" | "application/x-pdf" => Format::Pdf,
        "application/json" | "text/json" => Format::Json,
        "application/x-ndjson" | "application/jsonl" | "application/x-jsonlines" | "application/jsonlines" => {
            Format::JsonLines
        }
        "text/csv" | "text/tab-separated-values" | "application/csv" => Format::Csv,
        "text/x-rust" | "text/rust" => Format::Code(Language::Rust),
        "text/x-python" | "text/x-script.python" | "application/x-python-code" => Format::Code(Language::Python),
        "text/javascript" | "application/javascript" | "application/x-javascript" => Format::Code(Language::JavaScript),
        "application/typescript" | "text/typescript" | "text/x-typescript" => Format::Code(Language::TypeScript),
        "text/x-go" => Format::Code(Language::Go),
        "text/x-java" | "text/x-java-source" => Format::Code(Language::Java),
        "text/x-kotlin" => Format::Code(Language::Kotlin),
        "text/x-swift" => Format::Code(Language::Swift),
        "text/x-c" | "text/x-csrc" | "text/x-chdr" => Format::Code(Language::C),
        "text/x-c++" | "text/x-c++src" | "text/x-c++hdr" => Format::Code(Language::Cpp),
        "text/x-csharp" => Format::Code(Language::CSharp),
        "text/x-ruby" | "application/x-ruby" => Format::Code(Language::Ruby),
        "text/x-php" | "application/x-httpd-php" => Format::Code(Language::Php),
        "text/x-shellscript" | "application/x-sh" | "text/x-sh" => Format::Code(Language::Shell),
        "application/sql" | "text/x-sql" => Format::Code(Language::Sql),
        "application/toml" | "text/x-toml" => Format::Code(Language::Toml),
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => Format::Code(Language::Yaml),
        other if other.ends_with("+json") => Format::Json,
        _ => return None,
    })
}

/// How many leading bytes sniffing looks at, besides JSON's validation.
const SNIFF_LEN: usize = 8 * 1024;

fn sniff(bytes: &[u8]) -> Option<Format> {
    let head = &bytes[..bytes.len().min(SNIFF_LEN)];
    // PDF readers accept junk before the header within the first KiB.
    if head[..head.len().min(1024)].windows(5).any(|w| w == b"%PDF-") {
        return Some(Format::Pdf);
    }
    if looks_binary(head) {
        return None;
    }
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = text.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(text.len());
    let text = &text[start..];
    let lower: Vec<u8> = text[..text.len().min(512)].to_ascii_lowercase();
    if lower.starts_with(b"<!doctype html")
        || [&b"<html"[..], b"<head", b"<body"].iter().any(|tag| lower.starts_with(tag))
        || (lower.starts_with(b"<?xml") && contains(&lower, b"<html"))
    {
        return Some(Format::Html);
    }
    if let Some(language) = shebang(text) {
        return Some(Format::Code(language));
    }
    if matches!(text.first(), Some(b'{' | b'[')) {
        let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
            return Some(Format::Json);
        }
        let mut lines = body.split(|b| *b == b'\n').filter(|line| !line.trim_ascii().is_empty());
        let first_is_json =
            lines.next().is_some_and(|line| serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok());
        if first_is_json && lines.next().is_some() {
            return Some(Format::JsonLines);
        }
    }
    Some(Format::PlainText)
}

/// NUL bytes, or more than one byte in ten a control character: no text
/// file looks like that.
fn looks_binary(head: &[u8]) -> bool {
    if head.contains(&0) {
        return true;
    }
    let controls = head.iter().filter(|b| (**b < 0x20 && !b"\t\n\r\x0c\x1b".contains(b)) || **b == 0x7f).count();
    controls * 10 > head.len()
}

fn shebang(text: &[u8]) -> Option<Language> {
    let line = text.strip_prefix(b"#!")?.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    let mut program = words.next()?.rsplit('/').next()?;
    if program == "env" {
        program = words.find(|word| !word.starts_with('-'))?;
    }
    let program = program.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    Some(match program {
        "sh" | "bash" | "zsh" | "ksh" | "dash" => Language::Shell,
        "python" => Language::Python,
        "node" | "deno" => Language::JavaScript,
        "ruby" => Language::Ruby,
        "php" => Language::Php,
        _ => return None,
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_decides_first() {
        let cases = [
            ("notes.TXT", Format::PlainText),
            ("docs/README.md", Format::Markdown),
            ("a.markdown", Format::Markdown),
            ("page.htm", Format::Html),
            ("C:\\files\\index.html", Format::Html),
            ("paper.pdf", Format::Pdf),
            ("data.json", Format::Json),
            ("events.jsonl", Format::JsonLines),
            ("table.csv", Format::Csv),
            ("table.tsv", Format::Csv),
            ("main.rs", Format::Code(Language::Rust)),
            ("app.py", Format::Code(Language::Python)),
            ("index.tsx", Format::Code(Language::TypeScript)),
            ("lib.hpp", Format::Code(Language::Cpp)),
            ("config.yml", Format::Code(Language::Yaml)),
        ];
        for (name, format) in cases {
            // Even when the content type and the bytes say otherwise.
            assert_eq!(Format::detect(name, Some("application/pdf"), b"%PDF-1.7"), Some(format), "{name}");
        }
    }

    #[test]
    fn then_the_content_type_then_the_bytes() {
        assert_eq!(Format::detect("upload", Some("text/html; charset=utf-8"), b"hello"), Some(Format::Html));
        assert_eq!(Format::detect("x.unknown", Some("application/vnd.api+json"), b"{}"), Some(Format::Json));
        assert_eq!(Format::detect("blob", Some("application/octet-stream"), b"%PDF-1.4\n"), Some(Format::Pdf));
        assert_eq!(Format::detect("blob", None, b"\xEF\xBB\xBF  <!DOCTYPE html><p>x"), Some(Format::Html));
        assert_eq!(Format::detect("blob", None, b"<HTML><body>x</body></HTML>"), Some(Format::Html));
        assert_eq!(Format::detect("blob", None, b" {\"a\": [1, 2]}\n"), Some(Format::Json));
        assert_eq!(Format::detect("blob", None, b"{\"a\": 1}\n{\"a\": 2}\n"), Some(Format::JsonLines));
        assert_eq!(Format::detect("blob", None, b"[section]\nkey = 1\n"), Some(Format::PlainText));
        assert_eq!(
            Format::detect("run", None, b"#!/usr/bin/env python3\nprint(1)\n"),
            Some(Format::Code(Language::Python))
        );
        assert_eq!(Format::detect("run", None, b"#!/bin/bash\necho hi\n"), Some(Format::Code(Language::Shell)));
        assert_eq!(Format::detect("notes", None, "Just some words, é.".as_bytes()), Some(Format::PlainText));
    }

    #[test]
    fn binary_bytes_are_not_detected() {
        assert_eq!(Format::detect("photo", None, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), None);
        assert_eq!(Format::detect("archive.bin", Some("application/octet-stream"), b"PK\x03\x04\x14\0\0\0"), None);
        let controls: Vec<u8> = (0..200u8).map(|i| if i % 3 == 0 { 1 } else { b'a' }).collect();
        assert_eq!(Format::detect("x", None, &controls), None);
        // Text that is merely not UTF-8 is left to the parser to explain.
        assert_eq!(Format::detect("latin1", None, b"caf\xE9 cr\xE8me"), Some(Format::PlainText));
    }

    #[test]
    fn names_round_trip_and_match_serde() {
        // Each format's name leads back to it, so no two share a name.
        assert_eq!(Format::all().count(), 7 + Language::ALL.len());
        for format in Format::all() {
            assert_eq!(Format::from_name(format.name()), Some(format));
        }
        for language in Language::ALL {
            let json = serde_json::to_string(&language).unwrap();
            assert_eq!(json, format!("\"{}\"", language.name()));
        }
        assert_eq!(serde_json::to_string(&Format::Code(Language::Rust)).unwrap(), r#"{"code":"rust"}"#);
        assert_eq!(serde_json::to_string(&Format::PlainText).unwrap(), r#""plain_text""#);
        assert_eq!(Format::from_name("nope"), None);
    }
}
