//! The OpenAPI links between operations: where the id a response hands out
//! can be used next. A client generator (and a stateful fuzzer) follows
//! them to walk from a created session to its messages, from an upload to
//! the document, from a new key to its revocation.
//!
//! Only ids that are always present are linked: a document's `job_id` may
//! be null, so no link is drawn from it.

use utoipa::openapi::OpenApi;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::link::LinkBuilder;

/// (operation, its status, link name, target operation, `id` taken from).
const LINKS: &[(&str, &str, &str, &str, &str, &str)] = &[
    ("/v1/sessions", "post", "201", "GetSession", "get_session", "$response.body#/id"),
    ("/v1/sessions", "post", "201", "ListMessages", "list_messages", "$response.body#/id"),
    ("/v1/sessions", "post", "201", "AppendMessage", "append_message", "$response.body#/id"),
    ("/v1/sessions", "post", "201", "DeleteSession", "delete_session", "$response.body#/id"),
    ("/v1/sessions/{id}/messages", "post", "201", "ListMessages", "list_messages", "$request.path.id"),
    ("/v1/documents", "post", "202", "GetDocument", "get_document", "$response.body#/documents/0/id"),
    ("/v1/documents", "post", "202", "ReplaceDocument", "replace_document", "$response.body#/documents/0/id"),
    ("/v1/documents", "post", "202", "DeleteDocument", "delete_document", "$response.body#/documents/0/id"),
    ("/v1/documents/{id}", "put", "202", "GetDocument", "get_document", "$request.path.id"),
    ("/v1/keys", "post", "201", "RevokeKey", "revoke_key", "$response.body#/api_key/id"),
];

/// Adds [`LINKS`] to the responses of `openapi`.
pub fn add(openapi: &mut OpenApi) {
    for (path, method, status, name, target, id) in LINKS {
        let Some(item) = openapi.paths.paths.get_mut(*path) else { continue };
        let operation = match *method {
            "post" => item.post.as_mut(),
            "put" => item.put.as_mut(),
            _ => None,
        };
        let Some(operation) = operation else { continue };
        let Some(utoipa::openapi::RefOr::T(response)) = operation.responses.responses.get_mut(*status) else {
            continue;
        };
        // utoipa writes its `operation_id` field under that name, not as
        // OpenAPI's `operationId`, so the key is given as written.
        let operation_id = Extensions::from_iter([("operationId", *target)]);
        let link = LinkBuilder::new().parameter("id", *id).extensions(Some(operation_id)).build();
        response.links.insert((*name).to_string(), link.into());
    }
}
