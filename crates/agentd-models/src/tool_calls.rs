//! Finding Qwen's tool calls in generated text, as it streams.
//!
//! Qwen writes a call as `<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>`
//! in the middle of its output. Tokens arrive a few characters at a time, so
//! the parser holds back any tail that might be the start of a tag, passes
//! everything else on as text at once, and turns each complete call into a
//! [`ToolCall`]. Model output is not trusted: a call that is not valid JSON
//! of the right shape is passed on as the text it was, never dropped and
//! never a panic.
//!
//! Small models sometimes drop the tags and answer with the bare call
//! object. A parser made [`ToolCallParser::for_tools`] also takes an answer
//! that is nothing but such objects, naming declared tools, as calls. An
//! answer that opens with `{` is therefore held until it ends (it is most
//! likely a call); any other answer streams as usual.

use serde_json::Value;

use crate::chat::ToolCall;

const OPEN: &str = "<tool_call>";
const CLOSE: &str = "</tool_call>";

/// A piece of parsed output.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Text(String),
    ToolCall(ToolCall),
}

/// Incremental parser of one answer.
#[derive(Debug, Default)]
pub struct ToolCallParser {
    buffer: String,
    in_call: bool,
    calls: usize,
    /// Declared tool names, when bare call objects are accepted.
    tools: Vec<String>,
    bare: Bare,
}

/// Whether the answer may be bare call objects.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Bare {
    /// Not accepted, or ruled out by the answer's first character.
    #[default]
    No,
    /// Only whitespace so far.
    Undecided,
    /// The answer opened with `{`: held until it ends.
    Holding,
}

impl ToolCallParser {
    /// A parser for a new answer.
    pub fn new() -> Self {
        Self::default()
    }

    /// A parser that also takes bare call objects naming one of `tools`.
    pub fn for_tools<S: AsRef<str>>(tools: impl IntoIterator<Item = S>) -> Self {
        let tools: Vec<String> = tools.into_iter().map(|t| t.as_ref().to_owned()).collect();
        let bare = if tools.is_empty() { Bare::No } else { Bare::Undecided };
        ToolCallParser { tools, bare, ..Self::default() }
    }

    /// Feeds the next piece of generated text; returns what is now certain.
    pub fn push(&mut self, piece: &str) -> Vec<Parsed> {
        match self.bare {
            Bare::No => self.push_tagged(piece),
            Bare::Holding => {
                self.buffer.push_str(piece);
                Vec::new()
            }
            Bare::Undecided => {
                self.buffer.push_str(piece);
                let start = self.buffer.trim_start();
                if start.is_empty() {
                    Vec::new()
                } else if start.starts_with('{') {
                    self.bare = Bare::Holding;
                    Vec::new()
                } else {
                    self.bare = Bare::No;
                    let held = std::mem::take(&mut self.buffer);
                    self.push_tagged(&held)
                }
            }
        }
    }

    fn push_tagged(&mut self, piece: &str) -> Vec<Parsed> {
        self.buffer.push_str(piece);
        let mut out = Vec::new();
        loop {
            if self.in_call {
                let Some(end) = self.buffer.find(CLOSE) else { break };
                let body: String = self.buffer.drain(..end + CLOSE.len()).collect();
                let body = &body[..end];
                out.push(self.call_or_text(body, true));
                self.in_call = false;
            } else if let Some(start) = self.buffer.find(OPEN) {
                if start > 0 {
                    out.push(Parsed::Text(self.buffer[..start].to_string()));
                }
                self.buffer.drain(..start + OPEN.len());
                self.in_call = true;
            } else {
                let keep = partial_tag_len(&self.buffer);
                let text: String = self.buffer.drain(..self.buffer.len() - keep).collect();
                if !text.is_empty() {
                    out.push(Parsed::Text(text));
                }
                break;
            }
        }
        merge_text(out)
    }

    /// Ends the answer: an unclosed call (generation stopped before
    /// `</tool_call>`) is still taken if its JSON is complete.
    pub fn finish(mut self) -> Vec<Parsed> {
        if self.bare != Bare::No {
            self.bare = Bare::No;
            let held = std::mem::take(&mut self.buffer);
            if let Some(calls) = self.bare_calls(&held) {
                return calls;
            }
            let mut out = self.push_tagged(&held);
            out.extend(self.finish());
            return merge_text(out);
        }
        let rest = std::mem::take(&mut self.buffer);
        if self.in_call {
            vec![self.call_or_text(&rest, false)]
        } else if rest.is_empty() {
            Vec::new()
        } else {
            vec![Parsed::Text(rest)]
        }
    }

    /// Whether any tool call has been found so far.
    pub fn found_calls(&self) -> bool {
        self.calls > 0
    }

    /// `text` as calls, if it is only call objects naming declared tools.
    fn bare_calls(&mut self, text: &str) -> Option<Vec<Parsed>> {
        let mut found = Vec::new();
        for value in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
            let (name, arguments) = parse_call(&value.ok()?.to_string())?;
            if !self.tools.contains(&name) {
                return None;
            }
            found.push((name, arguments));
        }
        if found.is_empty() {
            return None;
        }
        let calls = found
            .into_iter()
            .map(|(name, arguments)| {
                self.calls += 1;
                Parsed::ToolCall(ToolCall { id: format!("call_{}", self.calls), name, arguments })
            })
            .collect();
        Some(calls)
    }

    fn call_or_text(&mut self, body: &str, closed: bool) -> Parsed {
        match parse_call(body) {
            Some((name, arguments)) => {
                self.calls += 1;
                Parsed::ToolCall(ToolCall { id: format!("call_{}", self.calls), name, arguments })
            }
            None => Parsed::Text(format!("{OPEN}{body}{}", if closed { CLOSE } else { "" })),
        }
    }
}

/// The length of the longest tail of `text` that is a proper prefix of
/// [`OPEN`], and so might become a tag with the next piece.
fn partial_tag_len(text: &str) -> usize {
    (1..OPEN.len()).rev().find(|&k| text.ends_with(&OPEN[..k])).unwrap_or(0)
}

/// `{"name": "...", "arguments": {...}}`, with the variants models produce:
/// arguments as a JSON-encoded string, `parameters` instead of `arguments`,
/// or no arguments at all.
fn parse_call(body: &str) -> Option<(String, Value)> {
    let value: Value = serde_json::from_str(body.trim()).ok()?;
    let object = value.as_object()?;
    let name = object.get("name")?.as_str()?.trim();
    if name.is_empty() {
        return None;
    }
    let arguments = match object.get("arguments").or_else(|| object.get("parameters")) {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(Value::String(encoded)) => match serde_json::from_str::<Value>(encoded) {
            Ok(inner @ Value::Object(_)) => inner,
            _ => return None,
        },
        Some(inner @ Value::Object(_)) => inner.clone(),
        Some(_) => return None,
    };
    Some((name.to_string(), arguments))
}

/// Joins neighbouring text pieces.
fn merge_text(parsed: Vec<Parsed>) -> Vec<Parsed> {
    let mut out: Vec<Parsed> = Vec::with_capacity(parsed.len());
    for item in parsed {
        match (out.last_mut(), item) {
            (Some(Parsed::Text(previous)), Parsed::Text(text)) => previous.push_str(&text),
            (_, item) => out.push(item),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Runs the parser over `pieces` and returns everything, texts merged.
    fn parse(pieces: &[&str]) -> Vec<Parsed> {
        let mut parser = ToolCallParser::new();
        let mut out = Vec::new();
        for piece in pieces {
            out.extend(parser.push(piece));
        }
        out.extend(parser.finish());
        merge_text(out)
    }

    fn call(n: usize, name: &str, arguments: Value) -> Parsed {
        Parsed::ToolCall(ToolCall { id: format!("call_{n}"), name: name.into(), arguments })
    }

    const TWO_CALLS: &str = "Let me check. <tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Zürich\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>";

    #[test]
    fn calls_are_found_between_text() {
        assert_eq!(
            parse(&[TWO_CALLS]),
            vec![
                Parsed::Text("Let me check. ".into()),
                call(1, "get_weather", json!({"city": "Zürich"})),
                Parsed::Text("\n".into()),
                call(2, "now", json!({})),
            ]
        );
    }

    #[test]
    fn bare_call_objects_naming_declared_tools_are_calls() {
        let text = "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n{\"name\": \"get_time\"}";
        let mut parser = ToolCallParser::for_tools(["get_weather", "get_time"]);
        for piece in text.split_inclusive(' ') {
            assert!(parser.push(piece).is_empty(), "an answer opening with {{ is held");
        }
        assert_eq!(
            parser.finish(),
            vec![call(1, "get_weather", json!({"city": "Paris"})), call(2, "get_time", json!({}))]
        );
    }

    #[test]
    fn bare_objects_that_are_not_calls_of_declared_tools_stay_text() {
        for text in
            ["{\"name\": \"rm_rf\", \"arguments\": {}}", "{\"answer\": 42}", "{not json", "{\"name\": \"t\"} and more"]
        {
            let mut parser = ToolCallParser::for_tools(["t"]);
            let mut out = parser.push(text);
            out.extend(parser.finish());
            assert_eq!(out, vec![Parsed::Text(text.into())], "{text}");
        }
    }

    #[test]
    fn answers_not_opening_with_a_brace_stream_at_once_with_tools_declared() {
        let mut parser = ToolCallParser::for_tools(["t"]);
        assert_eq!(parser.push("  "), vec![]);
        assert_eq!(parser.push("Hello"), vec![Parsed::Text("  Hello".into())]);
        let tagged = "<tool_call>{\"name\": \"t\"}</tool_call>";
        assert_eq!(parser.push(tagged), vec![call(1, "t", json!({}))]);
    }

    #[test]
    fn a_held_answer_with_tags_inside_is_parsed_at_the_end() {
        let mut parser = ToolCallParser::for_tools(["t"]);
        let text = "{x} <tool_call>{\"name\": \"t\"}</tool_call>";
        assert!(parser.push(text).is_empty());
        assert_eq!(parser.finish(), vec![Parsed::Text("{x} ".into()), call(1, "t", json!({}))]);
    }

    #[test]
    fn any_split_into_pieces_gives_the_same_result() {
        let whole = parse(&[TWO_CALLS]);
        let boundaries: Vec<usize> = (0..=TWO_CALLS.len()).filter(|&i| TWO_CALLS.is_char_boundary(i)).collect();
        for &cut in &boundaries {
            assert_eq!(parse(&[&TWO_CALLS[..cut], &TWO_CALLS[cut..]]), whole, "split at {cut}");
        }
        let chars: Vec<String> = TWO_CALLS.chars().map(String::from).collect();
        let pieces: Vec<&str> = chars.iter().map(String::as_str).collect();
        assert_eq!(parse(&pieces), whole, "one character at a time");
    }

    #[test]
    fn text_is_released_as_soon_as_it_cannot_be_a_tag() {
        let mut parser = ToolCallParser::new();
        assert_eq!(parser.push("Hello <tool"), vec![Parsed::Text("Hello ".into())]);
        assert_eq!(parser.push("box>"), vec![Parsed::Text("<toolbox>".into())]);
        assert!(!parser.found_calls());
    }

    #[test]
    fn variants_models_produce_are_accepted() {
        assert_eq!(
            parse(&[r#"<tool_call>{"name": "f", "arguments": "{\"x\": 1}"}</tool_call>"#]),
            vec![call(1, "f", json!({"x": 1}))]
        );
        assert_eq!(
            parse(&[r#"<tool_call>{"name": "f", "parameters": {"x": 1}}</tool_call>"#]),
            vec![call(1, "f", json!({"x": 1}))]
        );
        assert_eq!(parse(&[r#"<tool_call>{"name": "f"}</tool_call>"#]), vec![call(1, "f", json!({}))]);
    }

    #[test]
    fn an_unclosed_call_with_complete_json_is_still_a_call() {
        assert_eq!(
            parse(&["<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": true}}\n"]),
            vec![call(1, "f", json!({"a": true}))]
        );
    }

    #[test]
    fn malformed_calls_come_back_as_the_text_they_were() {
        for bad in [
            "<tool_call>{\"name\": \"f\", \"arguments\": {</tool_call>",
            "<tool_call>not json</tool_call>",
            "<tool_call>[1, 2]</tool_call>",
            "<tool_call>{\"arguments\": {}}</tool_call>",
            "<tool_call>{\"name\": \"\"}</tool_call>",
            "<tool_call>{\"name\": 3}</tool_call>",
            "<tool_call>{\"name\": \"f\", \"arguments\": [1]}</tool_call>",
            "<tool_call>{\"name\": \"f\", \"arguments\": \"not json\"}</tool_call>",
        ] {
            assert_eq!(parse(&[bad]), vec![Parsed::Text(bad.into())], "{bad}");
        }
        assert_eq!(parse(&["<tool_call>{\"na"]), vec![Parsed::Text("<tool_call>{\"na".into())]);
    }

    #[test]
    fn arbitrary_output_never_panics_and_loses_no_text() {
        // A small deterministic generator of tag-heavy garbage.
        let alphabet =
            ["<tool_call>", "</tool_call>", "<", "tool", "_call", ">", "{", "}", "\"name\"", ":", "é", " ", "x"];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..2000 {
            let mut text = String::new();
            let mut pieces = Vec::new();
            for _ in 0..12 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let piece = alphabet[(seed % alphabet.len() as u64) as usize];
                text.push_str(piece);
                pieces.push(piece);
            }
            let parsed = parse(&pieces);
            let calls = parsed.iter().filter(|p| matches!(p, Parsed::ToolCall(_))).count();
            if calls == 0 {
                let rebuilt: String =
                    parsed.iter().map(|p| if let Parsed::Text(t) = p { t.as_str() } else { "" }).collect();
                assert_eq!(rebuilt, text, "without calls, all text comes back unchanged");
            }
        }
    }
}
