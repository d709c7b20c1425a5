//! The checked-in OpenAPI documents match the code, and the docs listener serves
//! them in Swagger UI with `servers` relative to the page (`/try/<dialect>`),
//! where the same listener serves each dialect's API.

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
            doc["servers"],
            serde_json::json!([{ "url": format!("/try/{name}") }]),
            "{name}: Try it out stays on the page's origin"
        );
    }
    // a disabled dialect is not mounted either
    let realmq = http
        .get(format!("{docs}/try/realmq/api/v1/products"))
        .send()
        .await
        .unwrap();
    assert_eq!(realmq.status(), 404);
    gw.shutdown().await;
}

/// Through `/try/<dialect>` each dialect answers exactly as on its own port:
/// same status, same body, the path it routes on unchanged (Easemob routes on
/// `OriginalUri` for `/app/{AppID}/...`; NanoMQ on the raw path).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_prefix_answers_as_the_dialects_own_listener() {
    let gw = common::start().await;
    let docs = format!("http://{}", gw.gateway.docs_addr().unwrap());
    let http = reqwest::Client::new();
    let easemob_token = serde_json::json!({
        "appClientId": "YXA6mQgAtE7eAsEmObApPcLiEn",
        "appClientSecret": "YXA6mQgAtEsEcReT-cHaNgE-Me-NoW1",
    });
    // dialect, method, path, JSON body, Basic credentials
    type Case<'a> = (
        &'a str,
        reqwest::Method,
        &'a str,
        Option<serde_json::Value>,
        Option<(&'a str, &'a str)>,
    );
    let cases: Vec<Case> = vec![
        (
            "mica",
            reqwest::Method::GET,
            "/api/v1/stats",
            None,
            Some(("mica", "mica")),
        ),
        ("mica", reqwest::Method::GET, "/api/v1/stats", None, None),
        (
            "nanomq",
            reqwest::Method::GET,
            "/api/v4/brokers",
            None,
            Some(("admin", "public")),
        ),
        (
            "nanomq",
            reqwest::Method::POST,
            "/api/v1",
            Some(serde_json::json!({"req": 2, "seq": 7})),
            Some(("admin", "public")),
        ),
        (
            "realmq",
            reqwest::Method::GET,
            "/api/v1/products",
            None,
            Some(("root", "123456")),
        ),
        (
            "easemob",
            reqwest::Method::POST,
            "/openapi/rm/app/token",
            Some(easemob_token.clone()),
            None,
        ),
        (
            "easemob",
            reqwest::Method::POST,
            "/app/mq7g4e/openapi/rm/app/token",
            Some(easemob_token.clone()),
            None,
        ),
        // another application's path: Easemob's 400 only if the dialect sees `/app/...`
        (
            "easemob",
            reqwest::Method::POST,
            "/app/other1/openapi/rm/app/token",
            Some(easemob_token),
            None,
        ),
    ];
    let mut statuses = Vec::new();
    for (name, method, path, body, auth) in cases {
        let mut answers = Vec::new();
        for base in [gw.base_url(name), format!("{docs}/try/{name}")] {
            let mut request = http.request(method.clone(), format!("{base}{path}"));
            if let Some(body) = &body {
                request = request.json(body);
            }
            if let Some((user, password)) = auth {
                request = request.basic_auth(user, Some(password));
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            answers.push((status, normalise(body)));
        }
        assert_eq!(answers[0], answers[1], "{name} {method} {path}");
        statuses.push(answers[1].0.as_u16());
    }
    // the same answers as each vendor gives: unauthenticated mica 401, the
    // foreign AppID's path 400
    assert_eq!(statuses, [200, 401, 200, 200, 200, 200, 200, 400]);
    gw.shutdown().await;
}

/// Drops what differs between two calls of the same request (tokens, clocks).
fn normalise(mut body: serde_json::Value) -> serde_json::Value {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    let k = key.to_ascii_lowercase();
                    if k.contains("token")
                        || k.contains("time")
                        || k.contains("uptime")
                        || k.ends_with("at")
                    {
                        *value = serde_json::Value::Null;
                    } else {
                        walk(value);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut body);
    body
}
