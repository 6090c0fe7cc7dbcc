//! A parser for server-sent events, fed whatever bytes the network delivers.
//!
//! Both OpenAI-compatible servers and Anthropic stream their answers as SSE.
//! The network splits that text anywhere: between `\r` and `\n`, inside a
//! UTF-8 character, in the middle of a field name. The parser therefore keeps
//! the unfinished line as bytes and only decodes complete lines (a line break
//! is ASCII, so it never falls inside a character). It follows the WHATWG
//! rules: lines end in `\r\n`, `\n` or `\r`; `:` starts a comment; `data`
//! lines accumulate, joined by `\n`; a blank line dispatches the event.
//!
//! One deliberate leniency: an event still pending when the body ends is
//! dispatched rather than dropped, so a server that omits the last blank
//! line (after `data: [DONE]`, say) still ends its answer properly.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SseEvent {
    /// The `event:` field; empty when the server sent none (a plain message).
    pub event: String,
    /// The `data:` lines, joined by `\n`.
    pub data: String,
}

/// The most bytes one line or one event may hold: a guard against a server
/// that never ends a line, not a limit any real answer comes near.
pub(crate) const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// An incremental SSE parser.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    /// The current line, not yet ended.
    line: Vec<u8>,
    /// The previous chunk ended with `\r`: a `\n` starting this one belongs to it.
    after_cr: bool,
    /// At least one line has been completed (a byte-order mark is only skipped on the first).
    seen_line: bool,
    event: String,
    data: String,
    has_data: bool,
}

/// The stream is not SSE a parser can hold in memory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a server-sent event is larger than {MAX_EVENT_BYTES} bytes")]
pub(crate) struct SseTooLarge;

impl SseParser {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Parses the next piece of the body; returns the events it completed.
    pub(crate) fn push(&mut self, mut bytes: &[u8]) -> Result<Vec<SseEvent>, SseTooLarge> {
        let mut events = Vec::new();
        if self.after_cr && !bytes.is_empty() {
            self.after_cr = false;
            if bytes[0] == b'\n' {
                bytes = &bytes[1..];
            }
        }
        while let Some(end) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&bytes[..end]);
            let cr = bytes[end] == b'\r';
            bytes = &bytes[end + 1..];
            if cr {
                match bytes.first() {
                    Some(b'\n') => bytes = &bytes[1..],
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            let line = std::mem::take(&mut self.line);
            if let Some(event) = self.line_ended(&line)? {
                events.push(event);
            }
        }
        self.line.extend_from_slice(bytes);
        if self.line.len() > MAX_EVENT_BYTES {
            return Err(SseTooLarge);
        }
        Ok(events)
    }

    /// The body has ended: the event still pending, if any.
    pub(crate) fn finish(&mut self) -> Result<Option<SseEvent>, SseTooLarge> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_ended(&line)?;
        }
        Ok(self.dispatch())
    }

    fn line_ended(&mut self, line: &[u8]) -> Result<Option<SseEvent>, SseTooLarge> {
        let mut line = line;
        if !self.seen_line {
            self.seen_line = true;
            line = line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line);
        }
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line[0] == b':' {
            return Ok(None);
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
                if self.data.len() > MAX_EVENT_BYTES {
                    return Err(SseTooLarge);
                }
            }
            "event" => value.clone_into(&mut self.event),
            // `id` and `retry` matter to browsers reconnecting, not to one request.
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = std::mem::take(&mut self.event);
        let data = std::mem::take(&mut self.data);
        std::mem::take(&mut self.has_data).then_some(SseEvent { event, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        for chunk in chunks {
            events.extend(parser.push(chunk).unwrap());
        }
        events.extend(parser.finish().unwrap());
        events
    }

    fn parse(text: &str) -> Vec<SseEvent> {
        parse_chunks(&[text.as_bytes()])
    }

    fn data(data: &str) -> SseEvent {
        SseEvent { event: String::new(), data: data.to_owned() }
    }

    fn named(event: &str, data: &str) -> SseEvent {
        SseEvent { event: event.to_owned(), data: data.to_owned() }
    }

    /// Every kind of line the parser knows, with all three line endings and
    /// a character outside ASCII, so that splitting it anywhere is a test.
    const MIXED: &str = "\u{feff}: a comment\r\n\
        data: {\"a\":1}\r\n\r\n\
        event: content_block_delta\n\
        data: first line\n\
        data:second line\n\
        id: 7\n\
        retry: 100\n\
        \n\
        data: caf\u{e9} \u{1f600}\r\r\
        :keep-alive\n\n\
        data\n\n\
        data: [DONE]\n\n";

    fn mixed_events() -> Vec<SseEvent> {
        vec![
            data("{\"a\":1}"),
            named("content_block_delta", "first line\nsecond line"),
            data("caf\u{e9} \u{1f600}"),
            data(""),
            data("[DONE]"),
        ]
    }

    #[test]
    fn parses_fields_comments_and_all_line_endings() {
        assert_eq!(parse(MIXED), mixed_events());
    }

    #[test]
    fn splitting_at_any_byte_changes_nothing() {
        let bytes = MIXED.as_bytes();
        for at in 0..=bytes.len() {
            assert_eq!(parse_chunks(&[&bytes[..at], &bytes[at..]]), mixed_events(), "split at byte {at}");
        }
        for a in 0..bytes.len() {
            for b in a..bytes.len() {
                let chunks = [&bytes[..a], &bytes[a..b], &bytes[b..]];
                assert_eq!(parse_chunks(&chunks), mixed_events(), "split at bytes {a} and {b}");
            }
        }
        let one_byte_chunks: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(parse_chunks(&one_byte_chunks), mixed_events());
    }

    #[test]
    fn a_lone_cr_ends_a_line_even_when_the_next_chunk_starts_with_data() {
        assert_eq!(parse_chunks(&[b"data: a\r", b"\rdata: b\r", b"\r"]), vec![data("a"), data("b")]);
    }

    #[test]
    fn the_event_name_does_not_leak_into_the_next_event() {
        assert_eq!(parse("event: ping\ndata: {}\n\ndata: x\n\n"), vec![named("ping", "{}"), data("x")]);
    }

    #[test]
    fn lines_without_data_dispatch_nothing() {
        assert_eq!(parse("event: ping\n\n: comment\n\nid: 3\n\n"), Vec::new());
    }

    #[test]
    fn an_event_pending_at_the_end_is_dispatched() {
        assert_eq!(parse("data: 1\n\ndata: [DONE]"), vec![data("1"), data("[DONE]")]);
        assert_eq!(parse("data: 1\n\ndata: [DONE]\n"), vec![data("1"), data("[DONE]")]);
    }

    #[test]
    fn only_one_space_after_the_colon_is_removed() {
        assert_eq!(parse("data:  two spaces\n\n"), vec![data(" two spaces")]);
    }

    #[test]
    fn a_line_that_never_ends_is_refused() {
        let mut parser = SseParser::new();
        let piece = vec![b'x'; 1024 * 1024];
        let mut result = Ok(Vec::new());
        for _ in 0..17 {
            result = parser.push(&piece);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(SseTooLarge));
    }
}
