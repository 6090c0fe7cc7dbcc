//! PDF: the text layer, page by page.
//!
//! Text comes from `pdf-extract` (on `lopdf`), which lays out each page's
//! text runs into lines and paragraphs; it is pure Rust and reads the
//! usual producers (TeX, office suites, browsers' print to PDF), standard
//! and embedded fonts with their Unicode maps, and files encrypted with an
//! empty user password (allowed to open, not to edit).
//!
//! Decisions:
//! - PDF readers panic on malformed input (`unwrap` on the object graph),
//!   and recurse along nested objects. Extraction therefore runs on its own
//!   thread with a large stack, under `catch_unwind`; a panic becomes
//!   [`ParseError::Pdf`] and its message is kept off stderr. Damaged,
//!   truncated and password-protected files are errors too, never panics.
//! - Each page with text starts with a level-1 heading `Page N`, so every
//!   chunk's heading path says which page it cites; a page's paragraphs
//!   are its runs of non-blank lines, spaces within lines collapsed.
//! - A page that fails is skipped when others read; a file where no page
//!   has text (a scan) is [`ParseError::NoTextLayer`].
//! - The title is the document information's `/Title`, when set.
//! - Endless loops in the reader are not guarded against: a thread cannot
//!   be stopped from outside; the ingestion job's own time limit is the
//!   guard.

use std::any::Any;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use pdf_extract::{Document, Object, PlainTextOutput};

use super::{ParseError, Parsed, push_block};
use crate::chunk::BlockKind;

/// Stack for the extraction thread: deeply nested objects recurse.
const STACK_SIZE: usize = 256 * 1024 * 1024;

pub(super) fn parse(bytes: &[u8]) -> Result<Parsed, ParseError> {
    if !bytes[..bytes.len().min(1024)].windows(5).any(|w| w == b"%PDF-") {
        return Err(ParseError::Pdf("no PDF header; the file is not a PDF".to_owned()));
    }
    let (title, pages) = isolated(|| extract(bytes))??;
    let mut text = String::new();
    let mut blocks = Vec::new();
    for (number, page) in pages {
        let paragraphs = paragraphs(&page);
        if paragraphs.is_empty() {
            continue;
        }
        blocks.push(push_block(&mut text, BlockKind::Heading(1), &format!("Page {number}")));
        for paragraph in paragraphs {
            blocks.push(push_block(&mut text, BlockKind::Paragraph, &paragraph));
        }
    }
    if blocks.is_empty() {
        return Err(ParseError::NoTextLayer);
    }
    Ok(Parsed { text, blocks, title })
}

/// The title and each page's number and raw text.
type Extracted = (Option<String>, Vec<(u32, String)>);

fn extract(bytes: &[u8]) -> Result<Extracted, ParseError> {
    let mut document = Document::load_mem(bytes).map_err(|error| ParseError::Pdf(describe(&error)))?;
    if document.is_encrypted() && document.decrypt("").is_err() {
        return Err(ParseError::Pdf("it is protected by a password".to_owned()));
    }
    let title = title(&document);
    let numbers: Vec<u32> = document.get_pages().into_keys().collect();
    if numbers.is_empty() {
        return Err(ParseError::Pdf("it has no pages".to_owned()));
    }
    let mut pages = Vec::with_capacity(numbers.len());
    let mut failure = None;
    for number in numbers {
        let mut page = String::new();
        let read = {
            let mut output = PlainTextOutput::new(&mut page);
            pdf_extract::output_doc_page(&document, &mut output, number)
        };
        match read {
            Ok(()) => pages.push((number, page)),
            Err(error) => failure = Some(error.to_string()),
        }
    }
    match failure {
        Some(reason) if pages.is_empty() => Err(ParseError::Pdf(reason)),
        _ => Ok((title, pages)),
    }
}

/// A lopdf error as a reason a person can read.
fn describe(error: &pdf_extract::Error) -> String {
    use pdf_extract::Error;
    match error {
        Error::Parse(_)
        | Error::Xref(_)
        | Error::MissingXrefEntry
        | Error::InvalidOffset(_)
        | Error::IndirectObject { .. }
        | Error::ObjectIdMismatch => format!("the file is damaged or truncated ({error})"),
        Error::Unimplemented(what) => format!("it uses a feature the reader lacks ({what})"),
        other => other.to_string(),
    }
}

fn title(document: &Document) -> Option<String> {
    let info = document.trailer.get(b"Info").ok()?;
    let info = match info {
        Object::Reference(id) => document.get_dictionary(*id).ok()?,
        Object::Dictionary(info) => info,
        _ => return None,
    };
    let title = pdf_extract::decode_text_string(info.get(b"Title").ok()?).ok()?;
    let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
    (!title.is_empty()).then_some(title)
}

/// A page's paragraphs: runs of non-blank lines, each line's whitespace
/// collapsed and control characters dropped.
fn paragraphs(page: &str) -> Vec<String> {
    let mut paragraphs = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for line in page.lines() {
        let line: String = line
            .split(|c: char| c.is_whitespace() || c.is_control())
            .filter(|word| !word.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if line.is_empty() {
            if !current.is_empty() {
                paragraphs.push(current.join("\n"));
                current.clear();
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current.join("\n"));
    }
    paragraphs
}

thread_local! {
    /// Set on a thread whose panics are expected and reported as errors.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `extract` on a thread of its own with a large stack and catches its
/// panic, whose message then goes into the error instead of to stderr.
///
/// The process's panic hook is wrapped once: panics on other threads still
/// reach the hook that was there before.
fn isolated<T: Send>(extract: impl FnOnce() -> T + Send) -> Result<T, ParseError> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let quietly = move || {
        QUIET.with(|quiet| quiet.set(true));
        let result = panic::catch_unwind(AssertUnwindSafe(extract));
        QUIET.with(|quiet| quiet.set(false));
        result
    };
    let result = std::thread::scope(|scope| {
        match std::thread::Builder::new()
            .name("pdf-extract".to_owned())
            .stack_size(STACK_SIZE)
            .spawn_scoped(scope, quietly)
        {
            Ok(thread) => thread.join().unwrap_or_else(Err),
            Err(error) => Err(Box::new(format!("could not start its reader ({error})")) as Box<dyn Any + Send>),
        }
    });
    result.map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        // The reader's own words, short: they can hold a dump of its state.
        let message: String = message.chars().take(160).collect();
        ParseError::Pdf(format!("the file is damaged or uses something the reader does not support ({message})"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal valid PDF: one content stream per page, each line drawn
    /// with the standard Helvetica font.
    pub(crate) fn tiny_pdf(pages: &[&[&str]], title: Option<&str>) -> Vec<u8> {
        let page_count = pages.len();
        // Objects: 1 catalog, 2 page tree, 3 font, then a page and its
        // content for each page, then the information dictionary.
        let mut objects: Vec<String> = vec![
            "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
            format!(
                "<< /Type /Pages /Count {page_count} /Kids [{}] >>",
                (0..page_count).map(|i| format!("{} 0 R", 4 + 2 * i)).collect::<Vec<_>>().join(" ")
            ),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_owned(),
        ];
        for (i, lines) in pages.iter().enumerate() {
            let mut content = String::from("BT /F1 12 Tf 72 720 Td 14 TL\n");
            for line in *lines {
                content.push_str(&format!(
                    "({}) Tj T*\n",
                    line.replace('\\', "\\\\").replace('(', "\\(").replace(')', "\\)")
                ));
            }
            content.push_str("ET");
            objects.push(format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
                5 + 2 * i
            ));
            objects.push(format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()));
        }
        let info = objects.len() + 1;
        objects.push(format!("<< /Title ({}) /Producer (test) >>", title.unwrap_or("")));
        let mut pdf = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
        let mut offsets = Vec::new();
        for (i, object) in objects.iter().enumerate() {
            offsets.push(pdf.len());
            pdf.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
        }
        let xref = pdf.len();
        pdf.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
        for offset in offsets {
            pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
        }
        let info = if title.is_some() { format!(" /Info {info} 0 R") } else { String::new() };
        pdf.extend_from_slice(
            format!("trailer\n<< /Size {} /Root 1 0 R{info} >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1)
                .as_bytes(),
        );
        pdf
    }

    #[test]
    fn pages_become_headings_and_paragraphs() {
        let pdf = tiny_pdf(&[&["First   line here", "", "Second paragraph"], &["Page two text"]], Some("A Test"));
        let parsed = parse(&pdf).unwrap();
        let blocks: Vec<(BlockKind, &str)> = parsed.blocks.iter().map(|b| (b.kind, b.text.as_str())).collect();
        assert_eq!(
            blocks,
            [
                (BlockKind::Heading(1), "Page 1"),
                (BlockKind::Paragraph, "First line here"),
                (BlockKind::Paragraph, "Second paragraph"),
                (BlockKind::Heading(1), "Page 2"),
                (BlockKind::Paragraph, "Page two text"),
            ]
        );
        assert_eq!(parsed.title.as_deref(), Some("A Test"));
        for block in &parsed.blocks {
            assert_eq!(&parsed.text[block.span.clone()], block.text);
        }
    }

    #[test]
    fn a_pdf_without_text_has_no_text_layer() {
        let pdf = tiny_pdf(&[&[], &[]], None);
        assert_eq!(parse(&pdf), Err(ParseError::NoTextLayer));
        assert_eq!(ParseError::NoTextLayer.to_string(), "the PDF has no text layer (scanned pages need OCR first)");
    }

    #[test]
    fn truncated_and_damaged_pdfs_are_errors_not_panics() {
        let pdf = tiny_pdf(&[&["Some text on the page"]], None);
        assert!(parse(&pdf).is_ok());
        for cut in [pdf.len() / 4, pdf.len() / 2, pdf.len() - 40, pdf.len() - 10] {
            // Readers may rebuild a lost cross-reference table, so a cut may
            // still read; what matters is that none panics.
            if let Err(error) = parse(&pdf[..cut]) {
                assert!(matches!(error, ParseError::Pdf(_) | ParseError::NoTextLayer), "{error:?}");
            }
        }
        assert!(matches!(parse(&pdf[..12]), Err(ParseError::Pdf(_))));
        let error = parse(b"GIF89a not a pdf").unwrap_err();
        assert_eq!(error.to_string(), "unreadable PDF: no PDF header; the file is not a PDF");
        // Every single-byte corruption of the structure is survived.
        for at in (0..pdf.len()).step_by(7) {
            let mut damaged = pdf.clone();
            damaged[at] = b"0]>)/R"[at % 6];
            let _ = parse(&damaged);
        }
    }

    #[test]
    fn a_panicking_reader_becomes_an_error() {
        let result = isolated(|| -> u32 { panic!("boom in the reader") });
        let Err(ParseError::Pdf(reason)) = result else { panic!("{result:?}") };
        assert!(reason.contains("boom in the reader"), "{reason}");
        assert_eq!(isolated(|| 7).unwrap(), 7);
    }
}
