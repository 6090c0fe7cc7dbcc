//! The OpenAPI schemas of the chat request's parts whose rules the serde
//! types cannot state: a message's shape depends on its role, `stop` is a
//! text or up to four, and a few fields take one value only.
//!
//! The request is read leniently (see [`super::chat_wire`]); these schemas
//! say exactly what that reading accepts, so that a generated client (or a
//! fuzzer) meets no refusal the document did not announce.

use std::borrow::Cow;

use agentd_store::openapi::NO_NUL;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::chat_wire::WireToolCall;

fn text() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).pattern(Some(NO_NUL))
}

fn one_of(value: &str) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some([value]))
}

fn null() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Null)
}

/// A message's `content`: a text, text parts, or null.
fn content() -> OneOfBuilder {
    let part = ObjectBuilder::new()
        .property("type", one_of("text"))
        .property("text", text())
        .required("type")
        .required("text");
    OneOfBuilder::new().item(text()).item(ArrayBuilder::new().items(part)).item(null())
}

/// The fields every role's message may have; `roles` is its `role`.
fn message(roles: &[&str], description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .description(Some(description))
        .property("role", ObjectBuilder::new().schema_type(Type::String).enum_values(Some(roles.iter().copied())))
        .required("role")
        .property("content", content())
        .property("name", text().description(Some("Accepted and ignored.")))
}

fn tool_calls() -> ArrayBuilder {
    ArrayBuilder::new().items(Ref::from_schema_name(WireToolCall::name()))
}

/// One message of a chat request.
pub struct ChatRequestMessage;

impl PartialSchema for ChatRequestMessage {
    fn schema() -> RefOr<Schema> {
        let plain =
            message(&["system", "developer", "user"], "Instructions (`developer` is `system`) or the user's turn.")
                .property("tool_calls", tool_calls().max_items(Some(0)));
        let assistant = message(&["assistant"], "An earlier answer, with the tools it called.")
            .property("tool_calls", tool_calls());
        let tool = message(&["tool"], "A tool's result, for the call it answers.")
            .property("tool_calls", tool_calls())
            .property("tool_call_id", ObjectBuilder::new().schema_type(Type::String).pattern(Some(NON_EMPTY)))
            .required("tool_call_id");
        OneOfBuilder::new().item(plain).item(assistant).item(tool).into()
    }
}

/// A text without NUL of at least one character.
const NON_EMPTY: &str = "^[^\\u0000]+$";

impl ToSchema for ChatRequestMessage {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ChatRequestMessage")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((WireToolCall::name().into_owned(), WireToolCall::schema()));
        <WireToolCall as ToSchema>::schemas(schemas);
    }
}

/// `stop`: a text, or up to four.
pub struct StopTexts;

impl PartialSchema for StopTexts {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some("A text, or up to 4 texts, that end the answer."))
            .item(text())
            .item(ArrayBuilder::new().items(text()).max_items(Some(4)))
            .item(null())
            .into()
    }
}

impl ToSchema for StopTexts {}

/// `tool_choice`: `auto` or `none` (forcing a tool is not supported).
pub struct ToolChoice;

impl PartialSchema for ToolChoice {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::from_iter([Type::String, Type::Null]))
            .enum_values(Some([Some("auto"), Some("none"), None]))
            .into()
    }
}

impl ToSchema for ToolChoice {}

/// `response_format`: only `{"type": "text"}`.
pub struct TextFormat;

impl PartialSchema for TextFormat {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(ObjectBuilder::new().property("type", one_of("text")).required("type"))
            .item(null())
            .into()
    }
}

impl ToSchema for TextFormat {}

/// `logprobs`: absent, null or false (log-probabilities are not given).
pub struct NoLogprobs;

impl PartialSchema for NoLogprobs {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::from_iter([Type::Boolean, Type::Null]))
            .enum_values(Some([Some(false), None]))
            .into()
    }
}

impl ToSchema for NoLogprobs {}
