//! Swagger UI "Try it out" in a real headless Chromium, driven over the
//! DevTools protocol: for every dialect one GET and one POST are executed by
//! clicking through the page (expand, Try it out, fill in, Execute) and the
//! answer the page shows is checked.
//!
//! The page is loaded from 127.0.0.2 while every dialect listens on 127.0.0.1
//! only, as when the browser runs on another machine: a document whose server
//! named a dialect's own listener would be cross-origin (or unreachable)
//! there. Skipped, with a message, when no `chromium` is installed
//! (`.ci/run` installs Debian's).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// The page-side helper: finds an operation by method and path, opens it,
/// clicks "Try it out", fills parameters and body, clicks "Execute" and
/// returns what the page shows.
const TRY_OUT_JS: &str = r#"
window.__waitFor = async (check, what, ms = 15000) => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const found = check();
    if (found) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('timed out waiting for ' + what);
};
window.__setValue = (el, value) => {
  const proto = Object.getPrototypeOf(el);
  Object.getOwnPropertyDescriptor(proto, 'value').set.call(el, value);
  el.dispatchEvent(new Event('input', { bubbles: true }));
  el.dispatchEvent(new Event('change', { bubbles: true }));
};
window.__operation = (method, path) =>
  [...document.querySelectorAll('.opblock')].find((b) =>
    b.querySelector('.opblock-summary-method')?.textContent === method &&
    b.querySelector('.opblock-summary-path')?.getAttribute('data-path') === path);
window.__tryOut = async (method, path, params, body) => {
  const block = await __waitFor(() => __operation(method, path), method + ' ' + path);
  if (!block.classList.contains('is-open')) block.querySelector('.opblock-summary-control').click();
  const tryOut = await __waitFor(() => block.querySelector('.try-out__btn'), 'Try it out');
  if (!tryOut.classList.contains('cancel')) tryOut.click();
  for (const [name, value] of Object.entries(params)) {
    const input = await __waitFor(
      () => block.querySelector(`tr[data-param-name="${name}"] input`), 'parameter ' + name);
    __setValue(input, value);
  }
  if (body !== null) {
    const area = await __waitFor(() => block.querySelector('textarea.body-param__text'), 'body');
    __setValue(area, body);
  }
  (await __waitFor(() => block.querySelector('button.execute'), 'Execute')).click();
  const status = await __waitFor(
    () => block.querySelector('.live-responses-table tr.response .response-col_status'), 'an answer');
  return {
    status: status.textContent.trim(),
    url: block.querySelector('.request-url pre')?.textContent ?? '',
    body: block.querySelector('.live-responses-table .response-col_description pre')?.textContent ?? '',
  };
};
window.__selectDocument = async (url) => {
  const select = await __waitFor(() => document.querySelector('.topbar select'), 'the document list');
  if (select.value !== url) __setValue(select, url);
  await __waitFor(() => window.ui.specSelectors.url() === url &&
    window.ui.specSelectors.specJson().get('paths'), 'document ' + url);
};
true
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_it_out_works_for_every_dialect_from_another_host() {
    let Some(chromium) = find_chromium() else {
        println!(
            "SKIPPED: no chromium on PATH (apt-get install chromium); \
             the Swagger UI browser check did not run"
        );
        return;
    };
    let gw = common::start_with(|c| c.docs.listen = SocketAddr::from(([127, 0, 0, 2], 0))).await;
    let docs = gw.gateway.docs_addr().unwrap();
    let started = Instant::now();
    let browser = Browser::launch(&chromium);
    let result = tokio::time::timeout(Duration::from_secs(60), drive(&browser, docs)).await;
    let report = match result {
        Ok(report) => report,
        Err(_) => panic!("the browser check took over 60 s"),
    };
    println!(
        "Swagger UI in {}: {report:#?} in {:?}",
        chromium.display(),
        started.elapsed()
    );
    gw.shutdown().await;
}

/// Every dialect's GET and POST through the page; what the page showed.
async fn drive(browser: &Browser, docs: SocketAddr) -> Vec<String> {
    let mut page = browser.page().await;
    page.navigate(&format!("http://{docs}/swagger-ui/")).await;
    let mut report = Vec::new();
    let base = format!("http://{docs}");

    page.select("/api-docs/mica.json").await;
    page.js("ui.preauthorizeBasic('basic', 'mica', 'mica')")
        .await;
    let stats = page.try_out("GET", "/api/v1/stats", json!({}), None).await;
    stats.expect(200, &format!("{base}/try/mica/api/v1/stats"), "\"code\": 1");
    let publish = json!({"topic": "swagger/try", "clientId": "swagger", "payload": "hi"});
    let sent = page
        .try_out("POST", "/api/v1/mqtt/publish", json!({}), Some(publish))
        .await;
    sent.expect(
        200,
        &format!("{base}/try/mica/api/v1/mqtt/publish"),
        "\"code\": 1",
    );
    report.push(format!(
        "mica: GET stats {}, POST publish {}",
        stats.status, sent.status
    ));

    page.select("/api-docs/nanomq.json").await;
    page.js("ui.preauthorizeBasic('basic', 'admin', 'public')")
        .await;
    let brokers = page
        .try_out("GET", "/api/v4/brokers", json!({}), None)
        .await;
    brokers.expect(
        200,
        &format!("{base}/try/nanomq/api/v4/brokers"),
        "\"code\": 0",
    );
    let publish = json!({"topic": "swagger/try", "payload": "hi", "qos": 0, "clientid": "swagger"});
    let sent = page
        .try_out("POST", "/api/v4/mqtt/publish", json!({}), Some(publish))
        .await;
    sent.expect(
        200,
        &format!("{base}/try/nanomq/api/v4/mqtt/publish"),
        "\"code\": 0",
    );
    report.push(format!(
        "nanomq: GET brokers {}, POST publish {}",
        brokers.status, sent.status
    ));

    page.select("/api-docs/realmq.json").await;
    let login = json!({"username": "root", "password": "123456"});
    let token = page
        .try_out("POST", "/api/v1/auth", json!({}), Some(login))
        .await;
    token.expect(200, &format!("{base}/try/realmq/api/v1/auth"), "token");
    page.js("ui.preauthorizeBasic('basic', 'root', '123456')")
        .await;
    let products = page
        .try_out("GET", "/api/v1/products", json!({}), None)
        .await;
    // the paging parameters come pre-filled from the document's examples
    products.expect(
        200,
        &format!("{base}/try/realmq/api/v1/products?_page=1&_limit=10"),
        "\"code\"",
    );
    report.push(format!(
        "realmq: POST auth {}, GET products {}",
        token.status, products.status
    ));

    page.select("/api-docs/easemob.json").await;
    let credentials = json!({
        "appClientId": "YXA6mQgAtE7eAsEmObApPcLiEn",
        "appClientSecret": "YXA6mQgAtEsEcReT-cHaNgE-Me-NoW1",
    });
    let token = page
        .try_out(
            "POST",
            "/openapi/rm/app/token",
            json!({}),
            Some(credentials),
        )
        .await;
    token.expect(
        200,
        &format!("{base}/try/easemob/openapi/rm/app/token"),
        "access_token",
    );
    let answer: Value = serde_json::from_str(&token.body).expect("the token answer is JSON");
    let access = answer["body"]["access_token"]
        .as_str()
        .expect("a token")
        .to_string();
    page.js(&format!(
        "ui.preauthorizeApiKey('app_token', {})",
        json!(access)
    ))
    .await;
    let clients = page
        .try_out(
            "GET",
            "/openapi/rm/users/appid",
            json!({"pageSize": "10", "currentPage": "1"}),
            None,
        )
        .await;
    clients.expect(
        200,
        &format!("{base}/try/easemob/openapi/rm/users/appid?pageSize=10&currentPage=1"),
        "\"code\": 200",
    );
    report.push(format!(
        "easemob: POST app/token {}, GET users/appid {}",
        token.status, clients.status
    ));
    report
}

fn find_chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A headless Chromium of our own, with a fresh profile; ended on drop.
struct Browser {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch(chromium: &Path) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts");
        // Chromium writes the port it chose into the profile
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|t| t.lines().next()?.trim().parse().ok())
            {
                break port;
            }
            assert!(
                Instant::now() < deadline,
                "chromium opened no DevTools port"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Browser {
            child,
            port,
            _profile: profile,
        }
    }

    async fn page(&self) -> Page {
        let targets: Vec<Value> = reqwest::get(format!("http://127.0.0.1:{}/json/list", self.port))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let url = targets
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_string();
        let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Page { socket, next_id: 0 }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SAFETY: signals our own child by its pid; it then ends its helpers.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One DevTools session on a page.
struct Page {
    socket: Socket,
    next_id: u64,
}

/// What the page showed for one executed operation.
#[derive(Debug)]
struct Shown {
    status: String,
    url: String,
    body: String,
}

impl Shown {
    fn expect(&self, status: u16, url: &str, in_body: &str) {
        assert_eq!(self.status, status.to_string(), "{self:#?}");
        assert_eq!(self.url, url, "the request stays on the page's origin");
        assert!(self.body.contains(in_body), "{in_body} in {self:#?}");
    }
}

impl Page {
    /// A DevTools command and its result (events in between are skipped).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let command = json!({"id": id, "method": method, "params": params});
        self.socket
            .send(Message::text(command.to_string()))
            .await
            .unwrap();
        while let Some(message) = self.socket.next().await {
            let Ok(Message::Text(text)) = message else {
                continue;
            };
            let reply: Value = serde_json::from_str(&text).unwrap();
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
        panic!("the DevTools connection closed during {method}");
    }

    /// Evaluates `expression` in the page, awaiting a promise; its value.
    async fn js(&mut self, expression: &str) -> Value {
        let params = json!({"expression": expression, "awaitPromise": true, "returnByValue": true});
        let result = self.call("Runtime.evaluate", params).await;
        if let Some(e) = result.get("exceptionDetails") {
            panic!("{expression}: {e:#}");
        }
        result["result"]["value"].clone()
    }

    async fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let params = json!({
                "expression": "document.readyState === 'complete' && !!window.ui",
                "returnByValue": true,
            });
            let ready = self.call("Runtime.evaluate", params).await;
            if ready["result"]["value"] == true {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "Swagger UI did not load from {url}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.js(TRY_OUT_JS).await;
    }

    /// Picks a document in Swagger UI's list, as a person would.
    async fn select(&mut self, document: &str) {
        self.js(&format!("__selectDocument({})", json!(document)))
            .await;
    }

    async fn try_out(
        &mut self,
        method: &str,
        path: &str,
        params: Value,
        body: Option<Value>,
    ) -> Shown {
        let body = body.map(|b| b.to_string());
        let expression = format!(
            "__tryOut({}, {}, {}, {})",
            json!(method),
            json!(path),
            params,
            json!(body)
        );
        let shown = self.js(&expression).await;
        Shown {
            status: shown["status"].as_str().unwrap_or_default().to_string(),
            url: shown["url"].as_str().unwrap_or_default().to_string(),
            body: shown["body"].as_str().unwrap_or_default().to_string(),
        }
    }
}
