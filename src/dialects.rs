//! The dialect table: every vendor API the gateway serves, in start-up order.
//!
//! Config checks, start-up, the Swagger UI, `mqgate openapi` and the listener
//! names all iterate [`DIALECTS`]. Adding a dialect is its crate, its typed
//! section in [`Config`] (so `deny_unknown_fields` and the key paths of
//! errors keep working) and one row here.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;

use mqgate_kit::{Dialect, DialectBuildError, DialectConfig, DialectContext};
use utoipa::openapi::OpenApi;

use crate::config::Config;

/// What building a dialect gives.
pub type BuildResult = Result<Arc<dyn Dialect>, DialectBuildError>;

/// One row of the table.
pub struct DialectSpec {
    /// The config section, the listener name, the OpenAPI file name and the
    /// Swagger UI's `/try/<name>` prefix.
    pub name: &'static str,
    /// The dialect's section of the configuration.
    pub section: fn(&Config) -> &dyn DialectConfig,
    /// Moves the dialect's listener (ephemeral ports, restarts on the bound port).
    pub set_listen: fn(&mut Config, SocketAddr),
    /// Builds the dialect from its section.
    pub build: fn(&Config, DialectContext) -> BuildResult,
    /// The OpenAPI document with `servers` pointing at the given URL.
    pub openapi: fn(&str) -> OpenApi,
}

pub static DIALECTS: [DialectSpec; 4] = [
    DialectSpec {
        name: "mica",
        section: |c| &c.mica,
        set_listen: |c, addr| c.mica.listen = addr,
        build: |c, ctx| mqgate_mica::build(&c.mica, ctx),
        openapi: mqgate_mica::openapi,
    },
    DialectSpec {
        name: "nanomq",
        section: |c| &c.nanomq,
        set_listen: |c, addr| c.nanomq.listen = addr,
        build: |c, ctx| mqgate_nanomq::build(&c.nanomq, ctx),
        openapi: mqgate_nanomq::openapi,
    },
    DialectSpec {
        name: "realmq",
        section: |c| &c.realmq,
        set_listen: |c, addr| c.realmq.listen = addr,
        build: |c, ctx| mqgate_realmq::build(&c.realmq, ctx),
        openapi: mqgate_realmq::openapi,
    },
    DialectSpec {
        name: "easemob",
        section: |c| &c.easemob,
        set_listen: |c, addr| c.easemob.listen = addr,
        build: |c, ctx| mqgate_easemob::build(&c.easemob, ctx),
        openapi: mqgate_easemob::openapi,
    },
];

/// The row of the dialect called `name`.
pub fn find(name: &str) -> Option<&'static DialectSpec> {
    DIALECTS.iter().find(|d| d.name == name)
}

// A row is identified by its name (fn pointers do not compare reliably).
impl PartialEq for DialectSpec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for DialectSpec {}

impl Hash for DialectSpec {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl fmt::Debug for DialectSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every dialect section of the configuration has a row, and every row a section.
    #[test]
    fn table_and_config_sections_agree() {
        let gateway_keys = [
            "data_dir", "store", "mqtt", "http", "docs", "records", "cluster",
        ];
        let config = serde_json::to_value(Config::default()).unwrap();
        let sections: Vec<&str> = config
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .filter(|k| !gateway_keys.contains(k))
            .collect();
        let mut rows: Vec<&str> = DIALECTS.iter().map(|d| d.name).collect();
        let mut sections = sections;
        rows.sort_unstable();
        sections.sort_unstable();
        assert_eq!(rows, sections);
        for d in &DIALECTS {
            assert_eq!(
                (d.section)(&Config::default()).listen(),
                serde_json::from_value(config[d.name]["listen"].clone()).unwrap(),
                "{}: the row reads its own section",
                d.name
            );
        }
    }
}
