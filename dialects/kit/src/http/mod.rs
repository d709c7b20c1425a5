//! HTTP mechanics that more than one dialect needs: vendor Basic auth, paging
//! parameters, request parameters from query or form, JSON bodies, payload
//! encodings, vendor timestamp formats, JSON integers as JSON Schema reads them,
//! URI rewriting, and OpenAPI helpers.

pub mod basic_auth;
pub mod body;
pub mod number;
pub mod openapi;
pub mod paging;
pub mod params;
pub mod payload;
pub mod time;
pub mod uri;
