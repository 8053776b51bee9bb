//! The USIM's state file: SEQ_MS per IND slot survives between runs, as on a real card, so
//! the handset refuses a replayed vector even after a restart.

use std::path::Path;

use crate::aka::UsimState;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("USIM state file {path}: {reason}")]
    Bad { path: String, reason: String },
}

fn bad(path: &Path, reason: impl ToString) -> StateError {
    StateError::Bad {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Reads the state; a missing file is a fresh USIM.
pub fn load(path: &Path) -> Result<UsimState, StateError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let state: UsimState = serde_json::from_str(&text).map_err(|e| bad(path, e))?;
            if state.is_well_formed() {
                Ok(state)
            } else {
                Err(bad(path, "needs 32 SEQ_MS slots"))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(UsimState::default()),
        Err(e) => Err(bad(path, e)),
    }
}

/// Writes the state atomically (a temporary file renamed over the old one).
pub fn save(path: &Path, state: &UsimState) -> Result<(), StateError> {
    let text = serde_json::to_string_pretty(state).map_err(|e| bad(path, e))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| bad(path, e))?;
    std::fs::rename(&tmp, path).map_err(|e| bad(path, e))
}
