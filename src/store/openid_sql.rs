//! SQL of the OP's aggregates (login sessions, Ua nonces, OpenID 2.0 associations and
//! nonces, consents, realm policies), shared by SQLite and PostgreSQL like `common.rs`.

macro_rules! impl_openid_sql {
    ($store:ty, $db:ty, $row:ty) => {
        const _: () = {
            use async_trait::async_trait;
            use sqlx::Row;
            use time::OffsetDateTime;

            use $crate::ids::Impi;
            use $crate::store::{
                AssociationRow, ConsentRow, ConsentStore, LoginSessionStore, NonceUse,
                Openid2Store, ProfileStore, RealmPolicyRow, RealmPolicyStore, StoreError,
                UaNonceStore,
                parse_impi, time_from_db,
            };

            #[async_trait]
            impl LoginSessionStore for $store {
                async fn create(
                    &self,
                    id: &str,
                    data: &[u8],
                    expires_at: OffsetDateTime,
                ) -> Result<bool, StoreError> {
                    let done = sqlx::query(
                        "INSERT INTO login_sessions (id, data, expires_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(id)
                    .bind(data)
                    .bind(expires_at.unix_timestamp())
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn save(
                    &self,
                    id: &str,
                    data: &[u8],
                    expires_at: OffsetDateTime,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO login_sessions (id, data, expires_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (id) DO UPDATE SET data = excluded.data, \
                         expires_at = excluded.expires_at",
                    )
                    .bind(id)
                    .bind(data)
                    .bind(expires_at.unix_timestamp())
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn load(
                    &self,
                    id: &str,
                    now: OffsetDateTime,
                ) -> Result<Option<Vec<u8>>, StoreError> {
                    if let Some(hot) = self.hot_reads() {
                        return hot.session_load(id, now).await;
                    }
                    Ok(sqlx::query_scalar($crate::store::hot_sql::SESSION_LOAD)
                    .bind(id)
                    .bind(now.unix_timestamp())
                    .fetch_optional(&self.pool)
                    .await?)
                }

                async fn delete(&self, id: &str) -> Result<(), StoreError> {
                    sqlx::query("DELETE FROM login_sessions WHERE id = $1")
                        .bind(id)
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                }

                async fn sweep(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
                    let done = sqlx::query("DELETE FROM login_sessions WHERE expires_at < $1")
                        .bind(before.unix_timestamp())
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected())
                }
            }

            #[async_trait]
            impl UaNonceStore for $store {
                async fn issue(
                    &self,
                    nonce: &str,
                    expires_at: OffsetDateTime,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO ua_nonces (nonce, max_nc, expires_at) VALUES ($1, 0, $2)",
                    )
                    .bind(nonce)
                    .bind(expires_at.unix_timestamp())
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn use_count(
                    &self,
                    nonce: &str,
                    nc: u32,
                    now: OffsetDateTime,
                ) -> Result<NonceUse, StoreError> {
                    let accepted = sqlx::query(
                        "UPDATE ua_nonces SET max_nc = $2 \
                         WHERE nonce = $1 AND max_nc < $2 AND expires_at >= $3",
                    )
                    .bind(nonce)
                    .bind(i64::from(nc))
                    .bind(now.unix_timestamp())
                    .execute(&self.pool)
                    .await?;
                    if accepted.rows_affected() == 1 {
                        return Ok(NonceUse::Accepted);
                    }
                    let expires: Option<i64> =
                        sqlx::query_scalar("SELECT expires_at FROM ua_nonces WHERE nonce = $1")
                            .bind(nonce)
                            .fetch_optional(&self.pool)
                            .await?;
                    Ok(match expires {
                        None => NonceUse::Unknown,
                        Some(at) if at < now.unix_timestamp() => NonceUse::Expired,
                        Some(_) => NonceUse::Replayed,
                    })
                }

                async fn sweep(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
                    let done = sqlx::query("DELETE FROM ua_nonces WHERE expires_at < $1")
                        .bind(before.unix_timestamp())
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected())
                }
            }

            fn association_from_row(row: &$row) -> Result<AssociationRow, StoreError> {
                Ok(AssociationRow {
                    handle: row.try_get("handle")?,
                    assoc_type: row.try_get("assoc_type")?,
                    secret_sealed: row.try_get("secret_sealed")?,
                    private: row.try_get("private")?,
                    expires_at: time_from_db(row.try_get("expires_at")?)?,
                })
            }

            #[async_trait]
            impl Openid2Store for $store {
                async fn insert_association(&self, row: &AssociationRow) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO openid2_associations \
                         (handle, assoc_type, secret_sealed, private, expires_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&row.handle)
                    .bind(&row.assoc_type)
                    .bind(&row.secret_sealed)
                    .bind(row.private)
                    .bind(row.expires_at.unix_timestamp())
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn association(
                    &self,
                    handle: &str,
                    now: OffsetDateTime,
                ) -> Result<Option<AssociationRow>, StoreError> {
                    sqlx::query(
                        "SELECT handle, assoc_type, secret_sealed, private, expires_at \
                         FROM openid2_associations WHERE handle = $1 AND expires_at > $2",
                    )
                    .bind(handle)
                    .bind(now.unix_timestamp())
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(association_from_row)
                    .transpose()
                }

                async fn remove_association(&self, handle: &str) -> Result<bool, StoreError> {
                    let done = sqlx::query("DELETE FROM openid2_associations WHERE handle = $1")
                        .bind(handle)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn record_nonce(
                    &self,
                    nonce: &str,
                    expires_at: OffsetDateTime,
                ) -> Result<bool, StoreError> {
                    if let Some(hot) = self.hot_writes() {
                        return hot.record_nonce(nonce, expires_at).await;
                    }
                    let done = sqlx::query($crate::store::hot_sql::NONCE_RECORD)
                    .bind(nonce)
                    .bind(expires_at.unix_timestamp())
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn sweep(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
                    let a = sqlx::query("DELETE FROM openid2_associations WHERE expires_at < $1")
                        .bind(before.unix_timestamp())
                        .execute(&self.pool)
                        .await?;
                    let n = sqlx::query("DELETE FROM openid2_nonces WHERE expires_at < $1")
                        .bind(before.unix_timestamp())
                        .execute(&self.pool)
                        .await?;
                    Ok(a.rows_affected() + n.rows_affected())
                }
            }

            fn consent_from_row(row: &$row) -> Result<ConsentRow, StoreError> {
                Ok(ConsentRow {
                    impi: parse_impi(&row.try_get::<String, _>("impi")?)?,
                    relying_party: row.try_get("relying_party")?,
                    shared: row.try_get("shared")?,
                    created_at: time_from_db(row.try_get("created_at")?)?,
                })
            }

            #[async_trait]
            impl ConsentStore for $store {
                async fn get(
                    &self,
                    impi: &Impi,
                    relying_party: &str,
                ) -> Result<Option<ConsentRow>, StoreError> {
                    if let Some(hot) = self.hot_reads() {
                        return hot.consent_get(impi, relying_party).await;
                    }
                    sqlx::query($crate::store::hot_sql::CONSENT_GET)
                    .bind(impi.as_str())
                    .bind(relying_party)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(consent_from_row)
                    .transpose()
                }

                async fn put(&self, row: &ConsentRow) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO consents (impi, relying_party, shared, created_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (impi, relying_party) \
                         DO UPDATE SET shared = excluded.shared, created_at = excluded.created_at",
                    )
                    .bind(row.impi.as_str())
                    .bind(&row.relying_party)
                    .bind(&row.shared)
                    .bind(row.created_at.unix_timestamp())
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn list(&self, impi: &Impi) -> Result<Vec<ConsentRow>, StoreError> {
                    sqlx::query(
                        "SELECT impi, relying_party, shared, created_at FROM consents \
                         WHERE impi = $1 ORDER BY relying_party",
                    )
                    .bind(impi.as_str())
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(consent_from_row)
                    .collect()
                }

                async fn remove(&self, impi: &Impi, relying_party: &str) -> Result<bool, StoreError> {
                    let done =
                        sqlx::query("DELETE FROM consents WHERE impi = $1 AND relying_party = $2")
                            .bind(impi.as_str())
                            .bind(relying_party)
                            .execute(&self.pool)
                            .await?;
                    Ok(done.rows_affected() > 0)
                }
            }

            #[async_trait]
            impl ProfileStore for $store {
                async fn profile(
                    &self,
                    impi: &Impi,
                ) -> Result<$crate::profile::Profile, StoreError> {
                    let rows = sqlx::query(
                        "SELECT field, value FROM subscriber_profiles WHERE impi = $1",
                    )
                    .bind(impi.as_str())
                    .fetch_all(&self.pool)
                    .await?;
                    let mut profile = $crate::profile::Profile::new();
                    for row in &rows {
                        let name: String = row.try_get("field")?;
                        let field = $crate::profile::ProfileField::parse(&name).ok_or_else(|| {
                            StoreError::Corrupt(format!("unknown profile field {name:?}"))
                        })?;
                        profile.insert(field, row.try_get("value")?);
                    }
                    Ok(profile)
                }

                async fn set_profile_field(
                    &self,
                    impi: &Impi,
                    field: $crate::profile::ProfileField,
                    value: Option<&str>,
                ) -> Result<bool, StoreError> {
                    match value {
                        Some(value) => {
                            // Through SELECT so that an unknown subscriber inserts nothing.
                            let done = sqlx::query(
                                "INSERT INTO subscriber_profiles (impi, field, value) \
                                 SELECT impi, $2, $3 FROM subscribers WHERE impi = $1 \
                                 ON CONFLICT (impi, field) DO UPDATE SET value = excluded.value",
                            )
                            .bind(impi.as_str())
                            .bind(field.as_str())
                            .bind(value)
                            .execute(&self.pool)
                            .await?;
                            Ok(done.rows_affected() == 1)
                        }
                        None => {
                            sqlx::query(
                                "DELETE FROM subscriber_profiles WHERE impi = $1 AND field = $2",
                            )
                            .bind(impi.as_str())
                            .bind(field.as_str())
                            .execute(&self.pool)
                            .await?;
                            let exists = sqlx::query("SELECT 1 FROM subscribers WHERE impi = $1")
                                .bind(impi.as_str())
                                .fetch_optional(&self.pool)
                                .await?;
                            Ok(exists.is_some())
                        }
                    }
                }
            }

            fn policy_from_row(row: &$row) -> Result<RealmPolicyRow, StoreError> {
                let policy: String = row.try_get("policy")?;
                Ok(RealmPolicyRow {
                    realm: row.try_get("realm")?,
                    policy: policy.parse().map_err(StoreError::Corrupt)?,
                    stable_identifier: row.try_get("stable_identifier")?,
                    created_at: time_from_db(row.try_get("created_at")?)?,
                })
            }

            #[async_trait]
            impl RealmPolicyStore for $store {
                async fn put(&self, row: &RealmPolicyRow) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO realm_policies (realm, policy, stable_identifier, created_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (realm) DO UPDATE SET \
                         policy = excluded.policy, stable_identifier = excluded.stable_identifier",
                    )
                    .bind(&row.realm)
                    .bind(row.policy.as_str())
                    .bind(row.stable_identifier)
                    .bind(row.created_at.unix_timestamp())
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn get(&self, realm: &str) -> Result<Option<RealmPolicyRow>, StoreError> {
                    sqlx::query(
                        "SELECT realm, policy, stable_identifier, created_at \
                         FROM realm_policies WHERE realm = $1",
                    )
                    .bind(realm)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(policy_from_row)
                    .transpose()
                }

                async fn list(&self) -> Result<Vec<RealmPolicyRow>, StoreError> {
                    sqlx::query(
                        "SELECT realm, policy, stable_identifier, created_at \
                         FROM realm_policies ORDER BY realm",
                    )
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(policy_from_row)
                    .collect()
                }

                async fn remove(&self, realm: &str) -> Result<bool, StoreError> {
                    let done = sqlx::query("DELETE FROM realm_policies WHERE realm = $1")
                        .bind(realm)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() > 0)
                }
            }
        };
    };
}
pub(crate) use impl_openid_sql;
