//! A real S3-compatible server for the export storage tests: PyPI `moto[server]` (pinned in
//! tests/s3/requirements.txt, in a virtualenv under target/ that scripts/test installs),
//! started by the test on a free port and killed when dropped; buckets are made and listed
//! through its S3 API.

use std::process::{Child, Command, Stdio};

pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:{port}`.
    pub endpoint: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3Server {
    pub fn start() -> S3Server {
        let mut child = Command::new("bash")
            .arg(super::root().join("tests/s3/run_s3_server.sh"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("the S3 server printed {line:?}"));
        S3Server { child, endpoint: format!("http://127.0.0.1:{port}") }
    }

    /// What a gateway needs in its environment to use this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", "portico-test"),
            ("AWS_SECRET_ACCESS_KEY", "portico-test-secret"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Creates a bucket (S3 CreateBucket).
    pub async fn create_bucket(&self, bucket: &str) {
        let resp = reqwest::Client::new().put(format!("{}/{bucket}", self.endpoint)).send().await.unwrap();
        assert!(resp.status().is_success(), "CreateBucket {bucket}: {}", resp.text().await.unwrap());
    }

    /// Every key under `prefix` in `bucket` (S3 ListObjectsV2, every page), sorted.
    pub async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = format!("{}/{bucket}?list-type=2&prefix={prefix}", self.endpoint);
            if let Some(t) = &token {
                url.push_str(&format!("&continuation-token={}", urlencode(t)));
            }
            let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
            keys.extend(between(&text, "<Key>", "</Key>"));
            token = between(&text, "<NextContinuationToken>", "</NextContinuationToken>").into_iter().next();
            if token.is_none() {
                break;
            }
        }
        keys.sort();
        keys
    }
}

fn between(text: &str, open: &str, close: &str) -> Vec<String> {
    text.split(open).skip(1).filter_map(|s| s.split(close).next()).map(str::to_string).collect()
}

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
