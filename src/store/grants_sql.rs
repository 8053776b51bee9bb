//! SQL of the OpenID Connect grants aggregate (migrations 0008, 0009), shared by SQLite and
//! PostgreSQL like `common.rs`.
//!
//! Every decision is made by the database, so any number of processes agree:
//! - a code is taken by one `UPDATE … WHERE used_at IS NULL RETURNING`: PostgreSQL re-checks
//!   the condition after a concurrent winner commits, SQLite runs writers one at a time;
//! - a refresh rotation is one transaction that starts with its `UPDATE` of the old token, so
//!   it holds the write lock (SQLite) or the row lock (PostgreSQL) before it reads anything,
//!   and the classification that follows (grace, reuse, revocation) sees the winner's commit.

macro_rules! impl_grants_sql {
    ($store:ty, $db:ty, $row:ty) => {
        const _: () = {
            use async_trait::async_trait;
            use sqlx::Row;
            use time::OffsetDateTime;

            use $crate::ids::{ClientId, Impi};
            use $crate::oidc::grant::{CodeChallenge, GrantId, Scopes, TokenHash};
            use $crate::store::{
                CodeRow, CodeTake, Grant, GrantStore, NewRefreshToken, RefreshTokenRow, Rotation,
                StoreError, parse_impi, time_from_db,
            };

            fn grant_id_from_db(text: &str) -> Result<GrantId, StoreError> {
                text.parse()
                    .map_err(|e| StoreError::Corrupt(format!("grant id: {e}")))
            }

            /// The grant's columns, which `oidc_grants` and `oidc_codes` both have.
            fn grant_from_row(row: &$row, id_column: &str) -> Result<Grant, StoreError> {
                let scope: String = row.try_get("scope")?;
                Ok(Grant {
                    id: grant_id_from_db(&row.try_get::<String, _>(id_column)?)?,
                    client_id: row
                        .try_get::<String, _>("client_id")?
                        .parse()
                        .map_err(|e| StoreError::Corrupt(format!("client_id: {e}")))?,
                    impi: parse_impi(&row.try_get::<String, _>("impi")?)?,
                    scope: Scopes::from_stored(&scope)
                        .map_err(|e| StoreError::Corrupt(format!("scope: {e}")))?,
                    shared: row.try_get("shared")?,
                    auth_time: time_from_db(row.try_get("auth_time")?)?,
                    acr: row.try_get("acr")?,
                    openid2_id: row.try_get("openid2_id")?,
                })
            }

            /// A grant that is not revoked.
            const LIVE_GRANT: &str = "SELECT id, client_id, impi, scope, shared, auth_time, acr, \
                 openid2_id FROM oidc_grants WHERE id = $1 AND revoked_at IS NULL";

            const REFRESH_INSERT: &str = "INSERT INTO oidc_refresh_tokens \
                 (token_hash, grant_id, parent_hash, issued_at, expires_at) \
                 SELECT $1, $2, $3, $4, $5 WHERE EXISTS \
                 (SELECT 1 FROM oidc_grants WHERE id = $2 AND revoked_at IS NULL)";

            #[async_trait]
            impl GrantStore for $store {
                async fn insert_grant(
                    &self,
                    grant: &Grant,
                    code: &CodeRow,
                    created_at: OffsetDateTime,
                    keep_until: OffsetDateTime,
                ) -> Result<(), StoreError> {
                    if let Some(hot) = self.hot_writes() {
                        return hot.insert_grant(grant, code, created_at, keep_until).await;
                    }
                    let scope = grant.scope.to_string();
                    let mut tx = self.pool.begin().await?;
                    sqlx::query($crate::store::hot_sql::GRANT_INSERT)
                        .bind(grant.id.as_str())
                        .bind(grant.client_id.as_str())
                        .bind(grant.impi.as_str())
                        .bind(&scope)
                        .bind(&grant.shared)
                        .bind(grant.auth_time.unix_timestamp())
                        .bind(grant.acr.as_deref())
                        .bind(created_at.unix_timestamp())
                        // Kept at least as long as its code, so a second use is recognised.
                        .bind(keep_until.max(code.expires_at).unix_timestamp())
                        .bind(grant.openid2_id.as_deref())
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query($crate::store::hot_sql::CODE_INSERT)
                        .bind(&code.hash.as_bytes()[..])
                        .bind(grant.id.as_str())
                        .bind(grant.client_id.as_str())
                        .bind(grant.impi.as_str())
                        .bind(&code.redirect_uri)
                        .bind(&scope)
                        .bind(&grant.shared)
                        .bind(code.nonce.as_deref())
                        .bind(code.code_challenge.as_ref().map(CodeChallenge::as_str))
                        .bind(grant.auth_time.unix_timestamp())
                        .bind(grant.acr.as_deref())
                        .bind(code.expires_at.unix_timestamp())
                        .bind(grant.openid2_id.as_deref())
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn take_code(
                    &self,
                    hash: &TokenHash,
                    now: OffsetDateTime,
                ) -> Result<CodeTake, StoreError> {
                    if let Some(hot) = self.hot_writes() {
                        return hot.take_code(hash, now).await;
                    }
                    let taken = sqlx::query($crate::store::hot_sql::CODE_TAKE)
                        .bind(&hash.as_bytes()[..])
                        .bind(now.unix_timestamp())
                        .fetch_optional(&self.pool)
                        .await?
                        .map(|row| -> Result<_, sqlx::Error> {
                            Ok($crate::store::TakenCode {
                                code_hash: row.try_get("code_hash")?,
                                grant_id: row.try_get("grant_id")?,
                                client_id: row.try_get("client_id")?,
                                impi: row.try_get("impi")?,
                                redirect_uri: row.try_get("redirect_uri")?,
                                scope: row.try_get("scope")?,
                                shared: row.try_get("shared")?,
                                nonce: row.try_get("nonce")?,
                                code_challenge: row.try_get("code_challenge")?,
                                auth_time: row.try_get("auth_time")?,
                                acr: row.try_get("acr")?,
                                expires_at: row.try_get("expires_at")?,
                                openid2_id: row.try_get("openid2_id")?,
                            })
                        })
                        .transpose()?;
                    let why = match taken {
                        Some(_) => None,
                        None => sqlx::query($crate::store::hot_sql::CODE_WHY)
                            .bind(&hash.as_bytes()[..])
                            .fetch_optional(&self.pool)
                            .await?
                            .map(|row| -> Result<_, sqlx::Error> {
                                Ok($crate::store::UntakenCode {
                                    grant_id: row.try_get("grant_id")?,
                                    used_at: row.try_get("used_at")?,
                                    revoked_at: row.try_get("revoked_at")?,
                                })
                            })
                            .transpose()?,
                    };
                    $crate::store::code_take_outcome(taken, why)
                }

                async fn revoke_grant(
                    &self,
                    id: &GrantId,
                    at: OffsetDateTime,
                ) -> Result<bool, StoreError> {
                    let done = sqlx::query(
                        "UPDATE oidc_grants SET revoked_at = $2 \
                         WHERE id = $1 AND revoked_at IS NULL",
                    )
                    .bind(id.as_str())
                    .bind(at.unix_timestamp())
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn revoke_grants_of(
                    &self,
                    impi: &Impi,
                    client_id: &ClientId,
                    at: OffsetDateTime,
                ) -> Result<u64, StoreError> {
                    let done = sqlx::query(
                        "UPDATE oidc_grants SET revoked_at = $3 \
                         WHERE impi = $1 AND client_id = $2 AND revoked_at IS NULL",
                    )
                    .bind(impi.as_str())
                    .bind(client_id.as_str())
                    .bind(at.unix_timestamp())
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected())
                }

                async fn is_grant_live(&self, id: &GrantId) -> Result<bool, StoreError> {
                    let found: Option<i32> = sqlx::query_scalar(
                        "SELECT 1 FROM oidc_grants WHERE id = $1 AND revoked_at IS NULL",
                    )
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(found.is_some())
                }

                async fn grant(&self, id: &GrantId) -> Result<Option<Grant>, StoreError> {
                    sqlx::query(LIVE_GRANT)
                        .bind(id.as_str())
                        .fetch_optional(&self.pool)
                        .await?
                        .as_ref()
                        .map(|row| grant_from_row(row, "id"))
                        .transpose()
                }

                async fn grant_of_refresh(
                    &self,
                    hash: &TokenHash,
                ) -> Result<Option<Grant>, StoreError> {
                    sqlx::query(
                        "SELECT g.id, g.client_id, g.impi, g.scope, g.shared, g.auth_time, \
                         g.acr, g.openid2_id FROM oidc_refresh_tokens r \
                         JOIN oidc_grants g ON g.id = r.grant_id \
                         WHERE r.token_hash = $1 AND g.revoked_at IS NULL",
                    )
                    .bind(&hash.as_bytes()[..])
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(|row| grant_from_row(row, "id"))
                    .transpose()
                }

                async fn insert_refresh(&self, row: &RefreshTokenRow) -> Result<bool, StoreError> {
                    let done = sqlx::query(REFRESH_INSERT)
                        .bind(&row.hash.as_bytes()[..])
                        .bind(row.grant_id.as_str())
                        .bind(row.parent.as_ref().map(|p| p.as_bytes().to_vec()))
                        .bind(row.issued_at.unix_timestamp())
                        .bind(row.expires_at.unix_timestamp())
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn rotate_refresh(
                    &self,
                    old: &TokenHash,
                    client_id: &ClientId,
                    new: &NewRefreshToken,
                    now: OffsetDateTime,
                    grace: time::Duration,
                ) -> Result<Rotation, StoreError> {
                    let now_db = now.unix_timestamp();
                    let old_db = &old.as_bytes()[..];
                    let mut tx = self.pool.begin().await?;
                    // The write comes first (see the module docs).
                    let rotated: Option<String> = sqlx::query_scalar(
                        "UPDATE oidc_refresh_tokens SET rotated_at = $2, replaced_by = $3 \
                         WHERE token_hash = $1 AND rotated_at IS NULL AND expires_at > $2 \
                           AND EXISTS (SELECT 1 FROM oidc_grants g \
                                       WHERE g.id = oidc_refresh_tokens.grant_id \
                                         AND g.revoked_at IS NULL AND g.client_id = $4) \
                         RETURNING grant_id",
                    )
                    .bind(old_db)
                    .bind(now_db)
                    .bind(&new.hash.as_bytes()[..])
                    .bind(client_id.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                    let (grant_id, within_grace) = match rotated {
                        Some(id) => (id, false),
                        None => {
                            let why = sqlx::query(
                                "SELECT r.grant_id, r.expires_at, r.rotated_at, \
                                   g.client_id, g.revoked_at \
                                 FROM oidc_refresh_tokens r \
                                 JOIN oidc_grants g ON g.id = r.grant_id \
                                 WHERE r.token_hash = $1",
                            )
                            .bind(old_db)
                            .fetch_optional(&mut *tx)
                            .await?;
                            let Some(row) = why else {
                                tx.rollback().await?;
                                return Ok(Rotation::Unknown);
                            };
                            let grant_id: String = row.try_get("grant_id")?;
                            let owner: String = row.try_get("client_id")?;
                            let revoked_at: Option<i64> = row.try_get("revoked_at")?;
                            let rotated_at: Option<i64> = row.try_get("rotated_at")?;
                            let expires_at: i64 = row.try_get("expires_at")?;
                            if owner != client_id.as_str() {
                                // Not this client's token (RFC 6749 §6): as if unknown,
                                // and nothing changes for its owner.
                                tx.rollback().await?;
                                return Ok(Rotation::Unknown);
                            }
                            let grant_id_typed = grant_id_from_db(&grant_id)?;
                            if revoked_at.is_some() {
                                tx.rollback().await?;
                                return Ok(Rotation::GrantRevoked {
                                    grant_id: grant_id_typed,
                                });
                            }
                            match rotated_at {
                                Some(at) if now_db.saturating_sub(at) > grace.whole_seconds() => {
                                    // Presented again after its successor was issued:
                                    // stolen, or a client that kept a dead token. Revoke
                                    // everything issued from the grant (RFC 9700 §4.14.2).
                                    sqlx::query(
                                        "UPDATE oidc_grants SET revoked_at = $2 \
                                         WHERE id = $1 AND revoked_at IS NULL",
                                    )
                                    .bind(&grant_id)
                                    .bind(now_db)
                                    .execute(&mut *tx)
                                    .await?;
                                    tx.commit().await?;
                                    return Ok(Rotation::Reused {
                                        grant_id: grant_id_typed,
                                    });
                                }
                                // Rotated moments ago: a concurrent refresh (see
                                // `Rotation::ReusedWithinGrace`).
                                Some(_) if expires_at > now_db => (grant_id, true),
                                // Expired, rotated or not; nothing else keeps the UPDATE
                                // from matching a live grant's token of this client.
                                _ => {
                                    tx.rollback().await?;
                                    return Ok(Rotation::Expired);
                                }
                            }
                        }
                    };
                    let Some(grant) = sqlx::query(LIVE_GRANT)
                        .bind(&grant_id)
                        .fetch_optional(&mut *tx)
                        .await?
                    else {
                        tx.rollback().await?;
                        return Ok(Rotation::GrantRevoked {
                            grant_id: grant_id_from_db(&grant_id)?,
                        });
                    };
                    let grant = grant_from_row(&grant, "id")?;
                    let inserted = sqlx::query(REFRESH_INSERT)
                        .bind(&new.hash.as_bytes()[..])
                        .bind(&grant_id)
                        .bind(old_db)
                        .bind(new.issued_at.unix_timestamp())
                        .bind(new.expires_at.unix_timestamp())
                        .execute(&mut *tx)
                        .await?;
                    if inserted.rows_affected() != 1 {
                        tx.rollback().await?;
                        return Ok(Rotation::GrantRevoked { grant_id: grant.id });
                    }
                    tx.commit().await?;
                    Ok(if within_grace {
                        Rotation::ReusedWithinGrace(grant)
                    } else {
                        Rotation::Rotated(grant)
                    })
                }

                async fn sweep(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
                    let before = before.unix_timestamp();
                    let mut tx = self.pool.begin().await?;
                    let tokens =
                        sqlx::query("DELETE FROM oidc_refresh_tokens WHERE expires_at < $1")
                            .bind(before)
                            .execute(&mut *tx)
                            .await?;
                    // A grant goes when it has expired and no refresh token of it is left;
                    // its codes (used or not) go with it, explicitly, not by cascade.
                    const DOOMED: &str = "SELECT g.id FROM oidc_grants g \
                         WHERE g.expires_at < $1 AND NOT EXISTS \
                         (SELECT 1 FROM oidc_refresh_tokens r WHERE r.grant_id = g.id)";
                    let codes = sqlx::query(&format!(
                        "DELETE FROM oidc_codes WHERE grant_id IN ({DOOMED})"
                    ))
                    .bind(before)
                    .execute(&mut *tx)
                    .await?;
                    let grants =
                        sqlx::query(&format!("DELETE FROM oidc_grants WHERE id IN ({DOOMED})"))
                            .bind(before)
                            .execute(&mut *tx)
                            .await?;
                    tx.commit().await?;
                    Ok(tokens.rows_affected() + codes.rows_affected() + grants.rows_affected())
                }
            }
        };
    };
}
pub(crate) use impl_grants_sql;
