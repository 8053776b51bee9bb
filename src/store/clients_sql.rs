//! SQL of the OpenID Connect clients aggregate (migration 0007; DESIGN.md §3), shared by SQLite
//! and PostgreSQL like `common.rs`. Redirect URI lists are JSON arrays of the exact strings in
//! a text column: they are read and written whole, never searched in SQL.

macro_rules! impl_clients_sql {
    ($store:ty, $db:ty, $row:ty) => {
        const _: () = {
            use async_trait::async_trait;
            use sqlx::Row;

            use $crate::ids::ClientId;
            use $crate::store::{ClientStore, OidcClient, StoreError, time_from_db};

            const COLUMNS: &str = "client_id, name, secret_hash, redirect_uris, \
                 post_logout_redirect_uris, id_token_signed_response_alg, subject_type, \
                 sector_host, created_at";

            fn corrupt(column: &str, e: impl std::fmt::Display) -> StoreError {
                StoreError::Corrupt(format!("oidc_clients.{column}: {e}"))
            }

            fn uris_from_db(column: &str, text: &str) -> Result<Vec<String>, StoreError> {
                serde_json::from_str(text).map_err(|e| corrupt(column, e))
            }

            fn uris_to_db(uris: &[String]) -> String {
                // A list of strings always serialises.
                serde_json::to_string(uris).unwrap_or_else(|_| "[]".to_owned())
            }

            fn client_from_row(row: &$row) -> Result<OidcClient, StoreError> {
                let id: String = row.try_get("client_id")?;
                let alg: String = row.try_get("id_token_signed_response_alg")?;
                let subject: String = row.try_get("subject_type")?;
                Ok(OidcClient {
                    client_id: id.parse().map_err(|e| corrupt("client_id", e))?,
                    name: row.try_get("name")?,
                    secret_hash: row.try_get("secret_hash")?,
                    redirect_uris: uris_from_db(
                        "redirect_uris",
                        &row.try_get::<String, _>("redirect_uris")?,
                    )?,
                    post_logout_redirect_uris: uris_from_db(
                        "post_logout_redirect_uris",
                        &row.try_get::<String, _>("post_logout_redirect_uris")?,
                    )?,
                    id_token_alg: alg
                        .parse()
                        .map_err(|e| corrupt("id_token_signed_response_alg", e))?,
                    subject_type: subject.parse().map_err(|e| corrupt("subject_type", e))?,
                    sector_host: row.try_get("sector_host")?,
                    created_at: time_from_db(row.try_get("created_at")?)?,
                })
            }

            #[async_trait]
            impl ClientStore for $store {
                async fn add(&self, client: &OidcClient) -> Result<(), StoreError> {
                    sqlx::query(&format!(
                        "INSERT INTO oidc_clients ({COLUMNS}) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                    ))
                    .bind(client.client_id.as_str())
                    .bind(&client.name)
                    .bind(client.secret_hash.as_deref())
                    .bind(uris_to_db(&client.redirect_uris))
                    .bind(uris_to_db(&client.post_logout_redirect_uris))
                    .bind(client.id_token_alg.as_str())
                    .bind(client.subject_type.as_str())
                    .bind(client.sector_host.as_deref())
                    .bind(client.created_at.unix_timestamp())
                    .execute(&self.pool)
                    .await
                    .map_err(|e| match &e {
                        sqlx::Error::Database(db) if db.is_unique_violation() => {
                            StoreError::Duplicate {
                                what: "client_id",
                                key: client.client_id.to_string(),
                            }
                        }
                        _ => StoreError::Database(e),
                    })?;
                    Ok(())
                }

                async fn get(
                    &self,
                    client_id: &ClientId,
                ) -> Result<Option<OidcClient>, StoreError> {
                    sqlx::query(&format!(
                        "SELECT {COLUMNS} FROM oidc_clients WHERE client_id = $1"
                    ))
                    .bind(client_id.as_str())
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(client_from_row)
                    .transpose()
                }

                async fn list(&self) -> Result<Vec<OidcClient>, StoreError> {
                    sqlx::query(&format!(
                        "SELECT {COLUMNS} FROM oidc_clients ORDER BY created_at, client_id"
                    ))
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(client_from_row)
                    .collect()
                }

                async fn remove(&self, client_id: &ClientId) -> Result<bool, StoreError> {
                    // Its consents go too (the relying party `oidc:<client_id>`), so nothing
                    // is left naming a client that no longer exists.
                    let mut tx = self.pool.begin().await?;
                    sqlx::query("DELETE FROM consents WHERE relying_party = $1")
                        .bind(format!("oidc:{client_id}"))
                        .execute(&mut *tx)
                        .await?;
                    let done = sqlx::query("DELETE FROM oidc_clients WHERE client_id = $1")
                        .bind(client_id.as_str())
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(done.rows_affected() > 0)
                }
            }
        };
    };
}
pub(crate) use impl_clients_sql;
