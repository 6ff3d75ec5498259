//! The language an account keeps for its pages and mails (set by the language switch while
//! signed in, and at registration from the page it registered on). It stores a code the
//! catalogue has and nothing else; the choice of a request's language is `i18n::negotiate`'s.

use super::accounts::{AccountError, Accounts};
use crate::i18n::Lang;
use sqlx::Row;

impl Accounts {
    /// The account's language, if it chose one.
    pub async fn language(&self, account_id: &str) -> Result<Option<Lang>, AccountError> {
        let row = sqlx::query("SELECT language FROM accounts WHERE id = $1")
            .bind(account_id)
            .fetch_optional(&self.store.pool)
            .await?;
        Ok(row.and_then(|r| r.get::<Option<String>, _>(0)).and_then(|code| Lang::from_code(&code)))
    }

    /// Keeps `lang` as the account's language.
    pub async fn set_language(&self, account_id: &str, lang: Lang) -> Result<(), AccountError> {
        sqlx::query("UPDATE accounts SET language = $1 WHERE id = $2")
            .bind(lang.code())
            .bind(account_id)
            .execute(&self.store.pool)
            .await?;
        Ok(())
    }
}
