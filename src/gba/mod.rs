//! GBA (DESIGN.md §2.2-2.5): what the BSF, the NAF and the handset compute and put on the
//! wire. The protocol modules are pure, with no I/O, no clock and no randomness of their own;
//! `bsf` and `zn` are the thin HTTP side around them.
//!
//! - [`digest`]: HTTP Digest (RFC 7616, RFC 2617) headers and computations, as Digest AKA
//!   (RFC 3310) uses them on Ub (TS 24.109 §4, Annex A) and as Ua uses them (TS 24.109 §5,
//!   TS 33.222 §5.3).
//! - [`aka_nonce`]: the Digest AKA nonce base64(RAND ‖ AUTN) and AUTS (RFC 3310 §3.2, §3.4).
//! - [`kdf`]: Ks = CK ‖ IK and Ks_NAF (TS 33.220 §4.5.2, Annex B), NAF_Id with the Ua
//!   security protocol identifiers of Annex H.
//! - [`btid`]: the B-TID, base64(RAND)@BSF host (TS 33.220 §4.5.2).
//! - [`xml`]: the Ub 200 body, BootstrappingInfo (TS 24.109 Annex C).
//!
//! Times and random values (RAND, cnonce, opaque) come in as arguments, so callers decide
//! where they come from and tests are exact.

pub mod aka_nonce;
pub mod bsf;
pub mod btid;
pub mod digest;
pub mod kdf;
pub mod xml;
pub mod zn;

pub use aka_nonce::{aka_nonce, encode_auts, parse_aka_nonce, parse_auts};
pub use btid::{Btid, BtidError};
pub use digest::{
    AKAV1_MD5, AuthenticationInfo, Challenge, Credentials, DigestError, Ha1, MD5, Qop, digest_eq,
    ha1, request_digest, response_auth,
};
pub use kdf::{Ks, KsNaf, NafId, NafIdError, UaProtocolId, ks, ks_naf};
pub use xml::{XmlError, bootstrapping_info_xml, parse_bootstrapping_info};
