//! CSV (and TSV): a table read as records.
//!
//! A row on its own (`Ann,41,Paris`) means nothing to a reader or an
//! embedding; with its header it does. So each row becomes one paragraph
//! naming its columns, `name: Ann; age: 41; city: Paris`, and the chunker
//! packs consecutive rows into chunks.
//!
//! Decisions:
//! - The first record is the header. A column without a name is called
//!   `column N` (from 1).
//! - The delimiter is the one of `,` `;` tab `|` found most often in the
//!   header line outside quotes (so TSV and European `;` files read too).
//! - Quoted fields (delimiters, quotes and line breaks inside) are read by
//!   the `csv` crate; whitespace in values is collapsed to single spaces.
//! - Ragged rows are tolerated, not refused: exports often have them. A
//!   short row simply lacks the missing columns; a long row's extra values
//!   are named `column N`. Empty values are left out.
//! - [`Parsed::text`] is a first paragraph listing the columns, then the
//!   rendered rows, blank-line separated; the spans point into it. A table
//!   with a header and no rows has no text.

use super::{Format, ParseError, Parsed, push_block};
use crate::chunk::BlockKind;

pub(super) fn parse(source: &str) -> Result<Parsed, ParseError> {
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(delimiter(source))
        .has_headers(false)
        .flexible(true)
        .from_reader(source.as_bytes());
    let malformed = |error: ::csv::Error| ParseError::Malformed { format: Format::Csv, reason: error.to_string() };
    let mut records = reader.records();
    let header = records.next().ok_or(ParseError::Empty)?.map_err(malformed)?;
    let mut columns: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let name = collapse(name);
            if name.is_empty() { format!("column {}", i + 1) } else { name }
        })
        .collect();
    let mut text = String::new();
    let mut blocks = vec![push_block(&mut text, BlockKind::Paragraph, &format!("Columns: {}", columns.join(", ")))];
    for record in records {
        let record = record.map_err(malformed)?;
        let mut row = String::new();
        for (i, value) in record.iter().enumerate() {
            let value = collapse(value);
            if value.is_empty() {
                continue;
            }
            if i >= columns.len() {
                columns.push(format!("column {}", i + 1));
            }
            if !row.is_empty() {
                row.push_str("; ");
            }
            row.push_str(&columns[i]);
            row.push_str(": ");
            row.push_str(&value);
        }
        if !row.is_empty() {
            blocks.push(push_block(&mut text, BlockKind::Paragraph, &row));
        }
    }
    if blocks.len() == 1 {
        return Err(ParseError::Empty);
    }
    Ok(Parsed { text, blocks, title: None })
}

/// The likeliest delimiter: the candidate most frequent in the first line,
/// outside quotes; `,` when none appears.
fn delimiter(source: &str) -> u8 {
    let mut counts = [0_usize; 4];
    let candidates = [b',', b';', b'\t', b'|'];
    let mut quoted = false;
    for byte in source.bytes() {
        match byte {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => break,
            _ if !quoted => {
                if let Some(i) = candidates.iter().position(|c| *c == byte) {
                    counts[i] += 1;
                }
            }
            _ => {}
        }
    }
    let best = (0..4).max_by_key(|i| (counts[*i], std::cmp::Reverse(*i))).unwrap_or(0);
    if counts[best] == 0 { b',' } else { candidates[best] }
}

fn collapse(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(parsed: &Parsed) -> Vec<&str> {
        parsed.blocks.iter().map(|b| b.text.as_str()).collect()
    }

    #[test]
    fn rows_name_their_columns_and_quoted_fields_keep_their_commas() {
        let source = "name,age,city\nAnn,41,\"Paris, France\"\n\"Bob \"\"B\"\" Jr\",,\"New\nYork\"\n";
        let parsed = parse(source).unwrap();
        assert_eq!(
            rows(&parsed),
            [
                "Columns: name, age, city",
                "name: Ann; age: 41; city: Paris, France",
                "name: Bob \"B\" Jr; city: New York"
            ]
        );
        for block in &parsed.blocks {
            assert_eq!(&parsed.text[block.span.clone()], block.text);
        }
    }

    #[test]
    fn ragged_rows_are_tolerated_and_unnamed_columns_numbered() {
        let parsed = parse("a,,c\n1\n1,2,3,4\n").unwrap();
        assert_eq!(rows(&parsed), ["Columns: a, column 2, c", "a: 1", "a: 1; column 2: 2; c: 3; column 4: 4"]);
    }

    #[test]
    fn the_delimiter_is_sniffed_from_the_header() {
        assert_eq!(rows(&parse("x\ty\n1\t2,5\n").unwrap())[1], "x: 1; y: 2,5");
        assert_eq!(rows(&parse("\"a,b\";c\n1;2\n").unwrap())[1], "a,b: 1; c: 2");
        assert_eq!(rows(&parse("single\nvalue\n").unwrap())[1], "single: value");
    }

    #[test]
    fn a_header_without_rows_has_no_text() {
        assert_eq!(parse("a,b,c\n"), Err(ParseError::Empty));
        assert_eq!(parse("a,b\n,\n"), Err(ParseError::Empty));
    }

    #[test]
    fn a_huge_single_row_keeps_every_column() {
        let header: Vec<String> = (0..200_000).map(|i| format!("c{i}")).collect();
        let row: Vec<String> = (0..200_000).map(|i| format!("\"v,{i}\"")).collect();
        let source = format!("{}\n{}\n", header.join(","), row.join(","));
        // How long it takes is measured by `examples/parse_bench.rs`.
        let parsed = parse(&source).unwrap();
        assert!(parsed.blocks[1].text.ends_with("c199999: v,199999"));
    }
}
