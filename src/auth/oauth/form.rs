//! The parameters of an OAuth request body (`application/x-www-form-urlencoded`): each at
//! most once (RFC 6749 §3.1), empty values as if absent, none over-long. It parses; it never decides.

use super::error::OAuthError;
use std::collections::BTreeMap;

/// The longest parameter value accepted (codes, tokens, verifiers, URIs, scopes) …
const MAX_VALUE: usize = 4096;
/// … and the longest `client_assertion` (a signed JWT).
const MAX_ASSERTION: usize = 16 * 1024;

/// A parsed form body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    params: BTreeMap<String, String>,
}

impl Form {
    /// Parses a form body; a repeated parameter, invalid UTF-8 or a control character (NUL
    /// and the rest but tab and line breaks, `store::text`) is `invalid_request`.
    pub fn parse(body: &[u8]) -> Result<Form, OAuthError> {
        std::str::from_utf8(body).map_err(|_| OAuthError::invalid_request("the request body is not UTF-8"))?;
        let mut params = BTreeMap::new();
        for (k, v) in url::form_urlencoded::parse(body) {
            let max = if k == "client_assertion" { MAX_ASSERTION } else { MAX_VALUE };
            if k.len() > MAX_VALUE || v.len() > max {
                return Err(OAuthError::invalid_request(format!("a parameter is longer than {max} characters")));
            }
            if !crate::store::text::storable(&k) || !crate::store::text::storable(&v) {
                // Named only when the name is plain; never the value (a secret, a code).
                let name = if crate::store::text::storable(&k) { format!("`{k}`") } else { "a parameter name".into() };
                return Err(OAuthError::invalid_request(format!(
                    "parameter {name} holds a control character (such as NUL)"
                )));
            }
            if params.contains_key(k.as_ref()) {
                return Err(OAuthError::invalid_request(format!("parameter `{k}` is repeated")));
            }
            params.insert(k.into_owned(), v.into_owned());
        }
        params.retain(|_, v| !v.is_empty());
        Ok(Form { params })
    }

    /// From pairs (tests and in-process callers).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Form {
        Form { params: pairs.into_iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.into(), v.into())).collect() }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// A required parameter.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| OAuthError::invalid_request(format!("parameter `{name}` is required")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused_and_empty_ones_ignored() {
        let f = Form::parse(b"grant_type=authorization_code&code=a%2Bb+c&scope=").unwrap();
        assert_eq!(f.get("code"), Some("a+b c"));
        assert_eq!(f.get("scope"), None);
        assert!(f.require("scope").is_err());
        assert!(Form::parse(b"code=a&code=b").is_err());
        assert!(Form::parse(&[0x63, 0x3d, 0xff]).is_err());
        assert!(Form::parse(b"state=a%00b").is_err(), "NUL");
        assert!(Form::parse(b"scope=a%01b").is_err(), "a control character");
        assert!(Form::parse(format!("state={}", "s".repeat(4097)).as_bytes()).is_err(), "over-long");
        assert!(Form::parse(format!("client_assertion={}", "a".repeat(5000)).as_bytes()).is_ok());
    }
}
