//! Login sessions: tower-sessions as middleware over our own `login_sessions` aggregate
//! (DESIGN.md §3), so the session table is in our migrations and every process sharing
//! the database sees every session.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use crate::clock::Clock;
use crate::ids::Impi;
use crate::store::LoginSessionStore;

/// The session cookie's name.
pub const COOKIE: &str = "akaid_session";
/// The key under which a session keeps its [`Login`].
const LOGIN: &str = "login";
/// An idle session lives this long.
const IDLE: time::Duration = time::Duration::hours(8);

/// Who is signed in, and how: set by the Ua login, read by both protocols.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    pub impi: Impi,
    pub btid: String,
    #[serde(with = "time::serde::timestamp")]
    pub auth_time: OffsetDateTime,
}

/// The login in `session`, if any.
pub async fn login(session: &Session) -> Option<Login> {
    session.get::<Login>(LOGIN).await.ok().flatten()
}

/// Records a new login under a new session id (no session fixation).
pub async fn start(session: &Session, login: &Login) -> Result<(), tower_sessions::session::Error> {
    session.cycle_id().await?;
    session.insert(LOGIN, login).await
}

/// The middleware: `HttpOnly`, `SameSite=Lax`, `Secure` when the OP is served over HTTPS.
pub fn layer(store: SessionDb, secure: bool) -> SessionManagerLayer<SessionDb> {
    SessionManagerLayer::new(store)
        .with_name(COOKIE)
        .with_http_only(true)
        .with_same_site(tower_sessions::cookie::SameSite::Lax)
        .with_secure(secure)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(IDLE))
}

/// [`SessionStore`] over the `login_sessions` aggregate.
#[derive(Debug, Clone)]
pub struct SessionDb {
    store: Arc<dyn LoginSessionStore>,
    clock: Arc<dyn Clock>,
}

impl SessionDb {
    pub fn new(store: Arc<dyn LoginSessionStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }
}

fn backend(e: crate::store::StoreError) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

fn encode(record: &Record) -> Result<Vec<u8>, session_store::Error> {
    serde_json::to_vec(record).map_err(|e| session_store::Error::Encode(e.to_string()))
}

#[async_trait]
impl SessionStore for SessionDb {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let data = encode(record)?;
        while !self
            .store
            .create(&record.id.to_string(), &data, record.expiry_date)
            .await
            .map_err(backend)?
        {
            // 128 random bits collided: draw again.
            record.id = Id::default();
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.store
            .save(&record.id.to_string(), &encode(record)?, record.expiry_date)
            .await
            .map_err(backend)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Some(data) = self
            .store
            .load(&id.to_string(), self.clock.now())
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| session_store::Error::Decode(e.to_string()))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.store.delete(&id.to_string()).await.map_err(backend)
    }
}
