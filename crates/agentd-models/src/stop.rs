//! Ending an answer at a stop text while it streams.
//!
//! A caller may ask generation to stop when some text appears (OpenAI's
//! `stop`). The text can straddle tokens, so the tail of the output that
//! could still grow into a stop text is held back until the next piece
//! decides it; everything else is passed on at once. The stop text itself
//! is never passed on.

/// Incremental stop-text matcher of one answer.
#[derive(Debug, Default)]
pub struct StopScanner {
    stops: Vec<String>,
    held: String,
}

/// What a piece of output turned into.
#[derive(Debug, PartialEq, Eq)]
pub struct Scanned {
    /// Text that is certainly part of the answer.
    pub text: String,
    /// Whether a stop text was reached (the answer ends here).
    pub stopped: bool,
}

impl StopScanner {
    /// A scanner for `stops`; empty stop texts are ignored.
    pub fn new<S: AsRef<str>>(stops: impl IntoIterator<Item = S>) -> Self {
        let stops = stops.into_iter().map(|s| s.as_ref().to_owned()).filter(|s| !s.is_empty()).collect();
        StopScanner { stops, held: String::new() }
    }

    /// Feeds the next piece of output.
    pub fn push(&mut self, piece: &str) -> Scanned {
        self.held.push_str(piece);
        let first_stop = self.stops.iter().filter_map(|stop| self.held.find(stop.as_str())).min();
        if let Some(at) = first_stop {
            let text = self.held[..at].to_owned();
            self.held.clear();
            return Scanned { text, stopped: true };
        }
        let keep = self.longest_partial_stop();
        let text: String = self.held.drain(..self.held.len() - keep).collect();
        Scanned { text, stopped: false }
    }

    /// Ends the answer: text held back for a stop that never completed.
    pub fn finish(self) -> String {
        self.held
    }

    /// The length of the longest tail of the held text that is the start
    /// of some stop text (always a character boundary).
    fn longest_partial_stop(&self) -> usize {
        let mut keep = 0;
        for stop in &self.stops {
            let most = stop.len().saturating_sub(1).min(self.held.len());
            for len in (keep + 1..=most).rev() {
                let start = self.held.len() - len;
                if self.held.is_char_boundary(start) && stop.starts_with(&self.held[start..]) {
                    keep = len;
                    break;
                }
            }
        }
        keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let mut scanner = StopScanner::new(stops.iter().copied());
        let mut out = String::new();
        for piece in pieces {
            let scanned = scanner.push(piece);
            out.push_str(&scanned.text);
            if scanned.stopped {
                return (out, true);
            }
        }
        out.push_str(&scanner.finish());
        (out, false)
    }

    #[test]
    fn text_without_stops_passes_through_at_once() {
        let mut scanner = StopScanner::new(["END"]);
        assert_eq!(scanner.push("hello "), Scanned { text: "hello ".into(), stopped: false });
        assert_eq!(scanner.push("world"), Scanned { text: "world".into(), stopped: false });
    }

    #[test]
    fn a_stop_split_over_pieces_is_found_and_not_emitted() {
        assert_eq!(run(&["END"], &["one E", "N", "D two"]), ("one ".into(), true));
    }

    #[test]
    fn a_false_start_is_released() {
        let mut scanner = StopScanner::new(["END"]);
        assert_eq!(scanner.push("x EN").text, "x ");
        assert_eq!(scanner.push("o").text, "ENo");
    }

    #[test]
    fn held_text_comes_back_at_the_end() {
        assert_eq!(run(&["END"], &["abc E"]), ("abc E".into(), false));
    }

    #[test]
    fn the_earliest_of_several_stops_wins() {
        assert_eq!(run(&["\n\n", "B"], &["aBc\n\nd"]), ("a".into(), true));
    }

    #[test]
    fn multibyte_text_is_never_split_inside_a_character() {
        let (out, stopped) = run(&["éé"], &["aé", "b", "éx"]);
        assert_eq!((out.as_str(), stopped), ("aébéx", false));
    }

    #[test]
    fn every_split_of_the_output_gives_the_same_answer() {
        let text = "Paris is the capital.\nQ: and Rome? END of it";
        for cut in 1..text.len() {
            if !text.is_char_boundary(cut) {
                continue;
            }
            assert_eq!(run(&["\nQ:"], &[&text[..cut], &text[cut..]]), ("Paris is the capital.".into(), true));
        }
    }

    #[test]
    fn empty_stops_are_ignored() {
        assert_eq!(run(&[""], &["abc"]), ("abc".into(), false));
    }
}
