//! Turning a model's token bytes into text as they stream.
//!
//! A token is a piece of bytes, not of characters: an emoji or a CJK
//! character is often split over two or three tokens. Bytes that do not yet
//! end a character are held until the next token completes it. Bytes that
//! can never become valid UTF-8 (a model can generate anything) become
//! U+FFFD, so the answer is always valid text.

/// Incremental UTF-8 decoder of one answer.
#[derive(Debug, Default)]
pub struct Utf8Pieces {
    pending: Vec<u8>,
}

impl Utf8Pieces {
    /// Adds a token's bytes; returns the text they complete.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut text = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(valid) => {
                    text.push_str(valid);
                    self.pending.clear();
                    return text;
                }
                Err(error) => {
                    let valid = error.valid_up_to();
                    text.push_str(std::str::from_utf8(&self.pending[..valid]).unwrap_or_default());
                    match error.error_len() {
                        // An incomplete character at the end: wait for more.
                        None => {
                            self.pending.drain(..valid);
                            return text;
                        }
                        Some(bad) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Ends the answer: an unfinished character becomes U+FFFD.
    pub fn finish(self) -> String {
        String::from_utf8_lossy(&self.pending).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_split_over_tokens_comes_out_whole() {
        let bytes = "héllo 🦀".as_bytes();
        let mut decoder = Utf8Pieces::default();
        let mut out = String::new();
        for byte in bytes {
            out.push_str(&decoder.push(std::slice::from_ref(byte)));
        }
        out.push_str(&decoder.finish());
        assert_eq!(out, "héllo 🦀");
    }

    #[test]
    fn text_is_released_as_soon_as_it_is_complete() {
        let mut decoder = Utf8Pieces::default();
        assert_eq!(decoder.push(b"ab\xF0\x9F"), "ab");
        assert_eq!(decoder.push(b"\xA6\x80c"), "🦀c");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut decoder = Utf8Pieces::default();
        assert_eq!(decoder.push(b"a\xFFb\xC3"), "a\u{FFFD}b");
        assert_eq!(decoder.finish(), "\u{FFFD}");
    }
}
