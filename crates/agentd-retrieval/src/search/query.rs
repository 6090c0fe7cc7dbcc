//! Turning a question and the conversation before it into what the two
//! retrievers search for.
//!
//! A follow-up ("can it do that asynchronously?", "and for folders?") says
//! little on its own: its subject is in the earlier messages. Searching it
//! alone finds pages about "asynchronously" in general. So a question with
//! history is searched together with the recent messages that give it a
//! subject.
//!
//! Decisions:
//! - No model rewrites the question: the local chat models are too small
//!   to rewrite reliably and too slow for a search's budget. The recent
//!   user messages are added as they are; the most recent assistant
//!   message is added cut short, because it names the API the
//!   conversation settled on, but a long answer would drown the question.
//! - The question comes first and the older messages after it, most
//!   recent first: the embedder reads a bounded window, and what is cut
//!   off at its end should be the oldest context.
//! - Keywords get the same text: BM25 ranks by shared rare words, and the
//!   subject's words are the rare ones.

use super::request::{Turn, TurnRole};

/// Earlier user messages searched with a question.
const USER_TURNS: usize = 2;
/// The most characters of the last assistant message searched.
const ASSISTANT_CHARS: usize = 200;

/// The text a question is searched with, given its conversation so far.
pub(crate) fn contextual_query(question: &str, history: &[Turn]) -> String {
    if history.is_empty() {
        return question.to_string();
    }
    let mut parts = vec![question.trim().to_string()];
    let mut users = 0;
    let mut assistant_seen = false;
    for turn in history.iter().rev() {
        let content = turn.content.trim();
        if content.is_empty() {
            continue;
        }
        match turn.role {
            TurnRole::User if users < USER_TURNS => {
                users += 1;
                parts.push(content.to_string());
            }
            TurnRole::Assistant if !assistant_seen && users == 0 => {
                assistant_seen = true;
                parts.push(cut_at_word(content, ASSISTANT_CHARS).to_string());
            }
            _ => {}
        }
        if users == USER_TURNS {
            break;
        }
    }
    parts.join("\n")
}

/// At most `max` bytes of `text`, ending at a word boundary when there is one.
fn cut_at_word(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    match text[..end].rfind(char::is_whitespace) {
        Some(space) if space > 0 => &text[..space],
        _ => &text[..end],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(role: TurnRole, content: &str) -> Turn {
        Turn { role, content: content.into() }
    }

    #[test]
    fn a_question_without_history_is_searched_as_it_is() {
        assert_eq!(contextual_query("how do I copy a file?", &[]), "how do I copy a file?");
    }

    #[test]
    fn a_follow_up_is_searched_with_the_recent_messages_newest_first() {
        let history = [
            turn(TurnRole::User, "how do I parse dates?"),
            turn(TurnRole::Assistant, "Use datetime.strptime."),
            turn(TurnRole::User, "how do I read a CSV file in Python?"),
            turn(TurnRole::Assistant, "The csv module's reader does that."),
        ];
        let query = contextual_query("and write one back?", &history);
        assert_eq!(
            query,
            "and write one back?\nThe csv module's reader does that.\nhow do I read a CSV file in Python?\nhow do I parse dates?"
        );
    }

    #[test]
    fn older_messages_beyond_the_window_are_left_out() {
        let history = [
            turn(TurnRole::User, "first topic"),
            turn(TurnRole::User, "second topic"),
            turn(TurnRole::User, "third topic"),
        ];
        let query = contextual_query("and then?", &history);
        assert!(query.contains("third topic") && query.contains("second topic"));
        assert!(!query.contains("first topic"));
    }

    #[test]
    fn a_long_assistant_message_is_cut_at_a_word() {
        let long = format!("Use shutil.copytree {}", "word ".repeat(200));
        let query =
            contextual_query("and folders?", &[turn(TurnRole::User, "copy files"), turn(TurnRole::Assistant, &long)]);
        let assistant = query.lines().nth(1).expect("assistant line");
        assert!(assistant.len() <= ASSISTANT_CHARS && assistant.starts_with("Use shutil.copytree"));
        assert!(!assistant.ends_with(' '));
        assert_eq!(cut_at_word("héllo wörld", 8), "héllo");
    }
}
