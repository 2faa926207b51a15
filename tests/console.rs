//! The console (`/console`) as a person uses it: headless Chromium, driven over WebDriver
//! (Debian's `chromium` + `chromium-driver`), against a gateway with the repository's schemas
//! and the real seed workers. Plus a browserless check of the console's own endpoints.
//!
//! The browser test is skipped, saying so, only when Chromium or chromedriver is missing and
//! `CI` is unset; in CI it must run (`.ci/run` installs both). It saves a screenshot to
//! `target/console.png`, and to the path in `CONSOLE_SCREENSHOT` when set (`docs/console.png`
//! was made that way).

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::FutureExt as _;
use intercomm_core::Worker;
use serde_json::{Value, json};

use crate::gateway::TestGateway;
use crate::helpers::{TestWorker, spawn_worker, unique, within};

/// The console's endpoints without a browser: assets are open, `/console/api/routes` says
/// whether a worker is bound (and changes when one starts), the dev token is 404 outside
/// development mode.
#[tokio::test]
async fn console_endpoints_and_worker_binding() {
    let worker_name = unique("cons");
    let method = format!("{worker_name}.echo");
    let gateway = TestGateway::start(&[(&method, &worker_name)]).await;
    let http = gateway.http();

    for (path, content_type) in [
        ("/console", "text/html"),
        ("/console/app.js", "text/javascript"),
        ("/console/app.css", "text/css"),
    ] {
        let response = http
            .get(format!("{}{path}", gateway.url))
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), 200, "{path}");
        let header = response.headers()["content-type"].to_str().expect("ascii");
        assert!(header.starts_with(content_type), "{path}: {header}");
    }

    let bound = |routes: &Value| {
        routes["methods"]
            .as_array()
            .and_then(|methods| methods.iter().find(|m| m["method"] == method.as_str()))
            .map(|m| m["bound"].clone())
            .unwrap_or(Value::Null)
    };
    let routes = routes_of(&gateway).await;
    assert_eq!(bound(&routes), json!(false), "{routes}");
    assert_eq!(routes["dev_mode"], json!(false));

    let _worker = spawn_worker(
        Worker::new(&worker_name).method(method.clone(), intercomm_workers::echo::echo),
    )
    .await;
    within(15, "the console to see the worker bound", async {
        loop {
            let routes = routes_of(&gateway).await;
            if bound(&routes) == json!(true) {
                let entry = routes["methods"]
                    .as_array()
                    .and_then(|m| m.iter().find(|m| m["method"] == method.as_str()))
                    .cloned()
                    .unwrap_or_default();
                assert_eq!(entry["consumers"], json!(1), "{entry}");
                assert_eq!(entry["worker"], json!(worker_name));
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await;

    let response = http
        .post(format!("{}/console/dev-token", gateway.url))
        .json(&json!({"sub": "alice"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(
        response.status(),
        404,
        "no dev tokens outside development mode"
    );
}

async fn routes_of(gateway: &TestGateway) -> Value {
    gateway
        .http()
        .get(format!("{}/console/api/routes", gateway.url))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON")
}

/// Load the console, mint a development token, submit `send_message` through the generated
/// form, see the job turn `succeeded` (pushed over `/v1/events`), then see a validation error
/// next to the field for bad input; the layout also fits a phone.
#[tokio::test]
async fn console_in_a_browser() {
    let Some((chromium, chromedriver)) = browser() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but chromium/chromedriver are missing: `apt-get install chromium chromium-driver`"
        );
        eprintln!(
            "SKIPPED console_in_a_browser: chromium or chromedriver not found \
             (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let _one_at_a_time = crate::seed::SEED.lock().await;

    let database = std::env::temp_dir().join(format!("{}.db", unique("console")));
    let services = crate::helpers::seed_services(&database).await;
    let mut workers: Vec<TestWorker> = Vec::new();
    for name in ["messages", "subscriptions", "users"] {
        let worker = intercomm_workers::build(name, &services).expect("seed worker");
        workers.push(spawn_worker(worker).await);
    }
    // The repository's schemas plus one method no worker serves, to be shown unroutable.
    let lonely = unique("renderer");
    let lonely_method = format!("{lonely}.render_frame");
    let gateway = TestGateway::start_with(&[(&lonely_method, &lonely)], |settings| {
        copy_schemas(&settings.schemas_dir);
        settings.dev_mode = true;
    })
    .await;

    let driver = Driver::start(&chromium, &chromedriver).await;
    let outcome = std::panic::AssertUnwindSafe(drive(&driver, &gateway.url, &lonely_method))
        .catch_unwind()
        .await;
    driver.quit().await;
    drop(gateway);
    drop(workers);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", database.display()));
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn drive(driver: &Driver, base: &str, lonely_method: &str) {
    driver.goto(&format!("{base}/console")).await;
    assert_eq!(driver.title().await, "intercomm console");

    // The routes: every method, the seed ones bound, ours unroutable.
    driver
        .wait_attribute(
            "#routes tr[data-method=\"send_message\"]",
            "data-bound",
            "true",
        )
        .await;
    driver
        .wait_attribute(
            &format!("#routes tr[data-method=\"{lonely_method}\"]"),
            "data-bound",
            "false",
        )
        .await;
    let row = driver
        .text(&format!("#routes tr[data-method=\"{lonely_method}\"]"))
        .await;
    assert!(row.contains("unroutable"), "{row}");
    let summary = driver.text("#routes-summary").await;
    // 12 seed methods and ours; echo and sleep are unroutable too unless another test (or an
    // `intercomm up` on the same broker) runs the echo worker.
    assert!(
        summary.contains("13 methods") && summary.contains("unroutable"),
        "{summary}"
    );

    // Sign in with a development token.
    let alice = unique("alice");
    driver.clear("#dev-sub").await;
    driver.type_into("#dev-sub", &alice).await;
    driver.click("#dev-mint").await;
    driver
        .wait_text("#whoami", &format!("signed in as {alice}"))
        .await;
    driver.wait_text("#stream-state", "events: connected").await;

    // Try a job: the generated form for send_message; the claimer is filled in.
    driver.click("#method option[value=\"send_message\"]").await;
    driver.wait_text("#method-summary", "").await;
    assert_eq!(driver.value("#f-sender").await, alice);
    assert!(driver.text("label[for=\"f-sender\"]").await.contains('*'));
    // To herself, so that she is also pushed the NEW_MESSAGE event.
    driver.type_into("#f-receiver", &alice).await;
    driver
        .type_into("#f-body", "merhaba from the console")
        .await;
    driver.click("#submit").await;
    driver.wait_text("#job-status", "succeeded").await;
    let result = driver.text("#job-result").await;
    assert!(result.contains("message_id"), "{result}");
    let via = driver.text("#job-via").await;
    assert!(
        via.contains("/v1/events"),
        "the final state was pushed: {via}"
    );
    driver.wait_text("#recent", "succeeded").await;
    driver.wait_text("#metrics", "send_message").await;
    driver.wait_text("#events", "NEW_MESSAGE").await;
    // The whole page in one picture.
    let height = driver
        .script("window.scrollTo(0, 0); return document.documentElement.scrollHeight;")
        .await
        .as_u64()
        .unwrap_or(1000);
    driver.resize(1280, (height + 140).min(2400) as u32).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    screenshot(driver, "console.png").await;
    driver.resize(1280, 1000).await;

    // Bad input: the gateway's 422 is shown next to the field.
    driver.clear("#f-receiver").await;
    driver.type_into("#f-receiver", "not a valid name!").await;
    driver.click("#submit").await;
    driver.wait_text("#job-status", "422").await;
    let error = driver.wait_text("#err-receiver", "").await;
    assert!(
        !error.trim().is_empty(),
        "an error next to the receiver field"
    );
    let class = driver.attribute("#f-receiver", "class").await;
    assert!(class.contains("invalid"), "{class}");
    assert_eq!(
        driver.text("#err-body").await,
        "",
        "only the bad field is marked"
    );

    // A select for an enum (user_message's type).
    driver.click("#method option[value=\"user_message\"]").await;
    let options = driver.text("#f-type").await;
    for value in ["FRAME_RENDERED", "RENDER_COMPLETED", "TEST"] {
        assert!(options.contains(value), "{options}");
    }

    // A phone: nothing wider than the screen.
    driver.resize(390, 844).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fits = driver
        .script("return document.documentElement.scrollWidth <= window.innerWidth + 1;")
        .await;
    assert_eq!(fits, json!(true), "the console fits a 390 px wide screen");
    screenshot(driver, "console-phone.png").await;
}

async fn screenshot(driver: &Driver, name: &str) {
    let png = driver.screenshot().await;
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    let _ = std::fs::create_dir_all(&target);
    std::fs::write(target.join(name), &png).expect("write screenshot");
    if name == "console.png"
        && let Some(path) = std::env::var_os("CONSOLE_SCREENSHOT")
    {
        std::fs::write(path, &png).expect("write CONSOLE_SCREENSHOT");
    }
}

fn copy_schemas(to: &Path) {
    let from = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas");
    for entry in std::fs::read_dir(from).expect("schemas/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|ext| ext == "json") {
            std::fs::copy(&path, to.join(path.file_name().expect("name"))).expect("copy");
        }
    }
}

/// Chromium's binary and chromedriver, if installed.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let find = |candidates: &[&str]| -> Option<PathBuf> {
        candidates.iter().find_map(|candidate| {
            let path = Path::new(candidate);
            if path.is_absolute() {
                return path.is_file().then(|| path.to_path_buf());
            }
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(candidate))
                    .find(|path| path.is_file())
            })
        })
    };
    // Debian's /usr/bin/chromium is a wrapper script; the binary proper is under /usr/lib.
    let chromium = find(&["/usr/lib/chromium/chromium", "chromium", "chromium-browser"])?;
    let chromedriver = find(&["chromedriver", "/usr/lib/chromium/chromedriver"])?;
    Some((chromium, chromedriver))
}

/// A minimal WebDriver (W3C) client over reqwest: just what the test needs.
struct Driver {
    http: reqwest::Client,
    session: String,
    process: tokio::process::Child,
    profile: PathBuf,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Driver {
    async fn start(chromium: &Path, chromedriver: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let process = tokio::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let root = format!("http://127.0.0.1:{port}");
        within(20, "chromedriver to be ready", async {
            loop {
                if let Ok(response) = http.get(format!("{root}/status")).send().await
                    && let Ok(status) = response.json::<Value>().await
                    && status["value"]["ready"] == json!(true)
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        let profile = std::env::temp_dir().join(unique("console_chromium_profile"));
        std::fs::create_dir_all(&profile).expect("profile dir");
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1280,1000".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let capabilities = json!({
            "capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": chromium, "args": args},
            }}
        });
        let response: Value = within(60, "a browser session", async {
            http.post(format!("{root}/session"))
                .json(&capabilities)
                .send()
                .await
                .expect("chromedriver answers")
                .json()
                .await
                .expect("JSON")
        })
        .await;
        let id = response["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {response}"));
        Self {
            session: format!("{root}/session/{id}"),
            http,
            process,
            profile,
        }
    }

    /// A WebDriver command's whole answer, error or not.
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(body);
        }
        request
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("JSON")
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let response = self.send(method, path, body.as_ref()).await;
        if response["value"]["error"].is_string() {
            panic!("WebDriver {path}: {}", response["value"]);
        }
        response["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn title(&self) -> String {
        self.command(reqwest::Method::GET, "/title", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The element for `css`, waiting up to 10 s for it to exist.
    async fn find(&self, css: &str) -> String {
        let body = json!({"using": "css selector", "value": css});
        for _ in 0..100 {
            let response = self
                .send(reqwest::Method::POST, "/element", Some(&body))
                .await;
            if let Some(id) = response["value"][ELEMENT].as_str() {
                return id.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no element `{css}` within 10 s");
    }

    async fn on_element(
        &self,
        method: reqwest::Method,
        css: &str,
        what: &str,
        body: Option<Value>,
    ) -> Value {
        let id = self.find(css).await;
        self.command(method, &format!("/element/{id}{what}"), body)
            .await
    }

    async fn click(&self, css: &str) {
        self.on_element(reqwest::Method::POST, css, "/click", Some(json!({})))
            .await;
    }

    async fn clear(&self, css: &str) {
        self.on_element(reqwest::Method::POST, css, "/clear", Some(json!({})))
            .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        self.on_element(
            reqwest::Method::POST,
            css,
            "/value",
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn text(&self, css: &str) -> String {
        let value = self
            .on_element(reqwest::Method::GET, css, "/text", None)
            .await;
        value.as_str().unwrap_or_default().to_owned()
    }

    async fn value(&self, css: &str) -> String {
        let value = self
            .on_element(reqwest::Method::GET, css, "/property/value", None)
            .await;
        value.as_str().unwrap_or_default().to_owned()
    }

    async fn attribute(&self, css: &str, name: &str) -> String {
        let value = self
            .on_element(
                reqwest::Method::GET,
                css,
                &format!("/attribute/{name}"),
                None,
            )
            .await;
        value.as_str().unwrap_or_default().to_owned()
    }

    /// Wait up to 15 s for `css`'s text to contain `expected` (non-empty when `expected` is
    /// empty); returns the text.
    async fn wait_text(&self, css: &str, expected: &str) -> String {
        let mut last = String::new();
        for _ in 0..150 {
            last = self.text(css).await;
            let done = if expected.is_empty() {
                !last.trim().is_empty()
            } else {
                last.contains(expected)
            };
            if done {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("`{css}` did not show `{expected}` within 15 s; it shows `{last}`");
    }

    async fn wait_attribute(&self, css: &str, name: &str, expected: &str) {
        let mut last = String::new();
        for _ in 0..150 {
            last = self.attribute(css, name).await;
            if last == expected {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("`{css}` [{name}] is `{last}`, not `{expected}`, after 15 s");
    }

    async fn script(&self, script: &str) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    async fn resize(&self, width: u32, height: u32) {
        self.command(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    async fn screenshot(&self) -> Vec<u8> {
        let value = self
            .command(reqwest::Method::GET, "/screenshot", None)
            .await;
        BASE64
            .decode(value.as_str().unwrap_or_default())
            .expect("base64 PNG")
    }

    /// End the session (chromedriver closes Chromium), then chromedriver.
    async fn quit(mut self) {
        let _ = self.http.delete(&self.session).send().await;
        let _ = self.process.kill().await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
