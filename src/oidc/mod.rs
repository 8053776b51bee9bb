//! OpenID Connect provider (Core 1.0, Discovery 1.0; DESIGN.md §2.7): JOSE and the signing
//! keys so far.

pub mod jose;
pub mod keys;
