//! The SMTP test server (PyPI aiosmtpd, `tests/mail/smtp_sink.py`) in its own process, the
//! mails it accepted, and what a test gateway needs to send through it.

use super::{python_with, register_unverified, root, wait_for_mail, Browser, Gateway, Mail};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The SMTP test server; killed when dropped.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let python = python_with("mail-venv", "aiosmtpd==1.4.6");
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(python)
            .arg(root().join("tests/mail/smtp_sink.py"))
            .arg(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("the SMTP server printed {line:?}"));
        SmtpSink { child, port, dir }
    }

    /// Every message the server accepted.
    pub fn mails(&self) -> Vec<Mail> {
        received(self.dir.path())
    }

    /// The `[mail]` section of a gateway sending through this server.
    pub fn config(&self) -> String {
        format!(
            "[mail]\nsmtp_url = \"smtp://127.0.0.1:{}?tls=none\"\nfrom = \"Harbor Health portal <no-reply@harbor.example>\"\n",
            self.port
        )
    }

    /// The mails to `to` whose subject holds `subject`.
    pub fn count(&self, to: &str, subject: &str) -> usize {
        self.mails().iter().filter(|m| m.to() == to && m.subject().contains(subject)).count()
    }

    /// Waits for a mail to `to` whose subject holds `subject`.
    pub async fn wait(&self, to: &str, subject: &str) -> Mail {
        wait_for_mail(|| self.mails(), |m| m.to() == to && m.subject().contains(subject)).await
    }

    /// Registers an account and confirms its address with the link this server got.
    pub async fn register(&self, gw: &Gateway, name: &str, username: &str) -> Browser {
        let b = register_unverified(gw, name, username).await;
        let mail = wait_for_mail(|| self.mails(), |m| m.to() == username && m.verification_link().is_some()).await;
        let link = mail.verification_link().unwrap();
        let (status, html, _) = b.get(&link[link.find("/verify-email").unwrap()..]).await;
        assert_eq!(status, 200, "{html}");
        b
    }
}

fn received(dir: &Path) -> Vec<Mail> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| {
            // A file still being written does not parse yet.
            let v: Value = serde_json::from_str(&std::fs::read_to_string(e.path()).ok()?).ok()?;
            let raw = v["data"].as_str()?.replace("\r\n", "\n").replace('\n', "\r\n");
            let envelope_to =
                v["rcpt_tos"].as_array()?.iter().map(|r| r.as_str().unwrap_or_default().to_string()).collect();
            Some(Mail { raw, envelope_to })
        })
        .collect()
}
