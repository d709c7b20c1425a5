//! The OpenAPI documents checked in under `openapi/`, generated from the
//! dialects' handlers with the default configuration's addresses.

use crate::config::Config;
use crate::dialects::DIALECTS;
use crate::gateway::server_url;

/// `(file name, pretty JSON)` for every dialect.
pub fn documents() -> Vec<(String, String)> {
    let config = Config::default();
    DIALECTS
        .iter()
        .map(|d| {
            let doc = (d.openapi)(&server_url((d.section)(&config).listen()));
            let mut json = doc.to_pretty_json().expect("OpenAPI serialises");
            json.push('\n');
            (format!("{}.json", d.name), json)
        })
        .collect()
}
