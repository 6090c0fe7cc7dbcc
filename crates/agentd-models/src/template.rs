//! Chat templates: how a conversation becomes the prompt text a local model
//! was trained on.
//!
//! Each model family has its own. Both families here use ChatML turns
//! (`<|im_start|>role\n…<|im_end|>\n`); they differ in the default system
//! prompt and in tools: Qwen2.5 lists tool signatures in the system turn,
//! writes the assistant's calls as `<tool_call>` JSON, and hands results
//! back in a user turn of `<tool_response>` blocks. The renderings follow
//! the models' own Jinja templates, byte for byte where the tests check.

use serde::Serialize;

use crate::chat::{ChatMessage, ChatRole, ToolSpec};

/// A prompt format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatTemplate {
    /// SmolLM2-Instruct: ChatML with its own default system prompt; no tools.
    SmolLm2,
    /// Qwen2.5-Instruct (and -Coder): ChatML with tool calling.
    Qwen25,
}

const SMOLLM2_SYSTEM: &str = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";
const QWEN_SYSTEM: &str = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

/// What the model writes to end its turn.
pub const END_OF_TURN: &str = "<|im_end|>";

impl ChatTemplate {
    /// Whether the format can declare tools and carry tool calls.
    pub fn supports_tools(self) -> bool {
        matches!(self, ChatTemplate::Qwen25)
    }

    /// Texts that end generation: the end of the assistant's turn, and the
    /// end-of-text marker some checkpoints emit instead.
    pub fn stop_texts(self) -> &'static [&'static str] {
        &[END_OF_TURN, "<|endoftext|>"]
    }

    /// The prompt for `messages`, ending with the opening of the
    /// assistant's turn. `tools` are ignored by formats without tools.
    pub fn render(self, messages: &[ChatMessage], tools: &[ToolSpec]) -> String {
        match self {
            ChatTemplate::SmolLm2 => render_smollm2(messages),
            ChatTemplate::Qwen25 => render_qwen25(messages, tools),
        }
    }
}

/// The role as chat templates write it.
pub(crate) fn role_name(role: ChatRole) -> &'static str {
    match role {
        ChatRole::System => "system",
        ChatRole::User => "user",
        ChatRole::Assistant => "assistant",
        ChatRole::Tool => "tool",
    }
}

fn turn(out: &mut String, role: &str, content: &str) {
    out.push_str("<|im_start|>");
    out.push_str(role);
    out.push('\n');
    out.push_str(content);
    out.push_str("<|im_end|>\n");
}

fn render_smollm2(messages: &[ChatMessage]) -> String {
    let mut out = String::new();
    if messages.first().is_none_or(|m| m.role != ChatRole::System) {
        turn(&mut out, "system", SMOLLM2_SYSTEM);
    }
    for message in messages {
        // A model without tools reads earlier tool traffic as plain text.
        let mut content = message.content.clone();
        for call in &message.tool_calls {
            if !content.is_empty() {
                content.push('\n');
            }
            content.push_str(&format!("{}({})", call.name, call.arguments));
        }
        turn(&mut out, role_name(message.role), &content);
    }
    out.push_str("<|im_start|>assistant\n");
    out
}

/// A tool as Qwen's template prints it in the system turn.
#[derive(Serialize)]
struct QwenTool<'a> {
    r#type: &'static str,
    function: QwenFunction<'a>,
}

#[derive(Serialize)]
struct QwenFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a serde_json::Value,
}

fn render_qwen25(messages: &[ChatMessage], tools: &[ToolSpec]) -> String {
    let mut out = String::new();
    let explicit_system = messages.first().filter(|m| m.role == ChatRole::System);
    if tools.is_empty() {
        turn(&mut out, "system", explicit_system.map_or(QWEN_SYSTEM, |m| m.content.as_str()));
    } else {
        out.push_str("<|im_start|>system\n");
        out.push_str(explicit_system.map_or(QWEN_SYSTEM, |m| m.content.as_str()));
        out.push_str(
            "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n\
             You are provided with function signatures within <tools></tools> XML tags:\n<tools>",
        );
        for tool in tools {
            let tool = QwenTool {
                r#type: "function",
                function: QwenFunction {
                    name: &tool.name,
                    description: &tool.description,
                    parameters: &tool.parameters,
                },
            };
            out.push('\n');
            out.push_str(&python_json(&tool));
        }
        out.push_str(
            "\n</tools>\n\nFor each function call, return a json object with function name and arguments within \
             <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": \
             <args-json-object>}\n</tool_call><|im_end|>\n",
        );
    }

    let skip_first = usize::from(explicit_system.is_some());
    let rest = &messages[skip_first..];
    for (i, message) in rest.iter().enumerate() {
        match message.role {
            ChatRole::User | ChatRole::System => turn(&mut out, role_name(message.role), &message.content),
            ChatRole::Assistant if message.tool_calls.is_empty() => turn(&mut out, "assistant", &message.content),
            ChatRole::Assistant => {
                out.push_str("<|im_start|>assistant");
                if !message.content.is_empty() {
                    out.push('\n');
                    out.push_str(&message.content);
                }
                for call in &message.tool_calls {
                    out.push_str("\n<tool_call>\n{\"name\": \"");
                    out.push_str(&call.name);
                    out.push_str("\", \"arguments\": ");
                    out.push_str(&python_json(&call.arguments));
                    out.push_str("}\n</tool_call>");
                }
                out.push_str("<|im_end|>\n");
            }
            ChatRole::Tool => {
                let first_of_run = i == 0 || rest[i - 1].role != ChatRole::Tool;
                let last_of_run = rest.get(i + 1).is_none_or(|next| next.role != ChatRole::Tool);
                if first_of_run {
                    out.push_str("<|im_start|>user");
                }
                out.push_str("\n<tool_response>\n");
                out.push_str(&message.content);
                out.push_str("\n</tool_response>");
                if last_of_run {
                    out.push_str("<|im_end|>\n");
                }
            }
        }
    }
    out.push_str("<|im_start|>assistant\n");
    out
}

/// JSON as Python's `json.dumps` writes it by default (`", "` and `": "`
/// separators, non-ASCII kept), which is what the Jinja `tojson` filter of
/// the model's template produced during training.
fn python_json(value: &impl Serialize) -> String {
    struct PythonFormatter;

    impl serde_json::ser::Formatter for PythonFormatter {
        fn begin_array_value<W: ?Sized + std::io::Write>(
            &mut self,
            writer: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            if first { Ok(()) } else { writer.write_all(b", ") }
        }

        fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, writer: &mut W, first: bool) -> std::io::Result<()> {
            if first { Ok(()) } else { writer.write_all(b", ") }
        }

        fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
            writer.write_all(b": ")
        }
    }

    let mut bytes = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut bytes, PythonFormatter);
    match value.serialize(&mut serializer) {
        Ok(()) => String::from_utf8(bytes).unwrap_or_default(),
        Err(_) => "null".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::chat::ToolCall;

    #[test]
    fn smollm2_adds_its_default_system_prompt_and_opens_the_answer() {
        let prompt = ChatTemplate::SmolLm2.render(&[ChatMessage::user("Hi")], &[]);
        assert_eq!(
            prompt,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
             <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn smollm2_keeps_a_given_system_prompt() {
        let prompt = ChatTemplate::SmolLm2.render(&[ChatMessage::system("Be brief."), ChatMessage::user("Hi")], &[]);
        assert!(prompt.starts_with("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi"));
        assert!(!prompt.contains("SmolLM"));
    }

    #[test]
    fn qwen_without_tools_is_plain_chatml() {
        let messages = [ChatMessage::user("2+2?"), ChatMessage::assistant("4"), ChatMessage::user("and 3+3?")];
        assert_eq!(
            ChatTemplate::Qwen25.render(&messages, &[]),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n\
             <|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n\
             <|im_start|>user\nand 3+3?<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn qwen_renders_tools_calls_and_grouped_results_as_its_template_does() {
        let tool = ToolSpec {
            name: "get_weather".into(),
            description: "Weather of a city".into(),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        };
        let call = |id: &str, city: &str| ToolCall {
            id: id.into(),
            name: "get_weather".into(),
            arguments: json!({ "city": city }),
        };
        let messages = [
            ChatMessage::system("You help."),
            ChatMessage::user("Weather in Paris and Oslo?"),
            ChatMessage { tool_calls: vec![call("a", "Paris"), call("b", "Oslo")], ..ChatMessage::assistant("") },
            ChatMessage::tool("a", "sunny"),
            ChatMessage::tool("b", "snow"),
        ];
        let expected = concat!(
            "<|im_start|>system\nYou help.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n",
            "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n",
            r#"{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city", "parameters": {"properties": {"city": {"type": "string"}}, "required": ["city"], "type": "object"}}}"#,
            "\n</tools>\n\nFor each function call, return a json object with function name and arguments within ",
            "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n",
            "</tool_call><|im_end|>\n",
            "<|im_start|>user\nWeather in Paris and Oslo?<|im_end|>\n",
            "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
            "\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call><|im_end|>\n",
            "<|im_start|>user\n<tool_response>\nsunny\n</tool_response>\n<tool_response>\nsnow\n</tool_response><|im_end|>\n",
            "<|im_start|>assistant\n",
        );
        assert_eq!(ChatTemplate::Qwen25.render(&messages, &[tool]), expected);
    }

    #[test]
    fn python_json_matches_json_dumps() {
        assert_eq!(python_json(&json!({"a": [1, 2], "b": "é"})), r#"{"a": [1, 2], "b": "é"}"#);
        assert_eq!(python_json(&json!([])), "[]");
        assert_eq!(python_json(&json!({})), "{}");
    }
}
