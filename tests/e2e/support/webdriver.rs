//! A W3C WebDriver client for the browser tests: a headless Chromium driven through its own
//! `chromedriver`, over the plain HTTP/1.1 of [`super::http`], so that the tests need no
//! WebDriver crate. Tests address elements by what a user sees (a label, a button's caption, a
//! link's text), compared exactly: the portal's Turkish labels tell `ı` from `i`.
//!
//! `NESCA_CHROMEDRIVER` and `NESCA_CHROMIUM` name other binaries than Debian's
//! (`scripts/test.sh` installs those).

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use super::http::{read_response, request_head, HttpResponse, HTTP_LIMIT};
use super::{free_port, unb64, wait_for};

/// The key under which WebDriver hands over an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Longest chromedriver may take to answer `/status` as ready.
const START_LIMIT: Duration = Duration::from_secs(20);

/// Most of a page's source a failed find quotes.
const SOURCE_QUOTE: usize = 4000;

/// A Chromium session; dropping it quits the browser and stops chromedriver.
pub(crate) struct Browser {
    /// chromedriver's `127.0.0.1:PORT`.
    addr: String,
    session: String,
    driver: Child,
    /// Holds chromedriver's log, quoted when it fails to start.
    log_dir: tempfile::TempDir,
}

/// An element of the current page, by its WebDriver reference.
pub(crate) struct Element<'b> {
    browser: &'b Browser,
    id: String,
}

/// A WebDriver error answer, or a transport failure (`error` empty).
struct Failure {
    error: String,
    message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.error.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.error, self.message)
        }
    }
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session whose downloads go
    /// to `download_dir` without asking (PDFs too, instead of the viewer).
    #[track_caller]
    pub(crate) fn start(download_dir: &Path) -> Browser {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let log_dir = tempfile::tempdir().expect("a directory for chromedriver's log");
        let log = log_dir.path().join("chromedriver.log");
        let program = chromedriver();
        let driver = Command::new(&program)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {program} (scripts/test.sh installs chromium-driver): {e}")
            });
        let mut browser = Browser {
            addr,
            session: String::new(),
            driver,
            log_dir,
        };
        wait_for(
            &format!("{program} ready on {}", browser.addr),
            START_LIMIT,
            Duration::from_millis(100),
            || {
                if let Ok(Some(status)) = browser.driver.try_wait() {
                    panic!("{program} exited with {status}{}", browser.log_tail());
                }
                let answer = exchange(&browser.addr, "GET", "/status", None)
                    .and_then(|r| answer_value(&r))
                    .map_err(|f| f.to_string())?;
                match answer["ready"].as_bool() {
                    Some(true) => Ok(()),
                    _ => Err(format!("not ready: {answer}")),
                }
            },
        );
        let mut options = json!({
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--window-size=1280,1000",
                "--lang=tr-TR",
            ],
            "prefs": {
                "download.default_directory": download_dir.to_str().expect("a UTF-8 path"),
                "download.prompt_for_download": false,
                "plugins.always_open_pdf_externally": true,
            },
        });
        // Without a binary chromedriver looks for a Chrome of its own in the usual places.
        if let Some(binary) = chromium() {
            options["binary"] = json!(binary);
        }
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "timeouts": { "implicit": 0, "pageLoad": 30_000, "script": 30_000 },
            "goog:chromeOptions": options,
        }}});
        let created = exchange(&browser.addr, "POST", "/session", Some(&capabilities))
            .and_then(|r| answer_value(&r))
            .unwrap_or_else(|f| panic!("new WebDriver session: {f}{}", browser.log_tail()));
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("new WebDriver session: no sessionId in {created}"))
            .to_string();
        browser
    }

    /// Opens `url` and waits until it has loaded.
    #[track_caller]
    pub(crate) fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    #[track_caller]
    pub(crate) fn current_url(&self) -> String {
        string(self.call("GET", "/url", None), "the current URL")
    }

    #[track_caller]
    pub(crate) fn page_source(&self) -> String {
        string(self.call("GET", "/source", None), "the page source")
    }

    /// The page's text as rendered (`innerText`): hidden elements left out, CSS applied.
    #[track_caller]
    pub(crate) fn body_text(&self) -> String {
        string(
            self.execute(
                "return document.body ? document.body.innerText : '';",
                json!([]),
            ),
            "the body's text",
        )
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns what it returns.
    #[track_caller]
    pub(crate) fn execute(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Every cookie the page can see, as WebDriver serializes them (`httpOnly`, `secure`,
    /// `sameSite`, …).
    #[track_caller]
    pub(crate) fn cookies(&self) -> Value {
        self.call("GET", "/cookie", None)
    }

    /// Writes a PNG of the viewport to `path`, for looking at a failure afterwards.
    #[track_caller]
    pub(crate) fn screenshot(&self, path: &Path) {
        let png = unb64(
            &string(self.call("GET", "/screenshot", None), "the screenshot"),
            "the screenshot",
        );
        std::fs::write(path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// Every element `xpath` matches, in document order.
    #[track_caller]
    pub(crate) fn find_all_xpath(&self, xpath: &str) -> Vec<Element<'_>> {
        self.elements("/elements", xpath)
    }

    /// The `<input>`, `<select>` or `<textarea>` whose `<label>` reads `label`: the label names it
    /// with `for`, or holds it. Only the label's own text counts, not that of a `<select>`'s
    /// options inside it.
    #[track_caller]
    pub(crate) fn input_by_label(&self, label: &str) -> Element<'_> {
        let l = xpath_literal(label);
        let labels = format!("//label[normalize-space()={l} or text()[normalize-space()={l}]]");
        let control = "*[self::input or self::select or self::textarea]";
        let xpath =
            format!("//{control}[@id and @id = {labels}/@for] | {labels}[not(@for)]//{control}");
        self.find_one(&format!("field labelled {label:?}"), &xpath)
    }

    /// The `<button>`, or `<input type=submit|button>`, whose caption is `text`.
    #[track_caller]
    pub(crate) fn button(&self, text: &str) -> Element<'_> {
        self.find_one(&format!("button {text:?}"), &button_xpath(text))
    }

    /// Like [`Browser::button`], for asserting that a page offers no such action.
    #[track_caller]
    pub(crate) fn try_button(&self, text: &str) -> Option<Element<'_>> {
        self.find_all_xpath(&button_xpath(text)).into_iter().next()
    }

    /// The `<a>` whose text is `text`.
    #[track_caller]
    pub(crate) fn link(&self, text: &str) -> Element<'_> {
        let xpath = format!("//a[normalize-space()={}]", xpath_literal(text));
        self.find_one(&format!("link {text:?}"), &xpath)
    }

    /// Replaces what the field labelled `label` holds with `value`.
    #[track_caller]
    pub(crate) fn fill(&self, label: &str, value: &str) {
        let field = self.input_by_label(label);
        field.clear();
        field.send_keys(value);
    }

    #[track_caller]
    pub(crate) fn click_button(&self, text: &str) {
        self.button(text).click();
    }

    #[track_caller]
    pub(crate) fn click_link(&self, text: &str) {
        self.link(text).click();
    }

    /// Chooses the option reading `option_text` in the `<select>` labelled `label`.
    #[track_caller]
    pub(crate) fn select_option(&self, label: &str, option_text: &str) {
        let select = self.input_by_label(label);
        let xpath = format!(
            ".//option[normalize-space()={}]",
            xpath_literal(option_text)
        );
        let options = self.elements(&format!("/element/{}/elements", select.id), &xpath);
        match options.into_iter().next() {
            Some(option) => option.click(),
            None => panic!(
                "no option {option_text:?} in the list labelled {label:?}{}",
                self.source_quote()
            ),
        }
    }

    /// Ticks or clears the checkbox labelled `label`, whatever it was.
    #[track_caller]
    pub(crate) fn set_checkbox(&self, label: &str, on: bool) {
        let checkbox = self.input_by_label(label);
        if checkbox.selected() != on {
            checkbox.click();
        }
        assert_eq!(
            checkbox.selected(),
            on,
            "the checkbox labelled {label:?} did not follow the click"
        );
    }

    #[track_caller]
    fn find_one(&self, what: &str, xpath: &str) -> Element<'_> {
        match self.find_all_xpath(xpath).into_iter().next() {
            Some(e) => e,
            None => panic!("no {what} on the page{}", self.source_quote()),
        }
    }

    /// What `POST {path}` (a find, from the page or an element) matches.
    #[track_caller]
    fn elements(&self, path: &str, xpath: &str) -> Vec<Element<'_>> {
        let found = self.call(
            "POST",
            path,
            Some(json!({ "using": "xpath", "value": xpath })),
        );
        let Value::Array(found) = found else {
            panic!("find {xpath}: not a list: {found}");
        };
        found
            .iter()
            .map(|e| Element {
                browser: self,
                id: e[ELEMENT]
                    .as_str()
                    .unwrap_or_else(|| panic!("find {xpath}: not an element: {e}"))
                    .to_string(),
            })
            .collect()
    }

    /// The current URL and the start of the page's source, for a failed find's message.
    fn source_quote(&self) -> String {
        let get = |what| {
            self.try_call("GET", what, None)
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .unwrap_or_else(|f| format!("({f})"))
        };
        let source = get("/source");
        let cut = match source.char_indices().nth(SOURCE_QUOTE) {
            Some((i, _)) => format!("{}\n[… {} more bytes]", &source[..i], source.len() - i),
            None => source,
        };
        format!(" at {}; its source:\n{cut}", get("/url"))
    }

    /// `METHOD /session/ID{path}`; panics with WebDriver's error.
    #[track_caller]
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|f| panic!("WebDriver {method} {path}: {f}"))
    }

    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Failure> {
        // WebDriver wants a JSON body on every POST, `{}` when there is nothing to say.
        let body = body.or_else(|| (method == "POST").then(|| json!({})));
        let target = format!("/session/{}{path}", self.session);
        exchange(&self.addr, method, &target, body.as_ref()).and_then(|r| answer_value(&r))
    }

    /// The end of chromedriver's log, for a failed start's message.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_dir.path().join("chromedriver.log"))
            .unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        format!("\n--- chromedriver log (end) ---\n{tail}")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Quits Chromium too; a failure must not panic here, a test may be unwinding already.
        if !self.session.is_empty() {
            let _ = self.try_call("DELETE", "", None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Element<'_> {
    /// The text as rendered, as a user reads it.
    #[track_caller]
    pub(crate) fn text(&self) -> String {
        string(self.call("GET", "/text", None), "an element's text")
    }

    /// The attribute as the markup has it: a field's `value` attribute stays what the server
    /// sent whatever is typed (see [`Element::property`]). `None` when there is none.
    #[track_caller]
    pub(crate) fn attribute(&self, name: &str) -> Option<String> {
        optional_string(self.call("GET", &format!("/attribute/{name}"), None))
    }

    /// The DOM property, which is what a control holds now (`value`, `checked`).
    #[track_caller]
    pub(crate) fn property(&self, name: &str) -> Option<String> {
        optional_string(self.call("GET", &format!("/property/{name}"), None))
    }

    /// Clicks it as a user would, and waits for a navigation that starts.
    #[track_caller]
    pub(crate) fn click(&self) {
        self.call("POST", "/click", None);
    }

    #[track_caller]
    pub(crate) fn send_keys(&self, s: &str) {
        self.call("POST", "/value", Some(json!({ "text": s })));
    }

    #[track_caller]
    pub(crate) fn clear(&self) {
        self.call("POST", "/clear", None);
    }

    /// Whether a checkbox, radio button or option is chosen.
    #[track_caller]
    fn selected(&self) -> bool {
        self.call("GET", "/selected", None)
            .as_bool()
            .expect("Is Element Selected answers a boolean")
    }

    #[track_caller]
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.browser
            .call(method, &format!("/element/{}{path}", self.id), body)
    }
}

/// Waits until a download ending in `suffix` is complete in `dir`: Chromium writes into
/// `*.crdownload` (and may put an empty file under the final name meanwhile), so nothing counts
/// while such a file is there.
#[track_caller]
pub(crate) fn wait_for_file(dir: &Path, suffix: &str, timeout: Duration) -> PathBuf {
    wait_for(
        &format!("a download *{suffix} in {}", dir.display()),
        timeout,
        Duration::from_millis(100),
        || {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .map_err(|e| e.to_string())?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            let busy = names.iter().any(|n| n.ends_with(".crdownload"));
            match names.iter().find(|n| n.ends_with(suffix)) {
                Some(n) if !busy && dir.join(n).is_file() => Ok(dir.join(n)),
                _ => Err(format!("the directory holds {names:?}")),
            }
        },
    )
}

/// The chromedriver to run: `$NESCA_CHROMEDRIVER`, Debian's, or the one on PATH.
fn chromedriver() -> String {
    std::env::var("NESCA_CHROMEDRIVER")
        .ok()
        .filter(|p| !p.is_empty())
        .or_else(|| {
            let debian = "/usr/bin/chromedriver";
            Path::new(debian).exists().then(|| debian.to_string())
        })
        .unwrap_or_else(|| "chromedriver".to_string())
}

/// The Chromium to drive: `$NESCA_CHROMIUM` or Debian's.
fn chromium() -> Option<String> {
    std::env::var("NESCA_CHROMIUM")
        .ok()
        .filter(|p| !p.is_empty())
        .or_else(|| {
            let debian = "/usr/bin/chromium";
            Path::new(debian).exists().then(|| debian.to_string())
        })
}

/// One exchange with chromedriver, `Err` instead of a panic so that `Drop` and the start-up
/// poll can go on.
fn exchange(
    addr: &str,
    method: &str,
    target: &str,
    body: Option<&Value>,
) -> Result<HttpResponse, Failure> {
    let transport = |message: String| Failure {
        error: String::new(),
        message: format!("{method} {target} to {addr}: {message}"),
    };
    let sock: SocketAddr = addr.parse().expect("socket address");
    let mut stream = TcpStream::connect_timeout(&sock, Duration::from_secs(5))
        .map_err(|e| transport(format!("cannot connect: {e}")))?;
    stream.set_read_timeout(Some(HTTP_LIMIT)).expect("timeout");
    stream.set_write_timeout(Some(HTTP_LIMIT)).expect("timeout");
    let body = body.map(|b| b.to_string().into_bytes());
    let headers: &[(&str, &str)] = match body {
        Some(_) => &[("Content-Type", "application/json; charset=utf-8")],
        None => &[],
    };
    let head = request_head(method, target, addr, headers, body.as_ref().map(Vec::len));
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_deref().unwrap_or_default()))
        .map_err(|e| transport(format!("cannot send: {e}")))?;
    read_response(&mut stream, &format!("{method} {target}")).map_err(transport)
}

/// The `value` of a WebDriver answer, or its error.
fn answer_value(response: &HttpResponse) -> Result<Value, Failure> {
    let parsed: Value = serde_json::from_slice(&response.body).map_err(|e| Failure {
        error: String::new(),
        message: format!("not JSON ({e}): {}", response.describe()),
    })?;
    let value = parsed.get("value").cloned().unwrap_or(Value::Null);
    if response.status == 200 {
        return Ok(value);
    }
    Err(Failure {
        error: value["error"].as_str().unwrap_or("HTTP error").to_string(),
        message: format!(
            "{} (HTTP {})",
            value["message"].as_str().unwrap_or_default(),
            response.status
        ),
    })
}

/// An XPath 1.0 string literal of `s`, which may hold both kinds of quotes.
fn xpath_literal(s: &str) -> String {
    if !s.contains('\'') {
        return format!("'{s}'");
    }
    if !s.contains('"') {
        return format!("\"{s}\"");
    }
    let parts: Vec<String> = s.split('\'').map(|p| format!("'{p}'")).collect();
    format!("concat({})", parts.join(", \"'\", "))
}

fn button_xpath(text: &str) -> String {
    let t = xpath_literal(text);
    format!(
        "//button[normalize-space()={t}] \
         | //input[(@type='submit' or @type='button') and normalize-space(@value)={t}]"
    )
}

fn optional_string(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

#[track_caller]
fn string(v: Value, what: &str) -> String {
    match v {
        Value::String(s) => s,
        other => panic!("{what}: not a string: {other}"),
    }
}
