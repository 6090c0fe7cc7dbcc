//! The OpenAPI schemas of what agentd keeps that no Rust type describes:
//! free-form metadata.
//!
//! Metadata is any JSON object, except that no string in it — key or value,
//! however deep — may hold a NUL character (PostgreSQL cannot store one,
//! and the server refuses them everywhere). [`Metadata`] says exactly that,
//! so that a client generated from the document, or a fuzzer, knows what
//! the server accepts.

use std::borrow::Cow;

use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// Any string without a NUL character.
pub const NO_NUL: &str = "^[^\\u0000]*$";

/// A string without NUL that is not all blank (Rust's `trim` would leave
/// something).
pub const NON_BLANK: &str = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$";

const VALUE: &str = "MetadataValue";

/// A reference to the schema of any JSON value without NUL (registered
/// wherever [`Metadata`] is used).
pub fn value_without_nul() -> Ref {
    Ref::from_schema_name(VALUE)
}

/// A JSON object kept with a document, session or message.
pub struct Metadata;

/// Any JSON value of [`Metadata`].
struct MetadataValue;

/// A string schema without NUL.
pub fn string_without_nul() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).pattern(Some(NO_NUL))
}

fn object_of_values() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property_names(Some(string_without_nul()))
        .additional_properties(Some(Ref::from_schema_name(VALUE)))
}

impl PartialSchema for Metadata {
    fn schema() -> RefOr<Schema> {
        object_of_values()
            .description(Some("A JSON object of any keys and values; no string in it may hold a NUL character."))
            .into()
    }
}

impl ToSchema for Metadata {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Metadata")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((VALUE.to_string(), MetadataValue::schema()));
    }
}

impl PartialSchema for MetadataValue {
    fn schema() -> RefOr<Schema> {
        AnyOfBuilder::new()
            .item(string_without_nul())
            .item(ObjectBuilder::new().schema_type(Type::Number))
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .item(ArrayBuilder::new().items(Ref::from_schema_name(VALUE)))
            .item(object_of_values())
            .into()
    }
}
