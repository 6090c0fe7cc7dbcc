//! How fast the parsers read inputs built to trip a quadratic step: one
//! 5 MB line of JSON, text, Markdown and minified JavaScript, 1.7 MB of tiny
//! Rust items with stray braces, and a CSV row of 200,000 columns. Prints one table: megabytes, seconds,
//! megabytes per second. The unit tests check what these parse to; how long
//! it takes is measured here, where a busy machine cannot fail a build.
//!
//! `cargo run --release -p agentd-retrieval --example parse_bench`

use std::time::Instant;

use agentd_retrieval::parse::{Format, Language, parse};

fn main() {
    let item = r#"{"id":12345,"name":"a name","values":[1,2,3,4,5],"flag":true},"#;
    let header: Vec<String> = (0..200_000).map(|i| format!("c{i}")).collect();
    let row: Vec<String> = (0..200_000).map(|i| format!("\"v,{i}\"")).collect();
    let mut rust = "fn f() {\n    x;\n}\n".repeat(100_000);
    rust.push_str(&"}".repeat(100_000));
    let inputs: Vec<(&str, Format, String)> = vec![
        ("json, one line", Format::Json, format!("[{}{{}}]", item.repeat(5_000_000 / item.len()))),
        ("text, one line", Format::PlainText, "word, *emphasis* and `code` ".repeat(180_000)),
        ("markdown, one line", Format::Markdown, "word, *emphasis* and `code` ".repeat(180_000)),
        ("javascript, one line", Format::Code(Language::JavaScript), "var a=function(b){return b+1};".repeat(160_000)),
        ("rust, many small items", Format::Code(Language::Rust), rust),
        ("csv, one wide row", Format::Csv, format!("{}\n{}\n", header.join(","), row.join(","))),
    ];
    println!("{:<24} {:>8} {:>9} {:>8} {:>8}", "input", "MB", "seconds", "MB/s", "blocks");
    for (name, format, text) in inputs {
        let megabytes = text.len() as f64 / 1e6;
        let started = Instant::now();
        let parsed = parse(format, text.as_bytes());
        let seconds = started.elapsed().as_secs_f64();
        let blocks = parsed.map(|p| p.blocks.len().to_string()).unwrap_or_else(|e| format!("error: {e}"));
        println!("{name:<24} {megabytes:>8.1} {seconds:>9.3} {:>8.1} {blocks:>8}", megabytes / seconds);
    }
}
