//! The revocation generation (`revocation_generation`, one row): a number every path that
//! revokes or ends access raises inside its own transaction, and that the bearer check
//! reads (one primary-key lookup) before trusting anything it cached. A change anywhere —
//! on this gateway or another on the same database — makes every cached token check stale
//! at once, so revocation and termination still take effect on the next request. It never
//! caches the number itself.

use crate::store::StoreError;

/// Raises the generation inside `tx` (the transaction that revokes or ends access).
pub async fn bump(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE revocation_generation SET generation = generation + 1 WHERE id = 1").execute(&mut **tx).await?;
    Ok(())
}

/// The generation now (read from the store, never from memory).
pub async fn current(pool: &sqlx::AnyPool) -> Result<i64, StoreError> {
    let g: i64 =
        sqlx::query_scalar("SELECT generation FROM revocation_generation WHERE id = 1").fetch_one(pool).await?;
    Ok(g)
}
