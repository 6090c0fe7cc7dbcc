//! What every string the server takes must be, written into every string
//! schema of the OpenAPI document.
//!
//! The JSON extractor and the query extractor refuse NUL characters in any
//! string (PostgreSQL cannot store them), so a client generated from the
//! document must know: each string schema without a pattern of its own
//! gets one that excludes NUL. Patterns that handlers add themselves
//! (non-blank names, cursors) exclude NUL too. Objects that take keys of
//! any name (the lenient OpenAI shapes, free-form JSON) take them without
//! NUL too, with values of any JSON without NUL. Error bodies are answers,
//! not requests, and are left alone.

use utoipa::openapi::schema::{AdditionalProperties, ArrayItems, SchemaType, Type};
use utoipa::openapi::{OpenApi, RefOr, Schema};

pub use agentd_store::openapi::NO_NUL;

/// Adds [`NO_NUL`] to every string of `openapi` that has no pattern.
pub fn add(openapi: &mut OpenApi) {
    if let Some(components) = openapi.components.as_mut() {
        for (name, schema) in components.schemas.iter_mut() {
            if !name.starts_with("Error") {
                forbid_nul(schema);
            }
        }
    }
    for operation in super::operations_mut(openapi) {
        for parameter in operation.parameters.iter_mut().flatten() {
            if let Some(schema) = parameter.schema.as_mut() {
                forbid_nul(schema);
            }
        }
    }
}

fn forbid_nul(schema: &mut RefOr<Schema>) {
    let RefOr::T(schema) = schema else { return };
    match schema {
        Schema::Object(object) => {
            let plain = object.pattern.is_none() && object.enum_values.is_none() && object.format.is_none();
            if plain && is_string(&object.schema_type) {
                object.pattern = Some(NO_NUL.to_string());
            }
            let open = object.additional_properties.is_none()
                && (is_object(&object.schema_type) || !object.properties.is_empty());
            if open {
                object.property_names = Some(Box::new(agentd_store::openapi::string_without_nul().into()));
                let any = RefOr::Ref(agentd_store::openapi::value_without_nul());
                object.additional_properties = Some(Box::new(AdditionalProperties::RefOr(any)));
            }
            object.properties.values_mut().for_each(forbid_nul);
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                forbid_nul(items);
            }
        }
        Schema::OneOf(one_of) => one_of.items.iter_mut().for_each(forbid_nul),
        Schema::AllOf(all_of) => all_of.items.iter_mut().for_each(forbid_nul),
        Schema::AnyOf(any_of) => any_of.items.iter_mut().for_each(forbid_nul),
        _ => {}
    }
}

fn is_string(schema_type: &SchemaType) -> bool {
    is(schema_type, Type::String)
}

fn is_object(schema_type: &SchemaType) -> bool {
    is(schema_type, Type::Object)
}

fn is(schema_type: &SchemaType, wanted: Type) -> bool {
    match schema_type {
        SchemaType::Type(t) => *t == wanted,
        SchemaType::Array(types) => types.contains(&wanted),
        SchemaType::AnyValue => false,
    }
}
