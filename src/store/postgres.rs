//! PostgreSQL implementation of the store traits: several `akaid` processes on one database.
//!
//! Every value processes must agree on lives here; the SQN step is a single
//! `UPDATE … RETURNING`, which PostgreSQL serialises on the row lock.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::{StoreError, impl_clients_sql, impl_common_sql, impl_keys_sql, impl_openid_sql};

use super::impl_grants_sql;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(StoreError::Connect)?;
        Self::connect_with(options).await
    }

    /// Connects with prepared options (tests use this to pin a schema in `search_path`).
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(StoreError::Connect)?;
        Ok(Self { pool })
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// PostgreSQL runs every statement on its pool: it has no single-writer lock to queue on.
    fn hot_writes(&self) -> Option<&dyn super::HotWrites> {
        None
    }

    fn hot_reads(&self) -> Option<&dyn super::HotReads> {
        None
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl_common_sql!(PgStore, sqlx::Postgres, sqlx::postgres::PgRow);
impl_openid_sql!(PgStore, sqlx::Postgres, sqlx::postgres::PgRow);
impl_keys_sql!(PgStore, sqlx::Postgres, sqlx::postgres::PgRow);
impl_grants_sql!(PgStore, sqlx::Postgres, sqlx::postgres::PgRow);
impl_clients_sql!(PgStore, sqlx::Postgres, sqlx::postgres::PgRow);
