//! `config_tags`: the per-config tag registry (spec 02 §2.3). Node tags themselves live in
//! `nodes.tags_json`.

use super::{Db, StoreResult, Tx};
use crate::{on_pool, on_tx};

/// Registry names of a config, sorted.
pub async fn names(db: &Db, config_id: &str) -> StoreResult<Vec<String>> {
    Ok(on_pool!(db, |c| sqlx::query_scalar("SELECT name FROM config_tags WHERE config_id = $1 ORDER BY name")
        .bind(config_id)
        .fetch_all(c)
        .await)?)
}

/// Adds names to the registry; existing ones are left alone.
pub async fn add(tx: &mut Tx, config_id: &str, names: &[String], now: &str) -> StoreResult<()> {
    for name in names {
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO config_tags (config_id, name, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (config_id, name) DO NOTHING"
        )
        .bind(config_id)
        .bind(name)
        .bind(now)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Removes one name from the registry.
pub async fn remove(tx: &mut Tx, config_id: &str, name: &str) -> StoreResult<bool> {
    let r = on_tx!(tx, |c| sqlx::query("DELETE FROM config_tags WHERE config_id = $1 AND name = $2")
        .bind(config_id)
        .bind(name)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    Ok(r > 0)
}
