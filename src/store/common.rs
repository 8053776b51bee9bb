//! SQL shared by the SQLite and PostgreSQL stores.

/// Implements [`SubscriberStore`] and [`MetaStore`] for a backend whose SQL is the common
/// subset of SQLite and PostgreSQL (`$n` placeholders, `RETURNING`, `ON CONFLICT`). A
/// method whose SQL must differ moves out of here into the backend's own file.
macro_rules! impl_common_sql {
    ($store:ty, $db:ty, $row:ty) => {
        const _: () = {
            use async_trait::async_trait;
            use sqlx::{QueryBuilder, Row};

            use $crate::aka::Sqn;
            use $crate::ids::Impi;
            use $crate::store::{
                DuplicateCheck, INFO_COLUMNS, INSERT_CHUNK, MetaStore, NEXT_SQN_SQL,
                RAISE_SQN_SQL, SealedKeys, StoreError, SubscriberInfo, SubscriberRow,
                SubscriberStore, amf_to_db, row_to_info, sealed_keys, sqn_from_db, sqn_to_db,
                subscriber_duplicate, BootstrapRow, BootstrapStore, ChallengeRow, ChallengeStore,
                NafRow, NafStore, RateStore, parse_impi, rand_from_db, time_from_db, hot_sql,
            };
            use time::OffsetDateTime;

            fn info_from_row(row: &$row) -> Result<SubscriberInfo, StoreError> {
                row_to_info(
                    row.try_get("impi")?,
                    row.try_get("msisdn")?,
                    row.try_get("amf")?,
                    row.try_get("sqn")?,
                    row.try_get("created_at")?,
                )
            }

            fn keys_from_row(row: &$row) -> Result<SealedKeys, StoreError> {
                sealed_keys(
                    row.try_get("k_sealed")?,
                    row.try_get("opc_sealed")?,
                    row.try_get("amf")?,
                    row.try_get("sqn")?,
                )
            }

            fn push_rows(rows: &[SubscriberRow]) -> QueryBuilder<'_, $db> {
                let mut q = QueryBuilder::new(
                    "INSERT INTO subscribers (impi, msisdn, k_sealed, opc_sealed, amf, sqn, created_at) ",
                );
                q.push_values(rows, |mut b, row| {
                    b.push_bind(row.impi.as_str())
                        .push_bind(row.msisdn.as_ref().map(|m| m.as_str()))
                        .push_bind(row.k_sealed.as_slice())
                        .push_bind(row.opc_sealed.as_slice())
                        .push_bind(amf_to_db(row.amf))
                        .push_bind(sqn_to_db(row.sqn))
                        .push_bind(row.created_at.unix_timestamp());
                });
                q
            }

            #[async_trait]
            impl SubscriberStore for $store {
                async fn insert(&self, row: &SubscriberRow) -> Result<(), StoreError> {
                    push_rows(std::slice::from_ref(row))
                        .build()
                        .execute(&self.pool)
                        .await
                        .map_err(|e| subscriber_duplicate(e, row))?;
                    Ok(())
                }

                async fn insert_all(
                    &self,
                    rows: &[SubscriberRow],
                    progress: &(dyn Fn(usize) + Send + Sync),
                ) -> Result<(), StoreError> {
                    let mut tx = self.pool.begin().await?;
                    let mut check = DuplicateCheck::default();
                    for (n, chunk) in rows.chunks(INSERT_CHUNK).enumerate() {
                        let mut q = QueryBuilder::<$db>::new(
                            "SELECT impi, msisdn FROM subscribers WHERE impi IN ",
                        );
                        q.push_tuples(chunk, |mut b, row| {
                            b.push_bind(row.impi.as_str());
                        });
                        q.push(" OR msisdn IN ");
                        q.push_tuples(chunk, |mut b, row| {
                            b.push_bind(row.msisdn.as_ref().map(|m| m.as_str()));
                        });
                        for existing in q.build().fetch_all(&mut *tx).await? {
                            check.existing(existing.try_get("impi")?, existing.try_get("msisdn")?);
                        }
                        check.admit(chunk, n * INSERT_CHUNK)?;
                        push_rows(chunk).build().execute(&mut *tx).await?;
                        progress(n * INSERT_CHUNK + chunk.len());
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn info(&self, impi: &Impi) -> Result<Option<SubscriberInfo>, StoreError> {
                    let sql = format!("SELECT {INFO_COLUMNS} FROM subscribers WHERE impi = $1");
                    sqlx::query(&sql)
                        .bind(impi.as_str())
                        .fetch_optional(&self.pool)
                        .await?
                        .as_ref()
                        .map(info_from_row)
                        .transpose()
                }

                async fn list(
                    &self,
                    after: Option<&Impi>,
                    limit: u32,
                ) -> Result<Vec<SubscriberInfo>, StoreError> {
                    let sql = format!(
                        "SELECT {INFO_COLUMNS} FROM subscribers WHERE impi > $1 ORDER BY impi LIMIT $2"
                    );
                    sqlx::query(&sql)
                        .bind(after.map(Impi::as_str).unwrap_or(""))
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await?
                        .iter()
                        .map(info_from_row)
                        .collect()
                }

                async fn count(&self) -> Result<u64, StoreError> {
                    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM subscribers")
                        .fetch_one(&self.pool)
                        .await?;
                    Ok(n.unsigned_abs())
                }

                async fn remove(&self, impi: &Impi) -> Result<bool, StoreError> {
                    // The subscriber's consents go too: a later subscriber with the same IMPI
                    // starts with none. (The profile goes by its foreign key.)
                    let mut tx = self.pool.begin().await?;
                    sqlx::query("DELETE FROM consents WHERE impi = $1")
                        .bind(impi.as_str())
                        .execute(&mut *tx)
                        .await?;
                    let done = sqlx::query("DELETE FROM subscribers WHERE impi = $1")
                        .bind(impi.as_str())
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn sealed_keys(&self, impi: &Impi) -> Result<Option<SealedKeys>, StoreError> {
                    sqlx::query("SELECT k_sealed, opc_sealed, amf, sqn FROM subscribers WHERE impi = $1")
                        .bind(impi.as_str())
                        .fetch_optional(&self.pool)
                        .await?
                        .as_ref()
                        .map(keys_from_row)
                        .transpose()
                }

                async fn advance_sqn(&self, impi: &Impi) -> Result<Option<SealedKeys>, StoreError> {
                    if let Some(hot) = self.hot_writes() {
                        return hot.advance_sqn(impi).await;
                    }
                    sqlx::query(NEXT_SQN_SQL)
                        .bind(impi.as_str())
                        .fetch_optional(&self.pool)
                        .await?
                        .as_ref()
                        .map(keys_from_row)
                        .transpose()
                }

                async fn raise_sqn(&self, impi: &Impi, at_least: Sqn) -> Result<Option<Sqn>, StoreError> {
                    let stored: Option<i64> = sqlx::query_scalar(RAISE_SQN_SQL)
                        .bind(impi.as_str())
                        .bind(sqn_to_db(at_least))
                        .fetch_optional(&self.pool)
                        .await?;
                    stored.map(sqn_from_db).transpose()
                }
            }

            #[async_trait]
            impl MetaStore for $store {
                async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
                    Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
                        .bind(key)
                        .fetch_optional(&self.pool)
                        .await?)
                }

                async fn get_or_insert(&self, key: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
                    sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                        .bind(key)
                        .bind(value)
                        .execute(&self.pool)
                        .await?;
                    Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
                        .bind(key)
                        .fetch_one(&self.pool)
                        .await?)
                }
            }
            fn challenge_from_row(row: &$row) -> Result<ChallengeRow, StoreError> {
                Ok(ChallengeRow {
                    nonce: row.try_get("nonce")?,
                    impi: row.try_get("impi")?,
                    opaque: row.try_get("opaque")?,
                    secrets_sealed: row.try_get("secrets_sealed")?,
                    expires_at: time_from_db(row.try_get("expires_at")?)?,
                })
            }

            #[async_trait]
            impl ChallengeStore for $store {
                async fn insert(&self, row: &ChallengeRow) -> Result<(), StoreError> {
                    if let Some(hot) = self.hot_writes() {
                        return hot.insert_challenge(row).await;
                    }
                    sqlx::query(hot_sql::CHALLENGE_INSERT)
                        .bind(&row.nonce)
                        .bind(&row.impi)
                        .bind(&row.opaque)
                        .bind(row.secrets_sealed.as_deref())
                        .bind(row.expires_at.unix_timestamp())
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                }

                async fn take(&self, nonce: &str) -> Result<Option<ChallengeRow>, StoreError> {
                    if let Some(hot) = self.hot_writes() {
                        return hot.take_challenge(nonce).await;
                    }
                    sqlx::query(hot_sql::CHALLENGE_TAKE)
                        .bind(nonce)
                        .fetch_optional(&self.pool)
                        .await?
                        .as_ref()
                        .map(challenge_from_row)
                        .transpose()
                }

                async fn sweep(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
                    let done = sqlx::query("DELETE FROM ub_challenges WHERE expires_at < $1")
                        .bind(before.unix_timestamp())
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected())
                }
            }

            fn bootstrap_from_row(row: &$row) -> Result<BootstrapRow, StoreError> {
                Ok(BootstrapRow {
                    btid: row.try_get("btid")?,
                    impi: parse_impi(&row.try_get::<String, _>("impi")?)?,
                    rand: rand_from_db(row.try_get("rand")?)?,
                    ks_sealed: row.try_get("ks_sealed")?,
                    created_at: time_from_db(row.try_get("created_at")?)?,
                    expires_at: time_from_db(row.try_get("expires_at")?)?,
                })
            }

            #[async_trait]
            impl BootstrapStore for $store {
                async fn insert_superseding(&self, row: &BootstrapRow) -> Result<(), StoreError> {
                    if let Some(hot) = self.hot_writes() {
                        return hot.insert_bootstrap(row).await;
                    }
                    sqlx::query(hot_sql::BOOTSTRAP_INSERT)
                        .bind(&row.btid)
                        .bind(row.impi.as_str())
                        .bind(&row.rand[..])
                        .bind(&row.ks_sealed)
                        .bind(row.created_at.unix_timestamp())
                        .bind(row.expires_at.unix_timestamp())
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                }

                async fn get(&self, btid: &str) -> Result<Option<BootstrapRow>, StoreError> {
                    sqlx::query(
                        "SELECT btid, impi, rand, ks_sealed, created_at, expires_at \
                         FROM bootstrap_sessions WHERE btid = $1",
                    )
                    .bind(btid)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(bootstrap_from_row)
                    .transpose()
                }

                async fn for_impi(&self, impi: &Impi) -> Result<Vec<BootstrapRow>, StoreError> {
                    sqlx::query(
                        "SELECT btid, impi, rand, ks_sealed, created_at, expires_at \
                         FROM bootstrap_sessions WHERE impi = $1 ORDER BY created_at DESC",
                    )
                    .bind(impi.as_str())
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(bootstrap_from_row)
                    .collect()
                }

                async fn sweep(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
                    let done = sqlx::query("DELETE FROM bootstrap_sessions WHERE expires_at < $1")
                        .bind(before.unix_timestamp())
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected())
                }
            }

            fn naf_from_row(row: &$row) -> Result<NafRow, StoreError> {
                Ok(NafRow {
                    fqdn: row.try_get("fqdn")?,
                    secret_hash: row.try_get("secret_hash")?,
                    created_at: time_from_db(row.try_get("created_at")?)?,
                })
            }

            #[async_trait]
            impl NafStore for $store {
                async fn insert(&self, row: &NafRow) -> Result<(), StoreError> {
                    sqlx::query("INSERT INTO nafs (fqdn, secret_hash, created_at) VALUES ($1, $2, $3)")
                        .bind(&row.fqdn)
                        .bind(&row.secret_hash)
                        .bind(row.created_at.unix_timestamp())
                        .execute(&self.pool)
                        .await
                        .map_err(|e| match &e {
                            sqlx::Error::Database(db) if db.is_unique_violation() => {
                                StoreError::Duplicate { what: "NAF", key: row.fqdn.clone() }
                            }
                            _ => StoreError::Database(e),
                        })?;
                    Ok(())
                }

                async fn by_secret_hash(&self, hash: &[u8]) -> Result<Option<NafRow>, StoreError> {
                    sqlx::query("SELECT fqdn, secret_hash, created_at FROM nafs WHERE secret_hash = $1")
                        .bind(hash)
                        .fetch_optional(&self.pool)
                        .await?
                        .as_ref()
                        .map(naf_from_row)
                        .transpose()
                }

                async fn list(&self) -> Result<Vec<NafRow>, StoreError> {
                    sqlx::query("SELECT fqdn, secret_hash, created_at FROM nafs ORDER BY fqdn")
                        .fetch_all(&self.pool)
                        .await?
                        .iter()
                        .map(naf_from_row)
                        .collect()
                }

                async fn remove(&self, fqdn: &str) -> Result<bool, StoreError> {
                    let done = sqlx::query("DELETE FROM nafs WHERE fqdn = $1")
                        .bind(fqdn)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() > 0)
                }
            }

            #[async_trait]
            impl RateStore for $store {
                async fn hit(&self, key: &str, window_start: i64) -> Result<u64, StoreError> {
                    if let Some(hot) = self.hot_writes() {
                        return hot.rate_hit(key, window_start).await;
                    }
                    let count: i64 = sqlx::query_scalar(hot_sql::RATE_HIT)
                        .bind(key)
                        .bind(window_start)
                        .fetch_one(&self.pool)
                        .await?;
                    Ok(count.unsigned_abs())
                }

                async fn sweep(&self, before: i64) -> Result<u64, StoreError> {
                    let done = sqlx::query("DELETE FROM rate_counters WHERE window_start < $1")
                        .bind(before)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected())
                }
            }
        };
    };
}
pub(crate) use impl_common_sql;
