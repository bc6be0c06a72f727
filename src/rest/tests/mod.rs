//! Tests of the REST layer against a wiremock account: connecting (discovery, token
//! exchange), request shapes, logging. The retry loop's tests are in `http/`, token refresh
//! and OAuth in `auth/`; the helpers they all use are in `test_support`.

#[allow(unused_imports)]
pub(crate) use super::*;
pub(crate) use crate::test_support::*;

mod connect;
mod hostile;
mod logging;
mod requests;
