//! Python virtualenvs under target/ for the tests that drive a Python tool (the SMTP server,
//! the share-link decoder): made on first use, the pinned package installed once per test
//! process.

use super::root;
use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, PoisonError};

/// The python of `target/{name}` with `package` (pinned: `name==version`) installed.
pub fn python_with(name: &str, package: &str) -> PathBuf {
    static MADE: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let venv = root().join("target").join(name);
    let python = venv.join("bin/python");
    let mut made = MADE.lock().unwrap_or_else(PoisonError::into_inner);
    let made = made.get_or_insert_with(HashSet::new);
    if made.contains(name) {
        return python;
    }
    if !python.exists() {
        let ok = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().unwrap().success();
        assert!(ok, "python3 -m venv {name} failed");
    }
    let out = Command::new(venv.join("bin/pip")).args(["install", "-q", package]).output().unwrap();
    assert!(out.status.success(), "pip install {package}: {}", String::from_utf8_lossy(&out.stderr));
    made.insert(name.to_string());
    python
}
