//! HTTP mechanics that more than one dialect needs: vendor Basic auth, paging
//! parameters, request parameters from query or form, JSON bodies, payload
//! encodings, vendor timestamp formats, and sample values for OpenAPI documents.

pub mod basic_auth;
pub mod body;
pub mod openapi;
pub mod paging;
pub mod params;
pub mod payload;
pub mod time;
