//! The error answers many operations share, written into the OpenAPI
//! document from what each operation is, so that no operation forgets one.
//!
//! A handler declares its own outcomes (its success, the 403 of an admin
//! route, a 404 of an unknown model, …). What layers around it add is the
//! same everywhere and is filled in here: 401 behind authentication, 429
//! from the rate limits, 503 when the database is down, 408 from the
//! request timeout, 400/413/415/422 for a request body, 400 for a query
//! string, 400 and 404 for an id in the path, and 500. The route table of
//! the server's tests checks the document against the server's answers.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

/// Adds the shared error answers to every operation of `openapi`.
pub fn add(openapi: &mut OpenApi) {
    let error_body = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    for operation in super::operations_mut(openapi) {
        for (status, why) in shared(operation) {
            let response =
                ResponseBuilder::new().description(why).content("application/json", error_body.clone()).build();
            operation.responses.responses.entry(status.to_string()).or_insert(RefOr::T(response));
        }
    }
}

/// The shared answers `operation` can give, with why.
fn shared(operation: &Operation) -> Vec<(u16, &'static str)> {
    let mut out = vec![
        (408, "The request took longer than the server's request timeout"),
        (500, "An unexpected failure (the body names no cause; the log does)"),
    ];
    let authenticated = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    if authenticated {
        out.push((401, "Missing, malformed, expired or revoked credentials"));
        out.push((429, "The caller's rate limit is spent (see Retry-After)"));
        out.push((503, "The database (or another dependency) is unreachable"));
    }
    if operation.request_body.is_some() {
        out.push((400, "The body is not well-formed (malformed JSON or multipart)"));
        out.push((413, "The body is larger than the server accepts"));
        out.push((415, "The body's content type is not one the operation takes"));
        out.push((422, "The body is well-formed but breaks the schema or its limits"));
    }
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    if parameters.iter().any(|p| p.parameter_in == ParameterIn::Query) {
        out.push((400, "A query parameter is unknown, malformed or out of range"));
    }
    if parameters.iter().any(|p| p.parameter_in == ParameterIn::Path) {
        out.push((400, "A path parameter is malformed (e.g. an id that is not a UUID)"));
        out.push((404, "No such resource in the caller's tenant"));
    }
    out
}
