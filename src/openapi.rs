//! The OpenAPI documents checked in under `openapi/`, generated from the
//! dialects' handlers with the default configuration's addresses.

use crate::config::Config;
use crate::gateway::server_url;
use mqgate_kit::DialectConfig;

/// `(file name, pretty JSON)` for every dialect.
pub fn documents() -> Vec<(String, String)> {
    let c = Config::default();
    let docs = [
        ("mica", mqgate_mica::openapi(&server_url(c.mica.listen()))),
        (
            "nanomq",
            mqgate_nanomq::openapi(&server_url(c.nanomq.listen())),
        ),
        (
            "realmq",
            mqgate_realmq::openapi(&server_url(c.realmq.listen())),
        ),
        (
            "easemob",
            mqgate_easemob::openapi(&server_url(c.easemob.listen())),
        ),
    ];
    docs.into_iter()
        .map(|(name, doc)| {
            let mut json = doc.to_pretty_json().expect("OpenAPI serialises");
            json.push('\n');
            (format!("{name}.json"), json)
        })
        .collect()
}
