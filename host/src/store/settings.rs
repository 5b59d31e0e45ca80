//! `system_settings`: key/value rows.

use super::{Db, StoreResult, Tx};
use crate::{on_pool, on_tx};

/// Reads one setting.
pub async fn get(db: &Db, key: &str) -> StoreResult<Option<String>> {
    let v: Option<(String,)> = on_pool!(db, |c| sqlx::query_as("SELECT value FROM system_settings WHERE key = $1")
        .bind(key)
        .fetch_optional(c)
        .await)?;
    Ok(v.map(|r| r.0))
}

/// Reads one setting inside a transaction.
pub async fn get_tx(tx: &mut Tx, key: &str) -> StoreResult<Option<String>> {
    let v: Option<(String,)> = on_tx!(tx, |c| sqlx::query_as("SELECT value FROM system_settings WHERE key = $1")
        .bind(key)
        .fetch_optional(c)
        .await)?;
    Ok(v.map(|r| r.0))
}

/// Reads several settings at once.
pub async fn get_many(db: &Db, keys: &[&str]) -> StoreResult<Vec<(String, String)>> {
    let rows: Vec<(String, String)> = on_pool!(db, |c| sqlx::query_as("SELECT key, value FROM system_settings")
        .fetch_all(c)
        .await)?;
    Ok(rows.into_iter().filter(|(k, _)| keys.contains(&k.as_str())).collect())
}

/// Inserts or replaces one setting.
pub async fn set(tx: &mut Tx, key: &str, value: &str) -> StoreResult<()> {
    let now = crate::util::now_iso();
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO system_settings (key, value, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
    )
    .bind(key)
    .bind(value)
    .bind(&now)
    .execute(c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Deletes settings; returns how many rows went.
pub async fn delete(tx: &mut Tx, keys: &[&str]) -> StoreResult<u64> {
    let mut n = 0;
    for key in keys {
        n += on_tx!(tx, |c| sqlx::query("DELETE FROM system_settings WHERE key = $1")
            .bind(*key)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(n)
}
