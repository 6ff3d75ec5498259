//! The gateway id each source resource of one person's record gets, by (source, type,
//! source id). A merge looks one up for every resource and every reference in it, so a
//! lookup builds no key of its own: it reuses one scratch buffer. Holds ids only.

use std::cell::RefCell;
use std::collections::HashMap;

/// Gateway ids by (source, resource type, the source's own id).
#[derive(Default)]
pub(super) struct GatewayIds {
    by_key: HashMap<String, String>,
    scratch: RefCell<String>,
}

/// Writes the key of (source, type, id) into `buf`: each part after its length, so no two
/// triples share a key whatever characters an id holds.
fn write_key(buf: &mut String, source: &str, resource_type: &str, id: &str) {
    use std::fmt::Write;
    buf.clear();
    for part in [source, resource_type, id] {
        let _ = write!(buf, "{}:", part.len());
        buf.push_str(part);
    }
}

impl GatewayIds {
    pub(super) fn insert(&mut self, source: &str, resource_type: &str, id: &str, gateway_id: String) {
        let mut key = String::with_capacity(source.len() + resource_type.len() + id.len() + 8);
        write_key(&mut key, source, resource_type, id);
        self.by_key.insert(key, gateway_id);
    }

    pub(super) fn get(&self, source: &str, resource_type: &str, id: &str) -> Option<&String> {
        let mut key = self.scratch.borrow_mut();
        write_key(&mut key, source, resource_type, id);
        self.by_key.get(key.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_never_run_into_each_other() {
        let mut ids = GatewayIds::default();
        ids.insert("ehr", "Observation", "1", "a".into());
        ids.insert("eh", "rObservation", "1", "b".into());
        ids.insert("ehr", "Observatio", "n1", "c".into());
        assert_eq!(ids.get("ehr", "Observation", "1").map(String::as_str), Some("a"));
        assert_eq!(ids.get("eh", "rObservation", "1").map(String::as_str), Some("b"));
        assert_eq!(ids.get("ehr", "Observatio", "n1").map(String::as_str), Some("c"));
        assert_eq!(ids.get("ehr", "Observation", "2"), None);
        ids.insert("ehr", "Observation", "1", "d".into());
        assert_eq!(ids.get("ehr", "Observation", "1").map(String::as_str), Some("d"), "a later insert replaces");
    }
}
