//! Which free text may be written to the store: none with NUL (PostgreSQL refuses it in a
//! text column, SQLite would keep it) nor any other ASCII control character — a name, a
//! label, an address or a note never means one — except tab and line breaks, which
//! multi-line text (a correction request, a note) may hold. Every surface checks the text it
//! is sent once, where it parses the body (see `api::text`), and refuses it with a 400 that
//! names the field, never the value (it may be PHI); [`super::StoreError::is_bad_text`] is
//! the backstop for what slips past.

/// Whether `c` is refused in stored text: an ASCII control character (U+0000–U+001F and
/// U+007F) other than tab, line feed and carriage return.
pub fn refused(c: char) -> bool {
    c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// Whether `text` may be stored as it is.
pub fn storable(text: &str) -> bool {
    !text.chars().any(refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_and_other_controls_are_refused_but_tab_and_line_breaks_are_kept() {
        for bad in ["a\0b", "\u{1}", "x\u{1b}[31m", "\u{7f}", "\u{1f}"] {
            assert!(!storable(bad), "{bad:?}");
        }
        for good in ["", "Ana María", "line one\r\nline two\tend", "日本語 \u{a0}"] {
            assert!(storable(good), "{good:?}");
        }
    }
}
