//! SQL of the signing-keys aggregate (DESIGN.md §3), shared by SQLite and PostgreSQL like
//! `common.rs`. The partial unique index of migration 0005 allows one active key per alg; an
//! insert that would make a second one does nothing (`ON CONFLICT DO NOTHING`), which is how
//! racing processes agree on one key.

macro_rules! impl_keys_sql {
    ($store:ty, $db:ty, $row:ty) => {
        const _: () = {
            use async_trait::async_trait;
            use sqlx::Row;
            use time::OffsetDateTime;

            use $crate::store::{SigningKeyRow, SigningKeyStore, StoreError, time_from_db};

            const INSERT: &str = "INSERT INTO signing_keys \
                 (kid, alg, private_key_sealed, created_at, retired_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";

            fn key_from_row(row: &$row) -> Result<SigningKeyRow, StoreError> {
                let alg: String = row.try_get("alg")?;
                Ok(SigningKeyRow {
                    kid: row.try_get("kid")?,
                    alg: alg
                        .parse()
                        .map_err(|e| StoreError::Corrupt(format!("signing_keys.alg: {e}")))?,
                    private_key_sealed: row.try_get("private_key_sealed")?,
                    created_at: time_from_db(row.try_get("created_at")?)?,
                    retired_at: row
                        .try_get::<Option<i64>, _>("retired_at")?
                        .map(time_from_db)
                        .transpose()?,
                })
            }

            #[async_trait]
            impl SigningKeyStore for $store {
                async fn insert(&self, row: &SigningKeyRow) -> Result<bool, StoreError> {
                    let done = sqlx::query(INSERT)
                        .bind(&row.kid)
                        .bind(row.alg.as_str())
                        .bind(&row.private_key_sealed)
                        .bind(row.created_at.unix_timestamp())
                        .bind(row.retired_at.map(OffsetDateTime::unix_timestamp))
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn list(&self) -> Result<Vec<SigningKeyRow>, StoreError> {
                    sqlx::query(
                        "SELECT kid, alg, private_key_sealed, created_at, retired_at \
                         FROM signing_keys ORDER BY created_at, kid",
                    )
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(key_from_row)
                    .collect()
                }

                async fn retire(&self, kid: &str, at: OffsetDateTime) -> Result<bool, StoreError> {
                    let done = sqlx::query(
                        "UPDATE signing_keys SET retired_at = $2 \
                         WHERE kid = $1 AND retired_at IS NULL",
                    )
                    .bind(kid)
                    .bind(at.unix_timestamp())
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn rotate(
                    &self,
                    row: &SigningKeyRow,
                    at: OffsetDateTime,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.pool.begin().await?;
                    // PostgreSQL: a concurrent rotation holds the old row's lock until it
                    // commits; then this UPDATE finds the row retired and changes nothing,
                    // and the INSERT below meets the other's new key in the unique index.
                    sqlx::query(
                        "UPDATE signing_keys SET retired_at = $2 \
                         WHERE alg = $1 AND retired_at IS NULL",
                    )
                    .bind(row.alg.as_str())
                    .bind(at.unix_timestamp())
                    .execute(&mut *tx)
                    .await?;
                    let inserted = sqlx::query(INSERT)
                        .bind(&row.kid)
                        .bind(row.alg.as_str())
                        .bind(&row.private_key_sealed)
                        .bind(row.created_at.unix_timestamp())
                        .bind(None::<i64>)
                        .execute(&mut *tx)
                        .await?;
                    if inserted.rows_affected() != 1 {
                        tx.rollback().await?;
                        return Ok(false);
                    }
                    tx.commit().await?;
                    Ok(true)
                }

                async fn sweep(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
                    let done = sqlx::query(
                        "DELETE FROM signing_keys \
                         WHERE retired_at IS NOT NULL AND retired_at < $1",
                    )
                    .bind(before.unix_timestamp())
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected())
                }
            }
        };
    };
}
pub(crate) use impl_keys_sql;
