//! One line for the log from an error and every error below it (`e: cause: cause`). It adds
//! nothing of its own: callers decide whether an error may be logged at all (no secrets,
//! no PHI) before they pass it here.

/// `e` and its sources, joined with `": "`.
pub fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn every_cause_is_named_in_order() {
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(super::causes(&e), "outer: inner");
    }
}
