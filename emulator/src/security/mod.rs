//! Who may call and what they may see: request authentication and role grants (`auth`), the
//! scoped-token signing secret (`token_secret`), RSA key pairs and key files (`key_pair`) and
//! TLS certificates (`tls`). Uses only the base.

pub(crate) mod auth;
pub(crate) mod key_pair;
pub(crate) mod tls;
pub(crate) mod token_secret;
