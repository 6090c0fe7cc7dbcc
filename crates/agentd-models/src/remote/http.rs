//! The HTTP side every remote provider shares: one client per provider,
//! timeouts, retries, and failures worded for the operator.
//!
//! Retries happen here and only here, before a response is accepted: once a
//! streamed answer has started, a retry would hand the consumer its first
//! events twice. A request is retried when it could not be sent (connection
//! refused or reset, no response in time) and on 408, 429 and 5xx, after the
//! server's `Retry-After` or an exponential backoff with jitter.
//!
//! A failure is a sentence saying why (`HTTP 500 Internal Server Error: the
//! GPU is busy (after 3 attempts)`); the provider wraps it with its label,
//! which names the model and base URL. API keys travel only in headers that
//! are marked sensitive, and base URLs are shown without user info or query,
//! so no message or log line carries a secret.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Response, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::RemoteOptions;

/// Error bodies longer than this are cut: the message is for a log line.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// The most characters of an error body quoted when it is not JSON.
const MAX_QUOTED: usize = 300;

/// A provider's base URL, parsed once at construction.
#[derive(Debug, Clone)]
pub(crate) struct BaseUrl(Url);

impl BaseUrl {
    /// Parses an `http` or `https` URL; says what is wrong without echoing it
    /// (it may carry credentials).
    pub(crate) fn parse(base: &str) -> Result<BaseUrl, String> {
        let url = Url::parse(base.trim()).map_err(|e| format!("invalid base URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("the base URL must start with http:// or https://, not {}:", url.scheme()));
        }
        Ok(BaseUrl(url))
    }

    /// `path` appended to the base URL's path, e.g. `http://h/v1` + `embeddings`.
    pub(crate) fn join(&self, path: &str) -> Url {
        let mut url = self.0.clone();
        let joined = format!("{}/{}", url.path().trim_end_matches('/'), path.trim_start_matches('/'));
        url.set_path(&joined);
        url.set_fragment(None);
        url
    }

    /// Whether the base URL's path already ends in `/{segment}`.
    pub(crate) fn ends_with_segment(&self, segment: &str) -> bool {
        self.0.path().trim_end_matches('/').rsplit('/').next() == Some(segment)
    }

    /// The URL as it may be shown: no user info, no query, no fragment.
    pub(crate) fn redacted(&self) -> String {
        let mut url = self.0.clone();
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_query(None);
        url.set_fragment(None);
        url.as_str().trim_end_matches('/').to_owned()
    }
}

/// A header carrying a secret, marked so that it never shows in `Debug` output.
pub(crate) fn secret_header(name: &'static str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| "the API key contains characters that are not allowed in an HTTP header".to_owned())?;
    value.set_sensitive(true);
    Ok((HeaderName::from_static(name), value))
}

/// One remote provider's HTTP client, with what every request to it needs.
#[derive(Debug)]
pub(crate) struct Endpoint {
    client: reqwest::Client,
    /// Names the provider in errors: model, kind and redacted base URL.
    label: Arc<str>,
    headers: HeaderMap,
    options: RemoteOptions,
}

impl Endpoint {
    pub(crate) fn new(label: String, headers: HeaderMap, options: RemoteOptions) -> Result<Endpoint, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .user_agent(concat!("agentd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("could not create the HTTP client: {}", describe(&e)))?;
        Ok(Endpoint { client, label: label.into(), headers, options })
    }

    /// Names the provider: what errors are attributed to.
    pub(crate) fn label(&self) -> &Arc<str> {
        &self.label
    }

    pub(crate) fn options(&self) -> &RemoteOptions {
        &self.options
    }

    /// POSTs `body` to `url` until a successful response arrives, the error
    /// is not worth retrying, or the attempts are spent.
    pub(crate) async fn post_json(&self, url: &Url, body: &Value) -> Result<Response, String> {
        let attempts = self.options.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let Failure { message, retry } = match self.try_once(url, body).await {
                Ok(response) => return Ok(response),
                Err(failure) => failure,
            };
            let counted = |message: String| {
                if attempt > 1 { format!("{message} (after {attempt} attempts)") } else { message }
            };
            let delay = match retry {
                Retry::No => return Err(counted(message)),
                _ if attempt >= attempts => return Err(counted(message)),
                Retry::After(Some(asked)) if asked > self.options.max_backoff => {
                    return Err(counted(format!(
                        "{message}; the server asked to retry after {asked:?}, longer than the {:?} allowed",
                        self.options.max_backoff
                    )));
                }
                Retry::After(Some(asked)) => asked,
                Retry::After(None) => backoff(&self.options, attempt),
            };
            tracing::warn!(provider = %self.label, attempt, ?delay, "{message}; retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// One try.
    async fn try_once(&self, url: &Url, body: &Value) -> Result<Response, Failure> {
        let mut request = self.client.post(url.clone()).headers(self.headers.clone()).json(body);
        if let Some(total) = self.options.total_timeout {
            request = request.timeout(total);
        }
        let wait = self.options.response_timeout;
        let response = match tokio::time::timeout(wait, request.send()).await {
            Err(_) => {
                let message = format!("timed out: no response within {wait:?}");
                return Err(Failure { message, retry: Retry::After(None) });
            }
            Ok(Err(e)) => {
                let retry = e.is_connect() || e.is_timeout() || e.is_request();
                return Err(Failure {
                    message: describe(&e),
                    retry: if retry { Retry::After(None) } else { Retry::No },
                });
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry = status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
            || status.is_server_error();
        let asked = retry_after(response.headers());
        let message = self.error_body(response).await;
        let message = match message {
            Some(message) => format!("HTTP {status}: {message}"),
            None => format!("HTTP {status}"),
        };
        Err(Failure { message, retry: if retry { Retry::After(asked) } else { Retry::No } })
    }

    /// The provider's own explanation in an error response, if it gave one.
    async fn error_body(&self, mut response: Response) -> Option<String> {
        let read = async {
            let mut body = Vec::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                body.extend_from_slice(&chunk);
                if body.len() >= MAX_ERROR_BODY {
                    break;
                }
            }
            body
        };
        let body = tokio::time::timeout(self.options.response_timeout, read).await.ok()?;
        error_message(&body)
    }

    /// Reads a whole JSON response within the response timeout.
    pub(crate) async fn json<T: DeserializeOwned>(&self, response: Response) -> Result<T, String> {
        let wait = self.options.response_timeout;
        let body = match tokio::time::timeout(wait, response.bytes()).await {
            Err(_) => return Err(format!("timed out: the response body did not arrive within {wait:?}")),
            Ok(Err(e)) => return Err(format!("could not read the response: {}", describe(&e))),
            Ok(Ok(body)) => body,
        };
        serde_json::from_slice(&body).map_err(|e| format!("malformed response: {e}"))
    }
}

/// Why one try failed, and whether another is worth it.
struct Failure {
    message: String,
    retry: Retry,
}

enum Retry {
    No,
    /// After the wait the server asked for, if it asked; else after the backoff.
    After(Option<Duration>),
}

/// The wait before retry number `attempt` (1 for the first retry): the base
/// doubled per earlier retry, capped, less a random part of up to half.
fn backoff(options: &RemoteOptions, attempt: u32) -> Duration {
    let doubled = options.backoff_base.saturating_mul(1 << (attempt - 1).min(16));
    let delay = doubled.min(options.max_backoff);
    let jitter = (RandomState::new().hash_one(attempt) % 1000) as f64 / 1000.0;
    delay.mul_f64(1.0 - jitter / 2.0)
}

/// The wait a server asked for: OpenAI's `retry-after-ms`, or `Retry-After`
/// in seconds (an HTTP date is not honoured; the backoff applies instead).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok();
    let valid = |value: f64| value.is_finite() && value >= 0.0;
    if let Some(ms) = number("retry-after-ms").filter(|v| valid(*v)) {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    number(RETRY_AFTER.as_str()).filter(|v| valid(*v) && *v < 1e9).map(Duration::from_secs_f64)
}

/// A short, human explanation in an error body: the `message` of OpenAI's,
/// vLLM's, llama.cpp's and Anthropic's JSON errors, Ollama's `error` string,
/// FastAPI's `detail`, or the start of a body that is not JSON.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    if let Ok(json) = serde_json::from_slice::<Value>(body)
        && let Some(message) = json_error_message(&json)
    {
        return Some(message);
    }
    let text = String::from_utf8_lossy(body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return None;
    }
    match text.char_indices().nth(MAX_QUOTED) {
        Some((cut, _)) => Some(format!("{}…", &text[..cut])),
        None => Some(text),
    }
}

/// The message of a JSON error object, in the shapes providers use.
pub(crate) fn json_error_message(json: &Value) -> Option<String> {
    let text = |v: &Value| v.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let error = json.get("error");
    if let Some(message) = error.and_then(|e| e.get("message")).and_then(text) {
        let kind = error.and_then(|e| e.get("type")).and_then(text);
        return Some(match kind {
            Some(kind) if !message.contains(&kind) => format!("{message} ({kind})"),
            _ => message,
        });
    }
    error
        .and_then(text)
        .or_else(|| json.get("message").and_then(text))
        .or_else(|| json.get("detail").filter(|d| !d.is_null()).map(|d| text(d).unwrap_or_else(|| d.to_string())))
}

/// What went wrong with a request, without the URL (the provider's label
/// already names it): the kind of failure and its innermost cause.
pub(crate) fn describe(error: &reqwest::Error) -> String {
    let mut cause = None;
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        cause = Some(inner.to_string());
        source = inner.source();
    }
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "the response broke off"
    } else {
        "the request failed"
    };
    match cause {
        Some(cause) => format!("{what}: {cause}"),
        None => what.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_are_found_in_every_providers_shape() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"error":{"message":"Incorrect API key","type":"invalid_request_error"}}"#,
                "Incorrect API key (invalid_request_error)",
            ),
            (
                r#"{"object":"error","message":"model not loaded","type":"NotFoundError","code":404}"#,
                "model not loaded",
            ),
            (
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                "Overloaded (overloaded_error)",
            ),
            (r#"{"error":"model 'x' not found"}"#, "model 'x' not found"),
            (r#"{"detail":"Not Found"}"#, "Not Found"),
            ("<html>\n  <body>Bad   Gateway</body></html>", "<html> <body>Bad Gateway</body></html>"),
        ];
        for (body, expected) in cases {
            assert_eq!(error_message(body.as_bytes()).as_deref(), Some(*expected), "{body}");
        }
        assert_eq!(error_message(b"  \n"), None);
        let long = "x".repeat(1000);
        assert_eq!(error_message(long.as_bytes()).unwrap().chars().count(), MAX_QUOTED + 1);
    }

    #[test]
    fn retry_after_is_read_in_seconds_or_milliseconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(150)));
        headers.remove("retry-after-ms");
        headers.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("-1"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn backoff_doubles_stays_under_the_cap_and_keeps_at_least_half() {
        let options = RemoteOptions {
            backoff_base: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..RemoteOptions::default()
        };
        for (attempt, full) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (40, 1000)] {
            let delay = backoff(&options, attempt);
            let full = Duration::from_millis(full);
            assert!(delay <= full && delay >= full / 2, "attempt {attempt}: {delay:?}");
        }
    }

    #[test]
    fn base_urls_are_joined_and_shown_without_secrets() {
        let base = BaseUrl::parse("https://user:hunter2@example.com/v1/?key=sk-123#x").unwrap();
        assert_eq!(
            base.join("chat/completions").as_str(),
            "https://user:hunter2@example.com/v1/chat/completions?key=sk-123"
        );
        assert_eq!(base.redacted(), "https://example.com/v1");
        assert!(base.ends_with_segment("v1"));
        let root = BaseUrl::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(root.join("/v1/messages").as_str(), "http://127.0.0.1:8080/v1/messages");
        assert!(!root.ends_with_segment("v1"));
        assert!(BaseUrl::parse("ftp://example.com").unwrap_err().contains("http"));
        assert!(BaseUrl::parse("not a url").is_err());
    }
}
