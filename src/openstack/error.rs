//! The errors of the OpenStack layer, and error text on one line: an error with its causes,
//! a failed HTTP request in words, the message of an OpenStack error body.

use std::error::Error as StdError;

/// Errors of the cloud settings and of Keystone, each saying what to check.
///
/// Callers turn them into their own layer's error (Cinder's, the bank's); the variants are
/// the decisions they need: fix the settings, fix the credentials, fix the catalog query, or
/// try again later ([`OpenStackError::is_transient`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenStackError {
    /// The settings are missing or wrong (clouds.yaml, `OS_*` variables): fix them.
    #[error("OpenStack settings: {0}")]
    Config(String),
    /// Keystone refused the credentials or the project: check them.
    #[error("authentication: {0}")]
    Auth(String),
    /// The service catalog has no endpoint of the type, interface and region asked for:
    /// check the region and interface, or set an endpoint override.
    #[error("service catalog: {0}")]
    Catalog(String),
    /// Keystone could not be reached, timed out or failed (5xx): retrying may help.
    #[error("cannot reach {url}: {message}")]
    Transport {
        /// Keystone's URL.
        url: String,
        /// What went wrong.
        message: String,
    },
}

impl OpenStackError {
    /// Whether trying again may succeed (Keystone unreachable or failing), as opposed to
    /// settings or credentials that a retry would only present again.
    pub fn is_transient(&self) -> bool {
        matches!(self, OpenStackError::Transport { .. })
    }

    /// What the error says, without the prefix of its variant (for callers that put the
    /// message into their own error's words).
    pub fn message(&self) -> String {
        match self {
            OpenStackError::Config(m) | OpenStackError::Auth(m) | OpenStackError::Catalog(m) => {
                m.clone()
            }
            OpenStackError::Transport { .. } => self.to_string(),
        }
    }
}

/// An error and its causes on one line, `outer: cause: root cause`, leaving out a cause
/// whose text the line already holds (many errors repeat their source in their own message).
///
/// # Arguments
/// * `e` - the outermost error.
pub fn chain(e: &dyn StdError) -> String {
    with_causes(e.to_string(), e.source())
}

/// A failed HTTP request in words: "the request timed out", "cannot connect", or reqwest's
/// own message, followed by the causes (see [`chain`]).
///
/// # Arguments
/// * `e` - the error of sending the request or reading its answer.
pub fn http_error(e: &reqwest::Error) -> String {
    let head = if e.is_timeout() {
        "the request timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        e.to_string()
    };
    with_causes(head, e.source())
}

/// `head`, then every cause from `source` on whose text `head` does not hold yet.
fn with_causes(head: String, mut source: Option<&(dyn StdError + 'static)>) -> String {
    let mut out = head;
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// At most `max_chars` characters of `text`, with `…` where it was cut.
///
/// # Arguments
/// * `text` - any text, e.g. an error body.
/// * `max_chars` - how many characters to keep.
pub fn cut(text: &str, max_chars: usize) -> String {
    let mut out: String = text.chars().take(max_chars).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// The human message of an OpenStack error body.
///
/// Cinder: `{"badRequest": {"code": 400, "message": "..."}}` (also `itemNotFound`,
/// `overLimit`, `computeFault`, ...); Keystone: `{"error": {"message": ...}}`; anything else
/// (an HTML page from a proxy, Swift's plain text) is returned as trimmed text, cut at 500
/// characters; an empty body as `(empty body)`.
///
/// # Arguments
/// * `body` - the body of an error answer.
pub fn body_message(body: &[u8]) -> String {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(serde_json::Value::String(m)) = map.get("message") {
            return m.clone();
        }
        for value in map.values() {
            if let Some(serde_json::Value::String(m)) = value.get("message") {
                return m.clone();
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_string();
    }
    cut(text, 500)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Layer {
        text: &'static str,
        #[source]
        source: Option<Box<Layer>>,
    }

    fn layers(texts: &[&'static str]) -> Layer {
        let mut error = None;
        for text in texts.iter().rev() {
            error = Some(Layer {
                text,
                source: error.map(Box::new),
            });
        }
        error.unwrap_or(Layer {
            text: "",
            source: None,
        })
    }

    #[test]
    fn chains_are_one_line_without_repeated_causes() {
        let e = layers(&[
            "error sending request",
            "client error (Connect)",
            "tcp connect error: Connection refused (os error 111)",
            "Connection refused (os error 111)",
        ]);
        assert_eq!(
            chain(&e),
            "error sending request: client error (Connect): tcp connect error: Connection \
             refused (os error 111)"
        );
        assert_eq!(chain(&layers(&["alone"])), "alone");
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            body_message(br#"{"badRequest": {"code": 400, "message": "Invalid backup: Incremental backups exist for this backup."}}"#),
            "Invalid backup: Incremental backups exist for this backup."
        );
        assert_eq!(
            body_message(br#"{"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}"#),
            "The request you have made requires authentication."
        );
        assert_eq!(
            body_message(b"  <html>502 Bad Gateway</html>\n"),
            "<html>502 Bad Gateway</html>"
        );
        assert_eq!(body_message(b""), "(empty body)");
        assert_eq!(body_message(br#"{"message": "flat"}"#), "flat");
        assert_eq!(
            body_message("é".repeat(600).as_bytes()).chars().count(),
            501
        );
    }

    #[test]
    fn only_transport_errors_are_transient() {
        let down = OpenStackError::Transport {
            url: "http://k:5000/v3".into(),
            message: "Keystone: refused".into(),
        };
        assert!(down.is_transient());
        assert!(!OpenStackError::Auth("no".into()).is_transient());
        assert_eq!(OpenStackError::Catalog("none".into()).message(), "none");
        assert_eq!(
            down.message(),
            "cannot reach http://k:5000/v3: Keystone: refused"
        );
    }
}
