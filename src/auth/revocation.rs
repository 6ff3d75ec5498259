//! The revocation generation (`revocation_generation`, one row): a number every path that
//! revokes or ends access raises inside its own transaction, and that the bearer check
//! reads (one primary-key lookup) before trusting anything it cached. A change anywhere —
//! on this gateway or another on the same database — makes every cached token check stale
//! at once, so revocation and termination still take effect on the next request. It never
//! keeps the number itself past a change to the database (on an SQLite file the inline
//! reader keeps it only while the file's `data_version` says no one has committed since,
//! see [`crate::store::inline`]).

use crate::store::{Store, StoreError};

/// Raises the generation inside `tx` (the transaction that revokes or ends access).
pub async fn bump(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE revocation_generation SET generation = generation + 1 WHERE id = 1").execute(&mut **tx).await?;
    Ok(())
}

/// The generation now (read from the store; on an SQLite file on the calling thread, kept
/// only while the file is unchanged, see [`crate::store::inline`]).
pub async fn current(store: &Store) -> Result<i64, StoreError> {
    // `$1` only so that the inline reader's one parameter has a place.
    const SQL: &str = "SELECT generation FROM revocation_generation WHERE id = 1 AND $1 = $1";
    if let Some(inline) = &store.inline {
        match inline.rows(SQL, "", |r| crate::store::inline::integer(r, 0)).map(|g| g.first().copied()) {
            Ok(Some(g)) => return Ok(g),
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "revocation generation inline failed; reading through the pool"),
        }
    }
    let g: i64 =
        sqlx::query_scalar("SELECT generation FROM revocation_generation WHERE id = 1").fetch_one(&store.pool).await?;
    Ok(g)
}
