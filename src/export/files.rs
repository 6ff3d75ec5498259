//! Where export and download-job files are stored: one road for Bulk Data parts, prepared
//! whole-record downloads and their scratch space, through the `object_store` crate — a
//! local folder by default (`[export] directory`), S3-compatible storage with
//! `[export] store = "s3://bucket/prefix"` (credentials, endpoint and region from the
//! environment), so replicas need no shared folder. Objects are keyed `{job id}/…`; an
//! object appears only once it is completely written (object_store's put and multipart
//! completion), so a process killed mid-write leaves nothing a reader could mistake for a
//! file. It reads and writes bytes by key, decides nothing about who may read them, and
//! never logs their content.

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::path::Path as Key;
use object_store::{GetOptions, GetRange, GetResult, GetResultPayload, ObjectStore};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("export storage: {0}")]
    Unusable(String),
    #[error("export storage: {0}")]
    Store(#[from] object_store::Error),
    #[error("export files: {0}")]
    Io(#[from] std::io::Error),
}

impl From<FilesError> for std::io::Error {
    fn from(e: FilesError) -> Self {
        match e {
            FilesError::Io(e) => e,
            other => std::io::Error::other(other),
        }
    }
}

/// Checks a `store` URL without connecting: `s3://bucket` or `s3://bucket/prefix`.
pub fn check_url(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL ({e}); use s3://bucket/prefix"))?;
    if parsed.scheme() != "s3" {
        return Err(format!(
            "`{url}`: only s3:// (S3-compatible storage) is supported; leave `store` out to keep files in `directory`"
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{url}` names no bucket; use s3://bucket/prefix"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!("`{url}`: write s3://bucket/prefix without ? or #"));
    }
    Ok(())
}

/// The file storage of export jobs.
#[derive(Clone)]
pub struct Files {
    store: Arc<dyn ObjectStore>,
    /// The folder when files are kept on this machine (a job's folder is removed whole, with
    /// any half-written upload in it).
    local: Option<PathBuf>,
    /// Local space for what is built before it is stored (a zip, fetched documents).
    scratch: PathBuf,
    /// Where files go, for the start-up log (no credentials).
    place: String,
}

/// Part of a served file: a stored object and its length, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub key: String,
    pub bytes: u64,
}

impl Files {
    /// Opens the store `[export]` names: `store` when set, else the folder `directory`
    /// (made when first written to: a folder that cannot be made fails the jobs that need
    /// it, not the start).
    pub fn open(directory: &Path, store: Option<&str>) -> Result<Files, FilesError> {
        let scratch = directory.join(".scratch");
        match store {
            None => {
                let local = std::path::absolute(directory)?;
                let prefix = Key::from_absolute_path(&local)
                    .map_err(|e| FilesError::Unusable(format!("{}: {e}", local.display())))?;
                let fs = object_store::local::LocalFileSystem::new();
                Ok(Files {
                    store: Arc::new(object_store::prefix::PrefixStore::new(fs, prefix)),
                    place: format!("folder {}", local.display()),
                    local: Some(local),
                    scratch,
                })
            }
            Some(url) => {
                check_url(url).map_err(FilesError::Unusable)?;
                let s3 = object_store::aws::AmazonS3Builder::from_env().with_url(url).build()?;
                let prefix = url::Url::parse(url).map(|u| u.path().trim_matches('/').to_string()).unwrap_or_default();
                let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                    Arc::new(s3)
                } else {
                    Arc::new(object_store::prefix::PrefixStore::new(s3, prefix.as_str()))
                };
                Ok(Files { store, local: None, scratch, place: url.to_string() })
            }
        }
    }

    /// Where files go (for the start-up log).
    pub fn place(&self) -> &str {
        &self.place
    }

    /// A new, empty scratch folder for `name` (removed by [`Files::drop_scratch`], or by the
    /// cleanup once its job is gone).
    pub async fn scratch(&self, name: &str) -> std::io::Result<PathBuf> {
        let dir = self.scratch.join(name);
        let _ = tokio::fs::remove_dir_all(&dir).await;
        tokio::fs::create_dir_all(&dir).await?;
        Ok(dir)
    }

    pub async fn drop_scratch(&self, dir: &Path) {
        let _ = tokio::fs::remove_dir_all(dir).await;
    }

    /// A writer for `key`: the object appears when the writer is shut down, never before.
    pub fn writer(&self, key: &str) -> Writer {
        // Parts of 5 MiB (S3's smallest), two in flight: a writer holds at most ~15 MiB.
        let inner =
            BufWriter::with_capacity(self.store.clone(), Key::from(key), 5 * 1024 * 1024).with_max_concurrency(2);
        Writer { inner }
    }

    /// Stores a local file as `key`; its length.
    pub async fn upload(&self, from: &Path, key: &str) -> Result<u64, FilesError> {
        let mut file = tokio::fs::File::open(from).await?;
        let mut w = self.writer(key);
        let n = tokio::io::copy(&mut file, &mut w.inner).await;
        match n {
            Ok(n) => {
                w.finish().await?;
                Ok(n)
            }
            Err(e) => {
                w.abort().await;
                Err(e.into())
            }
        }
    }

    /// The length of `key`; `None` when there is no such object.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, FilesError> {
        match self.store.head(&Key::from(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Every key under `prefix` (`{job}/`), sorted.
    pub async fn keys(&self, prefix: &str) -> Result<Vec<String>, FilesError> {
        let mut keys: Vec<String> =
            self.store.list(Some(&Key::from(prefix))).map_ok(|m| m.location.to_string()).try_collect().await?;
        keys.sort();
        Ok(keys)
    }

    /// Removes objects (one already gone is fine).
    pub async fn remove(&self, keys: &[String]) -> Result<(), FilesError> {
        for key in keys {
            match self.store.delete(&Key::from(key.as_str())).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Removes everything of a job: its objects and its scratch folders.
    pub async fn remove_job(&self, job_id: &str) -> Result<(), FilesError> {
        match &self.local {
            Some(dir) => match tokio::fs::remove_dir_all(dir.join(job_id)).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            },
            None => {
                let keys = self.keys(job_id).await?;
                self.remove(&keys).await?;
            }
        }
        let Ok(mut entries) = tokio::fs::read_dir(&self.scratch).await else { return Ok(()) };
        while let Some(e) = entries.next_entry().await? {
            if e.file_name().to_string_lossy().starts_with(job_id) {
                let _ = tokio::fs::remove_dir_all(e.path()).await;
            }
        }
        Ok(())
    }

    /// The job ids that have objects or scratch folders (for the cleanup of orphans).
    pub async fn job_ids(&self) -> Result<Vec<String>, FilesError> {
        let top = self.store.list_with_delimiter(None).await?;
        let mut ids: Vec<String> = top
            .common_prefixes
            .iter()
            .filter_map(|p| p.parts().next().map(|part| part.as_ref().to_string()))
            .filter(|name| is_job_id(name))
            .collect();
        if let Ok(mut entries) = tokio::fs::read_dir(&self.scratch).await {
            while let Ok(Some(e)) = entries.next_entry().await {
                let name = e.file_name().to_string_lossy().chars().take(32).collect::<String>();
                if is_job_id(&name) {
                    ids.push(name);
                }
            }
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Bytes `range` of the file made of `pieces` end to end, streamed piece by piece.
    pub fn read(&self, pieces: Vec<Piece>, range: Range<u64>) -> BoxStream<'static, std::io::Result<Bytes>> {
        let mut wanted = Vec::new();
        let mut at = 0u64;
        for p in pieces {
            let (start, end) = (at, at + p.bytes);
            at = end;
            let (from, to) = (range.start.max(start), range.end.min(end));
            if from < to {
                wanted.push((p.key, (from - start)..(to - start)));
            }
        }
        let store = self.store.clone();
        stream::iter(wanted)
            .then(move |(key, part)| {
                let store = store.clone();
                async move {
                    let asked = part.end - part.start;
                    let options = GetOptions { range: Some(GetRange::Bounded(part)), ..Default::default() };
                    let got = store.get_opts(&Key::from(key.as_str()), options).await.map_err(std::io::Error::other)?;
                    // A stored piece shorter than recorded fails the download rather than
                    // ending it short.
                    if got.range.end - got.range.start != asked {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!("export file piece {key} is shorter than recorded"),
                        ));
                    }
                    chunks(got).await
                }
            })
            .try_flatten()
            .boxed()
    }
}

/// Bytes read from a local file per chunk sent. object_store's own stream of a local file
/// reads 8 KiB per blocking call, which held downloads under 100 MB/s; 256 KiB chunks (past
/// the allocator's medium sizes) left a 10,000-patient export's four downloads holding
/// about 250 MB, 64 KiB ones about 90 MB at the same speed (the export bench, README).
const READ_CHUNK: usize = 64 * 1024;

/// A read object's bytes as a stream: a local file in [`READ_CHUNK`]s (see [`file_chunks`]),
/// anything else as the store streams it.
async fn chunks(got: GetResult) -> std::io::Result<BoxStream<'static, std::io::Result<Bytes>>> {
    match got.payload {
        GetResultPayload::File(file, _) => Ok(file_chunks(file, got.range)),
        GetResultPayload::Stream(s) => Ok(s.map_err(std::io::Error::other).boxed()),
    }
}

/// Bytes `range` of a local file, one [`READ_CHUNK`] per blocking read. Each chunk's buffer
/// is made here, on the runtime's own threads, filled on a blocking thread and sent as it
/// is: the blocking threads (a dozen or more during parallel downloads) never allocate, so
/// none of them keeps its own allocator pages of freed buffers (with `tokio::fs::File`,
/// each piece's read buffer was made on a blocking thread and freed on another, and a
/// 10,000-patient export's downloads held ~90 MB more than its job did).
fn file_chunks(file: std::fs::File, range: Range<u64>) -> BoxStream<'static, std::io::Result<Bytes>> {
    use std::io::{Read, Seek};
    stream::try_unfold((file, range.start, true), move |(mut file, at, seek)| async move {
        if at >= range.end {
            return Ok(None);
        }
        let want = usize::try_from(range.end - at).unwrap_or(usize::MAX).min(READ_CHUNK);
        let buf = vec![0u8; want];
        let (file, buf) = tokio::task::spawn_blocking(move || {
            let mut buf = buf;
            if seek {
                file.seek(std::io::SeekFrom::Start(at))?;
            }
            file.read_exact(&mut buf)?;
            Ok::<_, std::io::Error>((file, buf))
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(Some((Bytes::from(buf), (file, at + want as u64, false))))
    })
    .boxed()
}

/// A job id: 32 hex digits.
pub fn is_job_id(name: &str) -> bool {
    name.len() == 32 && name.chars().all(|c| c.is_ascii_hexdigit())
}

/// An object being written.
pub struct Writer {
    inner: BufWriter,
}

impl Writer {
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(bytes).await
    }

    /// Completes the object: from now on it can be read.
    pub async fn finish(mut self) -> std::io::Result<()> {
        self.inner.shutdown().await
    }

    /// Drops what was written; the object never appears.
    pub async fn abort(mut self) {
        let _ = self.inner.abort().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_are_checked() {
        assert!(check_url("s3://exports").is_ok());
        assert!(check_url("s3://exports/portico/prod").is_ok());
        for bad in ["exports", "s3://", "gs://bucket/x", "file:///tmp/x", "s3://b/p?x=1"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn files_appear_when_finished_and_read_back_in_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::open(dir.path(), None).unwrap();
        let job = "0123456789abcdef0123456789abcdef";
        let mut w = files.writer(&format!("{job}/0/a/Patient.1.ndjson"));
        w.write(b"0123456789").await.unwrap();
        assert_eq!(files.size(&format!("{job}/0/a/Patient.1.ndjson")).await.unwrap(), None, "not before finish");
        w.finish().await.unwrap();
        let mut w = files.writer(&format!("{job}/1/a/Patient.1.ndjson"));
        w.write(b"abcdef").await.unwrap();
        w.finish().await.unwrap();
        let mut gone = files.writer(&format!("{job}/2/a/Patient.1.ndjson"));
        gone.write(b"never").await.unwrap();
        gone.abort().await;

        let pieces = vec![
            Piece { key: format!("{job}/0/a/Patient.1.ndjson"), bytes: 10 },
            Piece { key: format!("{job}/1/a/Patient.1.ndjson"), bytes: 6 },
        ];
        let read = |r: Range<u64>| {
            let s = files.read(pieces.clone(), r);
            async move { s.map_ok(|b| b.to_vec()).try_concat().await.unwrap() }
        };
        assert_eq!(&read(0..16).await[..], b"0123456789abcdef");
        assert_eq!(&read(8..12).await[..], b"89ab");
        assert_eq!(&read(10..16).await[..], b"abcdef");
        assert_eq!(files.keys(job).await.unwrap().len(), 2, "the aborted object never appeared");

        // A piece longer than a read chunk, read whole and from inside one chunk to inside
        // another: the same bytes, in chunks no larger than READ_CHUNK.
        let long: Vec<u8> = (0..READ_CHUNK * 2 + 1000).map(|i| (i * 7 % 251) as u8).collect();
        let mut w = files.writer(&format!("{job}/3/a/Patient.1.ndjson"));
        w.write(&long).await.unwrap();
        w.finish().await.unwrap();
        let piece = vec![Piece { key: format!("{job}/3/a/Patient.1.ndjson"), bytes: long.len() as u64 }];
        for range in [0..long.len() as u64, 100..(READ_CHUNK as u64 * 2 + 10)] {
            let chunks: Vec<Bytes> = files.read(piece.clone(), range.clone()).try_collect().await.unwrap();
            assert!(chunks.iter().all(|c| c.len() <= READ_CHUNK));
            assert_eq!(chunks.concat(), &long[range.start as usize..range.end as usize]);
        }
        // A piece said to be longer than what is stored fails rather than ending short.
        let wrong = vec![Piece { key: format!("{job}/3/a/Patient.1.ndjson"), bytes: long.len() as u64 + 5 }];
        let read: Result<Vec<Bytes>, _> = files.read(wrong, 0..long.len() as u64 + 5).try_collect().await;
        assert!(read.is_err(), "a short piece is an error, not a short file");
        assert_eq!(files.job_ids().await.unwrap(), vec![job.to_string()]);
        files.remove_job(job).await.unwrap();
        assert!(files.keys(job).await.unwrap().is_empty());
    }
}
