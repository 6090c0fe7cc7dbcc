//! The parsers on files as they are uploaded: detected, parsed, chunked.
//!
//! The PDFs under `fixtures/` come from a real producer (see
//! `fixtures/make_pdfs.py`); the unit tests next to each parser use
//! hand-written ones.

use agentd_retrieval::parse::{Format, Language, ParseError, Parsed, parse};
use agentd_retrieval::{BlockKind, ChunkOptions, TokenCounter, chunk_blocks};

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// One token per word, as a stand-in tokenizer.
struct Words;

impl TokenCounter for Words {
    fn count(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }
}

fn detect_and_parse(name: &str, bytes: &[u8]) -> Result<Parsed, ParseError> {
    let format = Format::detect(name, None, bytes).expect("a format");
    parse(format, bytes)
}

#[test]
fn a_real_pdf_reads_with_its_unicode_pages_and_title() {
    let parsed = detect_and_parse("report.pdf", &fixture("report.pdf")).unwrap();
    let blocks: Vec<(BlockKind, &str)> = parsed.blocks.iter().map(|b| (b.kind, b.text.as_str())).collect();
    assert_eq!(
        blocks,
        [
            (BlockKind::Heading(1), "Page 1"),
            (BlockKind::Paragraph, "Quarterly Report"),
            (
                BlockKind::Paragraph,
                "Revenue grew by twelve percent in the café division, a naïve résumé of the quarter."
            ),
            (BlockKind::Paragraph, "The Ωμέγα project shipped on time."),
            (BlockKind::Heading(1), "Page 2"),
            (BlockKind::Paragraph, "Second page: outlook for the next quarter."),
        ]
    );
    assert_eq!(parsed.title.as_deref(), Some("Quarterly Report"));
    // Sniffed without a name too.
    assert_eq!(Format::detect("upload", None, &fixture("report.pdf")), Some(Format::Pdf));
}

#[test]
fn encrypted_pdfs_open_only_without_a_user_password() {
    let error = parse(Format::Pdf, &fixture("encrypted.pdf")).unwrap_err();
    assert_eq!(error.to_string(), "unreadable PDF: it is protected by a password");
    let open = parse(Format::Pdf, &fixture("owner-only.pdf")).unwrap();
    assert_eq!(open.blocks, parse(Format::Pdf, &fixture("report.pdf")).unwrap().blocks);
}

#[test]
fn a_scanned_pdf_has_no_text_layer() {
    assert_eq!(parse(Format::Pdf, &fixture("scanned.pdf")), Err(ParseError::NoTextLayer));
}

#[test]
fn truncated_and_corrupted_real_pdfs_are_errors_never_panics() {
    let pdf = fixture("report.pdf");
    for cut in (0..pdf.len()).step_by(pdf.len() / 40) {
        if let Err(error) = parse(Format::Pdf, &pdf[..cut]) {
            assert!(matches!(error, ParseError::Pdf(_) | ParseError::NoTextLayer), "{cut}: {error:?}");
        }
    }
    assert!(matches!(parse(Format::Pdf, &pdf[..pdf.len() / 3]), Err(ParseError::Pdf(_))));
    for at in (0..pdf.len()).step_by(97) {
        let mut damaged = pdf.clone();
        damaged[at] ^= 0x5A;
        let _ = parse(Format::Pdf, &damaged);
    }
}

#[test]
fn every_format_chunks_with_spans_into_its_text() {
    let documents: [(&str, &[u8]); 9] = [
        ("notes.txt", b"First paragraph.\r\n\r\nSecond one."),
        ("guide.md", b"# Guide\n\nIntro.\n\n## Use\n\nRun it.\n"),
        ("page.html", b"<title>T</title><h1>Guide</h1><p>Intro.</p><h2>Use</h2><p>Run it.</p>"),
        ("lib.rs", b"/// Adds.\nfn add(a: u8, b: u8) -> u8 {\n    a + b\n}\n"),
        ("app.py", b"import os\n\ndef main():\n    print(os.name)\n"),
        ("data.json", br#"{"name": "agentd", "tags": ["a", "b"]}"#),
        ("events.jsonl", b"{\"e\": 1}\n{\"e\": 2}\n"),
        ("table.csv", b"name,city\nAnn,\"Paris, France\"\n"),
        ("report.pdf", &[]),
    ];
    let pdf = fixture("report.pdf");
    for (name, bytes) in documents {
        let bytes = if name.ends_with(".pdf") { pdf.as_slice() } else { bytes };
        let parsed = detect_and_parse(name, bytes).unwrap_or_else(|error| panic!("{name}: {error}"));
        for block in &parsed.blocks {
            assert!(parsed.text.get(block.span.clone()).is_some(), "{name}: {block:?}");
        }
        let chunks = chunk_blocks(&parsed.text, &parsed.blocks, &Words, ChunkOptions::default());
        assert!(!chunks.is_empty(), "{name}");
        for chunk in &chunks {
            let cited = &parsed.text[chunk.byte_span.clone()];
            let first_word = chunk.text.split_whitespace().next().unwrap();
            assert!(cited.contains(first_word), "{name}: {cited:?} cites {:?}", chunk.text);
        }
    }
}

#[test]
fn code_chunks_carry_their_definition_in_the_heading_path() {
    let source = b"def first():\n    return 1\n\n\nclass Second:\n    def method(self):\n        return 2\n";
    let parsed = parse(Format::Code(Language::Python), source).unwrap();
    let chunks = chunk_blocks(&parsed.text, &parsed.blocks, &Words, ChunkOptions::default());
    let paths: Vec<Vec<String>> = chunks.iter().map(|c| c.heading_path.clone()).collect();
    assert_eq!(paths, [vec!["def first".to_owned()], vec!["class Second".to_owned()]]);
}

#[test]
fn unknown_binary_is_not_a_format() {
    assert_eq!(Format::detect("blob", Some("application/octet-stream"), b"\x7fELF\x02\x01\x01\0\0\0"), None);
}
