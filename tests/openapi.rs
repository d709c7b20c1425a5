//! The checked-in OpenAPI documents match the code, and the docs listener serves
//! them in Swagger UI with `servers` pointing at the live dialect listeners.

mod common;

use std::path::Path;

#[test]
fn checked_in_openapi_documents_match_the_code() {
    for (name, json) in mqgate::openapi::documents() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("openapi")
            .join(&name);
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == json,
            "openapi/{name} differs from what the code generates: run `cargo run -- openapi --out openapi`"
        );
        let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3.1"),
            "{name}: OpenAPI 3.1"
        );
        assert!(
            doc["paths"].as_object().is_some_and(|p| !p.is_empty()),
            "{name}: documents its paths"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_lists_every_enabled_dialect() {
    let gw = common::start_with(|c| c.realmq.enabled = false).await;
    let docs = format!("http://{}", gw.gateway.docs_addr().unwrap());
    let http = reqwest::Client::new();
    let ui = http
        .get(format!("{docs}/swagger-ui/"))
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status(), 200);
    assert!(ui.text().await.unwrap().contains("swagger-ui"));
    // Swagger UI's entry list lives in its initializer script.
    let initializer = http
        .get(format!("{docs}/swagger-ui/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let listed: Vec<&str> = ["mica", "nanomq", "realmq", "easemob"]
        .into_iter()
        .filter(|n| initializer.contains(&format!("\"/api-docs/{n}.json\"")))
        .collect();
    assert_eq!(
        listed,
        vec!["mica", "nanomq", "easemob"],
        "one entry per enabled dialect"
    );
    for name in ["mica", "nanomq", "easemob"] {
        let doc: serde_json::Value = http
            .get(format!("{docs}/api-docs/{name}.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            doc["servers"][0]["url"],
            gw.base_url(name),
            "{name}: Try it out reaches the live listener"
        );
    }
    gw.shutdown().await;
}
