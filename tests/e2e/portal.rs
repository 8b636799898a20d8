//! The portal (`[portal] listen`, docs/portal.md) in a real headless Chromium driven over
//! WebDriver (support/webdriver.rs): a holder signs in with their security word and the SMS
//! code `nesca serve`'s outbox writes, suspends, releases and revokes their certificate (OCSP
//! follows) and changes their word; refused sign-ins all read alike and are limited per
//! identity and per source; an applicant invited by an institution's list signs in with the
//! e-mailed access password, fills the form, confirms the SMS code and downloads the form to
//! sign on paper.
//!
//! With `NESCA_PORTAL_SCREENSHOTS=1` the pages' screenshots go to docs/portal/ (the
//! documentation's pictures); otherwise to the test's temporary directory.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::crl::{crl_reason_of, crl_text, nesca_crl};
use crate::support::idcard::is_valid_tckn;
use crate::support::institution::{applicant_show, import_signed_rows, institution};
use crate::support::ocsp::{ocsp_good, ocsp_revoked};
use crate::support::outbox::{access_password_in, addressed_to, code_after, is_code};
use crate::support::server::{server_demo, Server};
use crate::support::webdriver::{wait_for_file, Browser};
use crate::support::*;

/// How long a page may take to show after a click.
const PAGE_LIMIT: Duration = Duration::from_secs(15);
/// How long the test waits for `nesca serve`'s outbox (every second here).
const OUTBOX_LIMIT: Duration = Duration::from_secs(30);

/// What every refused holder sign-in starts with.
const SIGN_IN_REFUSED: &str = "T.C. Kimlik No veya güvenlik sözcüğü hatalı";
/// What a refused holder SMS code starts with.
const CODE_REFUSED: &str = "SMS onay kodu hatalı ya da süresi dolmuş.";

const HOME: &str = "nesca Sertifika Portalı";
const HOLDER_SIGN_IN: &str = "Sertifika İşlemleri — Giriş";
const HOLDER_CODE: &str = "SMS Onay Kodu";
const HOLDER_LIST: &str = "Sertifikalarım";

/// The text of a holder's sign-in SMS before the code.
const HOLDER_CODE_MARK: &str = "giris kodunuz: ";
/// The text of an applicant's SMS before the code.
const APPLICANT_CODE_MARK: &str = "dogrulama kodunuz: ";

/// A holder the tests issue a certificate to.
struct Holder {
    tckn: String,
    given: &'static str,
    surname: &'static str,
    word: &'static str,
    mobile: &'static str,
    email: Option<&'static str>,
}

/// AYŞE YILMAZ, the holder most tests issue a certificate to.
fn ayse() -> Holder {
    Holder {
        tckn: TCKN.to_owned(),
        given: GIVEN,
        surname: SURNAME,
        word: "Lale2024",
        mobile: "05321234567",
        email: Some("ayse.yilmaz@example.com.tr"),
    }
}

/// A demo CA for `nesca serve` with the portal on a free port (the harness writes
/// `127.0.0.1:0`) and the outbox delivering every second.
fn portal_demo() -> Demo {
    let demo = server_demo();
    let config = demo.config();
    let mut text = fs::read_to_string(&config).expect("nesca.toml");
    assert_eq!(
        toml_value(&text, "portal", "listen").as_deref(),
        Some("127.0.0.1:0"),
        "the demo's portal listens on a port of its own:\n{text}"
    );
    text.push_str("\n[outbox]\ninterval_seconds = 1\n");
    fs::write(&config, text).expect("write nesca.toml");
    demo
}

/// A valid T.C. Kimlik No from nine digits (the first not 0): both check digits computed.
fn tckn_from(nine: u32) -> String {
    let mut d: Vec<u32> = format!("{nine:09}")
        .bytes()
        .map(|b| u32::from(b - b'0'))
        .collect();
    assert!(d.len() == 9 && d[0] != 0, "{nine}");
    let odd = d[0] + d[2] + d[4] + d[6] + d[8];
    let even = d[1] + d[3] + d[5] + d[7];
    d.push((7 * odd + 10 * 9 - even) % 10);
    d.push(d.iter().sum::<u32>() % 10);
    let tckn: String = d
        .iter()
        .map(|x| char::from_digit(*x, 10).unwrap())
        .collect();
    assert!(is_valid_tckn(&tckn), "{tckn}");
    tckn
}

/// `nesca issue` for `h` with `--security-word-file` (0600, one line), `--mobile` and
/// `--email`; the certificate's path and the serial nesca printed (checked against
/// `openssl x509 -serial`).
#[track_caller]
fn issue_holder(demo: &Demo, name: &str, h: &Holder) -> (PathBuf, String) {
    let word_file = demo.work.join(format!("{name}-word.txt"));
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&word_file)
        .and_then(|mut f| f.write_all(format!("{}\n", h.word).as_bytes()))
        .expect("write the security word file");
    let csr = demo.csr(name, Key::P256);
    let cert = demo.work.join(format!("{name}.pem"));
    let mut extra = vec![
        "--out",
        s(&cert),
        "--security-word-file",
        s(&word_file),
        "--mobile",
        h.mobile,
    ];
    if let Some(email) = h.email {
        extra.extend_from_slice(&["--email", email]);
    }
    let out = demo
        .issue_as(&csr, &h.tckn, h.given, h.surname, &extra)
        .ok();
    let serial = single_serial_line(&out);
    let openssl_serial = openssl(&["x509", "-in", s(&cert), "-noout", "-serial"]).stdout;
    assert_eq!(
        openssl_serial
            .trim()
            .strip_prefix("serial=")
            .map(str::to_lowercase),
        Some(serial.clone()),
        "the serial nesca printed is the certificate's"
    );
    (cert, serial)
}

/// Where the pages' screenshots go: docs/portal/ with `NESCA_PORTAL_SCREENSHOTS=1`, else the
/// test's temporary directory.
struct Shots {
    dir: PathBuf,
}

impl Shots {
    fn new(demo: &Demo) -> Shots {
        let dir = if std::env::var("NESCA_PORTAL_SCREENSHOTS").as_deref() == Ok("1") {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/portal")
        } else {
            demo.tmp.path().join("screenshots")
        };
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        Shots { dir }
    }

    /// A screenshot of the page as `NAME` (a PNG, checked).
    #[track_caller]
    fn take(&self, b: &Browser, name: &str) {
        let path = self.dir.join(name);
        b.screenshot(&path);
        let png = fs::read(&path).expect("the screenshot");
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000,
            "{} is not a PNG of a page ({} bytes)",
            path.display(),
            png.len()
        );
    }
}

/// `https://127.0.0.1:PORT` of the portal `server` announced.
fn portal_url(server: &Server) -> String {
    format!("https://{}", server.tls_listener_addr("portal"))
}

/// The page as shown, read in one script so that a navigation cannot come between its parts.
#[derive(Debug)]
struct Page {
    headings: Vec<String>,
    /// The page-wide alert (`role=alert`), if any.
    alert: Option<String>,
    text: String,
}

fn page(b: &Browser) -> Page {
    let v = b.execute(
        "const a = document.querySelector('[role=alert]');\
         return { h: Array.from(document.querySelectorAll('h1'), e => e.innerText),\
                  a: a ? a.innerText : null,\
                  t: document.body ? document.body.innerText : '' };",
        json!([]),
    );
    Page {
        headings: v["h"]
            .as_array()
            .map(|h| {
                h.iter()
                    .filter_map(|e| e.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        alert: v["a"].as_str().map(str::to_owned),
        text: v["t"].as_str().unwrap_or_default().to_owned(),
    }
}

impl Page {
    fn is(&self, title: &str) -> bool {
        self.headings.iter().any(|h| h == title)
    }
}

/// Clicks (`click`) what leads to another page and waits until a new document has loaded
/// in place of the one clicked on (marked before the click).
#[track_caller]
fn leave(b: &Browser, click: impl FnOnce()) {
    b.execute(
        "document.documentElement.setAttribute('data-e2e-left', '1');",
        json!([]),
    );
    click();
    wait_for(
        "the next page",
        PAGE_LIMIT,
        Duration::from_millis(50),
        || {
            let v = b.execute(
                "return document.readyState === 'complete' \
                 && !document.documentElement.hasAttribute('data-e2e-left');",
                json!([]),
            );
            (v == json!(true))
                .then_some(())
                .ok_or_else(|| b.current_url())
        },
    );
}

/// Submits the form of the button `caption` and waits for the next page.
#[track_caller]
fn submit(b: &Browser, caption: &str) {
    leave(b, || b.click_button(caption));
}

/// Follows the link `text` and waits for the next page.
#[track_caller]
fn follow(b: &Browser, text: &str) {
    leave(b, || b.click_link(text));
}

/// The current page, which must be headed `title`.
#[track_caller]
fn expect_page(b: &Browser, title: &str) -> Page {
    let p = page(b);
    assert!(
        p.is(title),
        "expected the page {title:?} at {}, got {:?}:\n{}",
        b.current_url(),
        p.headings,
        p.text
    );
    p
}

/// The status cell of the certificate `serial` in the holder's table.
#[track_caller]
fn row_status(b: &Browser, serial: &str) -> String {
    let cells = b.find_all_xpath(&format!("//tr[td/code[normalize-space()='{serial}']]/td"));
    assert_eq!(
        cells.len(),
        4,
        "no row of 4 cells for {serial} on the page:\n{}",
        b.page_source()
    );
    cells[1].text()
}

/// The captions of the buttons in the row of `serial`.
fn row_buttons(b: &Browser, serial: &str) -> Vec<String> {
    b.find_all_xpath(&format!(
        "//tr[td/code[normalize-space()='{serial}']]//button"
    ))
    .iter()
    .map(|e| e.text())
    .collect()
}

/// One cookie as WebDriver sees it; panics when the browser has none of that name.
#[track_caller]
fn cookie(b: &Browser, name: &str) -> Value {
    let all = b.cookies();
    all.as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no cookie {name} in {all}"))
}

fn has_cookie(b: &Browser, name: &str) -> bool {
    b.cookies()
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["name"] == name))
}

/// The portal's cookie `name`: `__Host-` (host-only, `/`), HttpOnly, Secure, SameSite=Strict.
#[track_caller]
fn assert_strict_cookie(b: &Browser, name: &str) {
    let c = cookie(b, name);
    assert_eq!(c["httpOnly"], true, "{c}");
    assert_eq!(c["secure"], true, "{c}");
    assert_eq!(c["sameSite"], "Strict", "{c}");
    assert_eq!(c["path"], "/", "{c}");
    assert_eq!(c["domain"], "127.0.0.1", "host-only: {c}");
}

/// Every POST form of the page carries the hidden `csrf` field, equal to the CSRF cookie.
#[track_caller]
fn assert_forms_carry_csrf(b: &Browser) {
    let token = cookie(b, "__Host-nesca_csrf")["value"]
        .as_str()
        .expect("a cookie value")
        .to_owned();
    assert!(token.len() >= 32, "{token}");
    let forms = b.find_all_xpath("//form[@method='post']");
    assert!(!forms.is_empty(), "no form on {}", b.current_url());
    let fields = b.find_all_xpath("//form[@method='post']/input[@type='hidden'][@name='csrf']");
    assert_eq!(
        forms.len(),
        fields.len(),
        "a POST form without its csrf field:\n{}",
        b.page_source()
    );
    for f in fields {
        assert_eq!(f.attribute("value").as_deref(), Some(token.as_str()));
    }
}

/// The messages in the demo's outbox directory `kind` (`sms`, `email`), oldest first.
fn outbox(demo: &Demo, kind: &str) -> Vec<String> {
    crate::support::outbox::outbox_texts(&demo.dir.join("outbox").join(kind))
}

/// The codes of the SMS to `mobile` whose text has `mark` before the code, oldest first.
#[track_caller]
fn codes(demo: &Demo, mobile: &str, mark: &str) -> Vec<String> {
    let all: Vec<String> = outbox(demo, "sms")
        .iter()
        .filter(|m| addressed_to(m, mobile))
        .filter_map(|m| code_after(m, mark))
        .collect();
    for c in &all {
        assert!(is_code(c), "{c:?}");
    }
    all
}

/// The newest code to `mobile`, once there are more than `before`.
#[track_caller]
fn next_code(demo: &Demo, mobile: &str, mark: &str, before: usize) -> String {
    wait_for_within("the SMS code in outbox/sms", OUTBOX_LIMIT, || {
        let all = codes(demo, mobile, mark);
        (all.len() > before).then(|| all.last().cloned()).flatten()
    })
}

/// A code that is not `code`.
fn wrong(code: &str) -> &'static str {
    if code == "000000" {
        "111111"
    } else {
        "000000"
    }
}

/// What a security word led to.
#[derive(Debug, PartialEq)]
enum Word {
    /// The SMS code page.
    Code,
    /// The sign-in page again: its alert, and all of its text.
    Refused { alert: String, text: String },
}

/// Opens the holder's sign-in page and submits `tckn` and `word`.
#[track_caller]
fn submit_word(b: &Browser, base: &str, tckn: &str, word: &str) -> Word {
    b.goto(&format!("{base}/sertifika"));
    expect_page(b, HOLDER_SIGN_IN);
    b.fill("T.C. Kimlik No", tckn);
    b.fill("Güvenlik Sözcüğü", word);
    submit(b, "Devam");
    after_word(b)
}

#[track_caller]
fn after_word(b: &Browser) -> Word {
    let p = page(b);
    match &p.alert {
        _ if p.is(HOLDER_CODE) => Word::Code,
        Some(alert) if p.is(HOLDER_SIGN_IN) => Word::Refused {
            alert: alert.clone(),
            text: p.text,
        },
        _ => panic!("neither the code page nor a refusal: {p:?}"),
    }
}

/// Types `code` on the SMS code page and submits it.
#[track_caller]
fn submit_code(b: &Browser, code: &str) {
    expect_page(b, HOLDER_CODE);
    b.fill("SMS Onay Kodu", code);
    submit(b, "Giriş");
}

/// Signs `h` in with `word` and the SMS code the outbox writes; ends on the list page.
#[track_caller]
fn sign_in(b: &Browser, base: &str, demo: &Demo, h: &Holder, word: &str) {
    let before = codes(demo, h.mobile, HOLDER_CODE_MARK).len();
    assert_eq!(submit_word(b, base, &h.tckn, word), Word::Code);
    let code = next_code(demo, h.mobile, HOLDER_CODE_MARK, before);
    submit_code(b, &code);
    expect_page(b, HOLDER_LIST);
}

/// Follows `Çıkış` to the home page; the holder's cookie is gone.
#[track_caller]
fn sign_out(b: &Browser) {
    follow(b, "Çıkış");
    expect_page(b, HOME);
    assert!(
        !has_cookie(b, "__Host-nesca_holder"),
        "signed out, the browser still holds the session cookie: {}",
        b.cookies()
    );
}

#[test]
fn a_holder_manages_their_certificate_in_a_browser() {
    let demo = portal_demo();
    let shots = Shots::new(&demo);
    let ayse = ayse();
    let (cert, serial) = issue_holder(&demo, "ayse", &ayse);
    let server = Server::serve(&demo);
    let base = portal_url(&server);
    let downloads = tempfile::tempdir().expect("download directory");
    let b = Browser::start(downloads.path());

    // Home → Sertifika İşlemleri → the security word → the SMS code → the list.
    b.goto(&format!("{base}/"));
    expect_page(&b, HOME);
    assert!(b
        .link("Başvuru")
        .attribute("href")
        .is_some_and(|h| h.ends_with("/basvuru")));
    shots.take(&b, "01-ana-sayfa.png");
    follow(&b, "Sertifika İşlemleri");
    expect_page(&b, HOLDER_SIGN_IN);
    assert!(
        b.current_url().ends_with("/sertifika"),
        "{}",
        b.current_url()
    );
    let before = codes(&demo, ayse.mobile, HOLDER_CODE_MARK).len();
    b.fill("T.C. Kimlik No", &ayse.tckn);
    b.fill("Güvenlik Sözcüğü", ayse.word);
    assert_eq!(
        b.input_by_label("T.C. Kimlik No")
            .property("value")
            .as_deref(),
        Some(ayse.tckn.as_str())
    );
    assert_eq!(
        b.input_by_label("Güvenlik Sözcüğü")
            .attribute("type")
            .as_deref(),
        Some("password")
    );
    shots.take(&b, "02-sertifika-giris.png");
    submit(&b, "Devam");
    assert_eq!(after_word(&b), Word::Code);
    assert!(page(&b).text.contains("Güvenlik sözcüğünüz doğrulandı."));
    let code = next_code(&demo, ayse.mobile, HOLDER_CODE_MARK, before);
    b.fill("SMS Onay Kodu", &code);
    shots.take(&b, "03-sms-kodu.png");
    submit(&b, "Giriş");
    expect_page(&b, HOLDER_LIST);
    assert_eq!(row_status(&b, &serial), "Geçerli");
    assert_eq!(row_buttons(&b, &serial), ["Askıya Al", "İptal Et"]);
    assert!(b.link("Çıkış").attribute("href").is_some());
    shots.take(&b, "04-sertifikalarim.png");
    assert_strict_cookie(&b, "__Host-nesca_holder");
    assert_strict_cookie(&b, "__Host-nesca_csrf");
    assert_forms_carry_csrf(&b);

    // Suspended: the row, OCSP, and a notice to the holder's mobile and e-mail address.
    submit(&b, "Askıya Al");
    let p = expect_page(&b, HOLDER_LIST);
    assert!(p.text.contains("Sertifikanız askıya alındı."), "{}", p.text);
    assert_eq!(row_status(&b, &serial), "Askıda");
    assert_eq!(row_buttons(&b, &serial), ["Askıdan İndir", "İptal Et"]);
    ocsp_revoked(&demo, &server.url(), &cert, "certificateHold", "hold.der");
    // The next delta CRL lists it on hold, as any other suspension.
    let delta = nesca_crl(&demo, true, "hold-delta.crl");
    assert_eq!(
        crl_reason_of(&crl_text(&delta.path), &serial),
        Some(Some("Certificate Hold".to_owned())),
        "the delta CRL after the holder's suspension"
    );
    let sms = wait_for_within("the suspension notice by SMS", OUTBOX_LIMIT, || {
        outbox(&demo, "sms")
            .into_iter()
            .find(|m| addressed_to(m, ayse.mobile) && m.contains("durumu degisti: Askida"))
    });
    assert!(sms.contains(&serial), "{sms}");
    let mail = wait_for_within("the suspension notice by e-mail", OUTBOX_LIMIT, || {
        outbox(&demo, "email")
            .into_iter()
            .find(|m| addressed_to(m, ayse.email.unwrap()) && m.contains("\"Askıda\""))
    });
    assert!(mail.contains(&serial), "{mail}");

    // Released.
    submit(&b, "Askıdan İndir");
    let p = expect_page(&b, HOLDER_LIST);
    assert!(
        p.text.contains("Sertifikanız askıdan indirildi."),
        "{}",
        p.text
    );
    assert_eq!(row_status(&b, &serial), "Geçerli");
    ocsp_good(&demo, &server.url(), &cert, "released.der");

    // A new security word.
    follow(&b, "Güvenlik Sözcüğü Değiştir");
    expect_page(&b, "Güvenlik Sözcüğü Değiştir");
    assert_forms_carry_csrf(&b);
    b.fill("Mevcut Güvenlik Sözcüğü", ayse.word);
    b.fill("Yeni Güvenlik Sözcüğü", "Menekse77");
    shots.take(&b, "06-guvenlik-sozcugu.png");
    submit(&b, "Kaydet");
    let p = expect_page(&b, HOLDER_LIST);
    assert!(
        p.text.contains("Güvenlik sözcüğünüz değiştirildi."),
        "{}",
        p.text
    );
    sign_out(&b);
    b.goto(&format!("{base}/sertifika"));
    expect_page(&b, HOLDER_SIGN_IN);

    // The old word is refused; the new one signs in.
    match submit_word(&b, &base, &ayse.tckn, ayse.word) {
        Word::Refused { alert, .. } => assert!(alert.starts_with(SIGN_IN_REFUSED), "{alert}"),
        Word::Code => panic!("the old security word still signs in"),
    }
    sign_in(&b, &base, &demo, &ayse, "Menekse77");
    assert_eq!(row_status(&b, &serial), "Geçerli");

    // Revoked, for a compromised key, after the confirmation page.
    submit(&b, "İptal Et");
    let p = expect_page(&b, "Sertifika İptali");
    assert!(p.text.contains(&serial), "{}", p.text);
    let options: Vec<String> = b
        .find_all_xpath("//select[@id=//label[normalize-space()='İptal Nedeni']/@for]/option")
        .iter()
        .map(|o| o.text())
        .collect();
    assert_eq!(
        options,
        [
            "Belirtilmemiş",
            "Anahtar Güvenliğini Yitirdi",
            "Bilgilerde Değişiklik",
            "Yeni Sertifikayla Değiştirildi",
            "Kullanım Sona Erdi",
        ]
    );
    assert_forms_carry_csrf(&b);
    b.select_option("İptal Nedeni", "Anahtar Güvenliğini Yitirdi");
    assert_eq!(
        b.input_by_label("İptal Nedeni")
            .property("value")
            .as_deref(),
        Some("keyCompromise")
    );
    shots.take(&b, "05-iptal.png");
    submit(&b, "İptali Onayla");
    let p = expect_page(&b, HOLDER_LIST);
    assert!(p.text.contains("Sertifikanız iptal edildi."), "{}", p.text);
    assert_eq!(row_status(&b, &serial), "İptal Edildi");
    assert!(
        row_buttons(&b, &serial).is_empty(),
        "a revoked certificate offers no action"
    );
    ocsp_revoked(&demo, &server.url(), &cert, "keyCompromise", "revoked.der");
    sign_out(&b);
}

#[test]
fn wrong_words_and_codes_are_refused_alike_and_limited() {
    let demo = portal_demo();
    let holder = |tckn: String, word, mobile| Holder {
        tckn,
        given: GIVEN,
        surname: SURNAME,
        word,
        mobile,
        email: None,
    };
    let a = holder(TCKN.to_owned(), "Papatya1", "05321234567");
    let b2 = holder(tckn_from(200_000_001), "Sumbul22", "05329876543");
    let c = holder(tckn_from(200_000_002), "Nergis333", "05051112233");
    for (name, h) in [("a", &a), ("b", &b2), ("c", &c)] {
        issue_holder(&demo, name, h);
    }
    let nobody = |n: u32| tckn_from(300_000_000 + n);
    let mut server = Server::serve(&demo);
    let base = portal_url(&server);
    let downloads = tempfile::tempdir().expect("download directory");
    let b = Browser::start(downloads.path());
    // Failed attempts from this browser's source in the window (a step that succeeds is
    // given back).
    let mut failures = 0;

    // An unknown number (its check digits right) and a wrong word read the same.
    let refused = submit_word(&b, &base, &nobody(0), "Papatya1");
    failures += 1;
    let Word::Refused {
        alert: first,
        text: first_text,
    } = &refused
    else {
        panic!("an unknown T.C. Kimlik No signed in")
    };
    assert!(first.starts_with(SIGN_IN_REFUSED), "{first}");
    assert_eq!(
        b.input_by_label("T.C. Kimlik No")
            .attribute("value")
            .as_deref(),
        Some(nobody(0).as_str()),
        "the number typed is kept"
    );
    for _ in 0..5 {
        assert_eq!(submit_word(&b, &base, &a.tckn, "Lale2024"), refused);
        failures += 1;
    }
    // After five failures the right word is refused as a wrong one is.
    assert_eq!(
        submit_word(&b, &base, &a.tckn, a.word),
        refused,
        "the right word after five failures for one identity in 30 minutes"
    );
    failures += 1;

    // Another identity from the same source still signs in; three wrong codes end its
    // session, back to the sign-in page.
    let before = codes(&demo, b2.mobile, HOLDER_CODE_MARK).len();
    assert_eq!(submit_word(&b, &base, &b2.tckn, b2.word), Word::Code);
    let code = next_code(&demo, b2.mobile, HOLDER_CODE_MARK, before);
    for _ in 0..2 {
        submit_code(&b, wrong(&code));
        failures += 1;
        expect_page(&b, HOLDER_CODE);
        let error = b.find_all_xpath("//p[@id='code-hata']");
        let text = error.first().map(|e| e.text()).unwrap_or_default();
        assert!(text.starts_with(CODE_REFUSED), "{:?}", page(&b));
    }
    submit_code(&b, wrong(&code));
    failures += 1;
    let p = expect_page(&b, HOLDER_SIGN_IN);
    assert!(
        p.alert
            .as_deref()
            .is_some_and(|a| a.starts_with(CODE_REFUSED)),
        "{p:?}"
    );
    b.goto(&format!("{base}/sertifika"));
    expect_page(&b, HOLDER_SIGN_IN);
    assert!(
        b.find_all_xpath("//input[@id='code']").is_empty(),
        "the session ended: no code page"
    );

    // Twenty failures per source in 30 minutes, whoever they name: until then another
    // identity signs in; past them, the right word is refused as any other.
    let mut n = 1;
    let mut fail_once = |failures: &mut u32| {
        assert_eq!(submit_word(&b, &base, &nobody(n), "Papatya1"), refused);
        *failures += 1;
        n += 1;
    };
    while failures < 19 {
        fail_once(&mut failures);
    }
    assert_eq!(submit_word(&b, &base, &c.tckn, c.word), Word::Code);
    sign_out(&b);
    fail_once(&mut failures);
    assert_eq!(failures, 20);
    let Word::Refused { alert, text } = submit_word(&b, &base, &c.tckn, c.word) else {
        panic!("the right word signed in past the source's twenty failures")
    };
    assert_eq!(
        (&alert, &text),
        (first, first_text),
        "the source's limit reads alike"
    );

    // Forms without their CSRF token are forbidden, before anything is checked or counted.
    let word_form = |csrf: &str| {
        format!(
            "{csrf}tckn={}&security_word={}&code=123456&serial=01&action=suspend",
            a.tckn, a.word
        )
    };
    for path in [
        "/sertifika/giris",
        "/sertifika/kod",
        "/sertifika/islem",
        "/sertifika/iptal",
        "/sertifika/guvenlik-sozcugu",
        "/basvuru/giris",
        "/basvuru/form",
        "/basvuru/kod",
        "/basvuru/onay",
    ] {
        let (status, body) = curl_post(&demo, &base, path, None, &word_form(""));
        assert_eq!(status, 403, "POST {path} without a csrf field: {body}");
        assert!(body.contains("İstek reddedildi"), "{body}");
    }
    let cookie = "__Host-nesca_csrf=0123456789abcdef0123456789abcdef";
    let (status, body) = curl_post(
        &demo,
        &base,
        "/sertifika/giris",
        Some(cookie),
        &word_form("csrf=fedcba9876543210fedcba9876543210&"),
    );
    assert_eq!(status, 403, "a csrf field that is not the cookie's: {body}");
    let (status, body) = curl_post(
        &demo,
        &base,
        "/sertifika/giris",
        None,
        &word_form("csrf=0123456789abcdef0123456789abcdef&"),
    );
    assert_eq!(status, 403, "a csrf field and no cookie: {body}");
    // With the cookie's token the form is read: still past the source's limit.
    let (status, body) = curl_post(
        &demo,
        &base,
        "/sertifika/giris",
        Some(cookie),
        &word_form("csrf=0123456789abcdef0123456789abcdef&"),
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!("role=\"alert\">{SIGN_IN_REFUSED}")),
        "past the source's limit, refused: {body}"
    );
    server.assert_running();
}

/// `curl -X POST BASE/PATH` with the form `body` (and a `Cookie:` header), the portal's
/// certificate verified against the demo's chain: the status and the body.
#[track_caller]
fn curl_post(
    demo: &Demo,
    base: &str,
    path: &str,
    cookie: Option<&str>,
    body: &str,
) -> (u16, String) {
    let cookie = cookie.map(|c| format!("Cookie: {c}"));
    let mut args = vec![
        "-H",
        "Content-Type: application/x-www-form-urlencoded",
        "--data-raw",
        body,
    ];
    if let Some(c) = &cookie {
        args.extend_from_slice(&["-H", c]);
    }
    let answer = curl(demo, &args, &format!("{base}{path}"));
    (answer.status, answer.body)
}

/// What curl got from the portal: the status, the headers (of the final answer) and the body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    /// The first header `name` (case-insensitive).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The page's `<h1>`.
    fn heading(&self) -> Option<&str> {
        let rest = self.body.split_once("<h1>")?.1;
        rest.split_once("</h1>").map(|(h, _)| h)
    }
}

/// `curl ARGS URL` (headers and body kept), the portal's certificate verified against the
/// demo's chain alone, whatever its outcome.
#[track_caller]
fn curl_may_fail(demo: &Demo, args: &[&str], url: &str) -> (Output, Option<Answer>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    let body_file = demo.work.join(format!("curl-{n}-body"));
    let head_file = demo.work.join(format!("curl-{n}-headers"));
    let ca = demo.path("ca-chain.pem");
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20", "--cacert", s(&ca)])
        .args([
            "-o",
            s(&body_file),
            "-D",
            s(&head_file),
            "-w",
            "%{http_code}",
        ])
        .args(args)
        .arg(url);
    let out = run(cmd);
    if !out.success() {
        return (out, None);
    }
    let status = out
        .stdout
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{}", out.describe()));
    let head = fs::read_to_string(&head_file).unwrap_or_default();
    // An interim answer (100 Continue) comes first: the headers are the last block's.
    let last = head
        .split("\r\n\r\n")
        .filter(|b| !b.trim().is_empty())
        .last()
        .unwrap_or_default();
    let headers = last
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let body = fs::read_to_string(&body_file).unwrap_or_default();
    (
        out,
        Some(Answer {
            status,
            headers,
            body,
        }),
    )
}

/// [`curl_may_fail`] that must get an answer.
#[track_caller]
fn curl(demo: &Demo, args: &[&str], url: &str) -> Answer {
    match curl_may_fail(demo, args, url) {
        (_, Some(answer)) => answer,
        (out, None) => panic!("{}", out.describe()),
    }
}

/// The cookies a client holds for the portal: sent with each request, updated from each
/// answer's `Set-Cookie` (an empty value or `Max-Age=0` deletes).
#[derive(Debug, Default, Clone)]
struct Jar(std::collections::BTreeMap<String, String>);

impl Jar {
    #[track_caller]
    fn get(&self, name: &str) -> &str {
        self.0
            .get(name)
            .unwrap_or_else(|| panic!("no cookie {name} in {self:?}"))
    }

    fn with(mut self, name: &str, value: &str) -> Jar {
        self.0.insert(name.to_owned(), value.to_owned());
        self
    }

    fn header(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| {
            self.0
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    fn take(&mut self, answer: &Answer) {
        for (_, c) in answer
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        {
            let mut parts = c.split(';').map(str::trim);
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            if value.is_empty() || parts.any(|p| p.eq_ignore_ascii_case("max-age=0")) {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    /// `GET BASE/PATH` with the jar's cookies, which take the answer's.
    #[track_caller]
    fn get_page(&mut self, demo: &Demo, base: &str, path: &str) -> Answer {
        let cookie = self.header().map(|c| format!("Cookie: {c}"));
        let args: Vec<&str> = cookie.iter().flat_map(|c| ["-H", c.as_str()]).collect();
        let answer = curl(demo, &args, &format!("{base}{path}"));
        self.take(&answer);
        answer
    }

    /// `POST BASE/PATH` of the form `fields` and the CSRF cookie's token, with the jar's
    /// cookies, which take the answer's.
    #[track_caller]
    fn post_form(
        &mut self,
        demo: &Demo,
        base: &str,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Answer {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("csrf", self.get("__Host-nesca_csrf"));
        for (k, v) in fields {
            form.append_pair(k, v);
        }
        let body = form.finish();
        let cookie = format!("Cookie: {}", self.header().unwrap_or_default());
        let args = [
            "-H",
            "Content-Type: application/x-www-form-urlencoded",
            "-H",
            &cookie,
            "--data-raw",
            &body,
        ];
        let answer = curl(demo, &args, &format!("{base}{path}"));
        self.take(&answer);
        answer
    }
}

const INSTITUTION: &str = "ankara-bb";
const TAX_NO: &str = "0680049583";

/// A person an institution's list invites to apply.
struct Applicant {
    tckn: &'static str,
    email: &'static str,
    mobile: &'static str,
}

/// Çağrı Öztürk of Bilgi İşlem, on [`INSTITUTION`]'s list.
const CAGRI: Applicant = Applicant {
    tckn: "10000000078",
    email: "cagri@ankara.bel.tr",
    mobile: "+905331112233",
};

/// Registers [`INSTITUTION`] and imports its signed list with `a` (Çağrı Öztürk of Bilgi
/// İşlem) on it: `nesca serve`'s outbox then e-mails `a` the access password.
#[track_caller]
fn invite(demo: &Demo, a: &Applicant) {
    let (officer_cert, officer_key) = institution(demo, INSTITUTION, TAX_NO);
    import_signed_rows(
        demo,
        INSTITUTION,
        (&officer_cert, &officer_key),
        "liste",
        &[format!(
            "{};Çağrı;Öztürk;{};{};Bilgi İşlem",
            a.tckn, a.email, a.mobile
        )],
    );
}

/// The access password e-mailed to `a` (waits for the outbox of a running `nesca serve`).
#[track_caller]
fn access_password(demo: &Demo, a: &Applicant) -> String {
    let mail = wait_for_within("the access password e-mail", OUTBOX_LIMIT, || {
        outbox(demo, "email")
            .into_iter()
            .find(|m| addressed_to(m, a.email))
    });
    access_password_in(&mail).unwrap_or_else(|| panic!("no password line in {mail}"))
}

#[test]
fn an_applicant_completes_their_application_in_a_browser() {
    let demo = portal_demo();
    let shots = Shots::new(&demo);
    let Applicant { tckn, mobile, .. } = CAGRI;
    invite(&demo, &CAGRI);
    let server = Server::serve(&demo);
    let base = portal_url(&server);
    let password = access_password(&demo, &CAGRI);
    let downloads = tempfile::tempdir().expect("download directory");
    let b = Browser::start(downloads.path());

    // Home → Başvuru; the page for a lost password.
    b.goto(&format!("{base}/"));
    expect_page(&b, HOME);
    follow(&b, "Başvuru");
    expect_page(&b, "Başvuru — Giriş");
    follow(&b, "Erişim Parolamı Bilmiyorum");
    let p = expect_page(&b, "Erişim Parolamı Bilmiyorum");
    assert!(
        p.text.contains("Nitelikli elektronik sertifika başvurunuz")
            && p.text.contains("başvuru yetkilisine"),
        "{}",
        p.text
    );
    follow(&b, "Giriş sayfasına dön");
    expect_page(&b, "Başvuru — Giriş");

    // A wrong password is refused; the e-mailed one signs in.
    b.fill("T.C. Kimlik No", tckn);
    b.fill("Erişim Parolası", "yanlis-parola");
    submit(&b, "Giriş");
    let p = expect_page(&b, "Başvuru — Giriş");
    assert!(
        p.alert
            .as_deref()
            .is_some_and(|a| a.starts_with("T.C. Kimlik No veya erişim parolası hatalı")),
        "{p:?}"
    );
    b.fill("T.C. Kimlik No", tckn);
    b.fill("Erişim Parolası", &password);
    shots.take(&b, "07-basvuru-giris.png");
    submit(&b, "Giriş");
    let p = expect_page(&b, "Başvuru");
    assert!(
        p.text.contains("Sayın Çağrı Öztürk") && p.text.contains("Başvuru formu bekleniyor"),
        "{}",
        p.text
    );
    assert_strict_cookie(&b, "__Host-nesca_applicant");
    assert_strict_cookie(&b, "__Host-nesca_csrf");
    assert_forms_carry_csrf(&b);

    // The form (pictured filled in); an address too short is refused next to its field;
    // then saved.
    let address = "Atatürk Bulvarı No: 1, Çankaya / ANKARA";
    let fill_form = |address: &str| {
        b.fill("Güvenlik Sözcüğü", "Kırmızı7");
        b.set_checkbox("Sertifikam İnternette Yayınlanmasın", true);
        b.fill("Teslimat Adresi", address);
        assert_eq!(
            b.input_by_label("Teslimat Adresi")
                .property("value")
                .as_deref(),
            Some(address)
        );
    };
    fill_form(address);
    shots.take(&b, "08-basvuru-formu.png");
    b.fill("Teslimat Adresi", "Ankara");
    submit(&b, "Kaydet");
    let p = expect_page(&b, "Başvuru");
    assert!(p.text.contains("Başvuru formu bekleniyor"), "{}", p.text);
    let error: Vec<String> = b
        .find_all_xpath("//p[@id='delivery_address-hata']")
        .iter()
        .map(|e| e.text())
        .collect();
    assert_eq!(error, ["10–500 karakterlik bir adres yazın."]);
    fill_form(address);
    let before = codes(&demo, mobile, APPLICANT_CODE_MARK).len();
    submit(&b, "Kaydet");
    let p = expect_page(&b, "Başvuru");
    assert!(
        p.text.contains("SMS onayı bekleniyor") && p.text.contains("Formunuz kaydedildi"),
        "{}",
        p.text
    );

    // The SMS code.
    let code = next_code(&demo, mobile, APPLICANT_CODE_MARK, before);
    b.fill("SMS Onay Kodu", &code);
    submit(&b, "Onayla");
    let p = expect_page(&b, "Başvuru");
    assert!(
        p.text.contains("Başvuru onayı bekleniyor")
            && p.text.contains("Cep telefonunuz doğrulandı."),
        "{}",
        p.text
    );
    assert!(b.try_button("e-Onay ile Onayla").is_some());
    assert_forms_carry_csrf(&b);
    shots.take(&b, "09-basvuru-onay.png");

    // The form to sign on paper: a PDF download (the page stays).
    b.click_button("Islak İmza ile Onaylamak için Formu İndir");
    let pdf = wait_for_file(downloads.path(), ".pdf", Duration::from_secs(30));
    assert_eq!(
        pdf.file_name().and_then(|n| n.to_str()),
        Some("nes-basvuru-formu.pdf")
    );
    let bytes = fs::read(&pdf).expect("the PDF");
    assert!(
        bytes.starts_with(b"%PDF"),
        "not a PDF: {} bytes",
        bytes.len()
    );

    // Başvurularım: the stage.
    follow(&b, "Başvurularım");
    expect_page(&b, "Başvurularım");
    let cells: Vec<String> = b
        .find_all_xpath("//table/tbody/tr/td")
        .iter()
        .map(|e| e.text())
        .collect();
    assert_eq!(cells.len(), 3, "{cells:?}");
    assert_eq!(cells[1], INSTITUTION);
    assert_eq!(cells[2], "Islak imzalı form bekleniyor");
    shots.take(&b, "10-basvurularim.png");
    let shown = applicant_show(&demo, &cells[0]);
    assert_eq!(shown["stage"], "awaiting_wet", "{shown}");
    assert_eq!(shown["do_not_publish"], true, "{shown}");
    assert_eq!(shown["delivery_address"], address, "{shown}");
    follow(&b, "Başvuruma dön");
    let p = expect_page(&b, "Başvuru");
    assert!(
        p.text.contains("Islak imzalı form bekleniyor"),
        "{}",
        p.text
    );
    assert!(b.link("Formu yeniden indir").attribute("href").is_some());

    // The form again: the same PDF (the first moved out of the way, so that the next download
    // is the only one in the directory).
    let first = demo.work.join("first-form.pdf");
    fs::rename(&pdf, &first).expect("move the first PDF away");
    b.click_link("Formu yeniden indir");
    let again = wait_for_file(downloads.path(), ".pdf", Duration::from_secs(30));
    let again_bytes = fs::read(&again).expect("the second PDF");
    assert!(
        again_bytes.starts_with(b"%PDF"),
        "not a PDF: {} bytes",
        again_bytes.len()
    );
    let digest = |pdf: &[u8]| -> String {
        // The text is not compressed: "Metnin SHA-256 özeti: HEX" in WinAnsi (ö is 0xF6).
        let mark: &[u8] = b"(Metnin SHA-256 \xF6zeti: ";
        let at = pdf
            .windows(mark.len())
            .position(|w| w == mark)
            .unwrap_or_else(|| panic!("no SHA-256 line in the form"));
        let hex = String::from_utf8_lossy(&pdf[at + mark.len()..][..64]).into_owned();
        assert!(hex.bytes().all(|c| c.is_ascii_hexdigit()), "{hex:?}");
        hex
    };
    assert_eq!(digest(&again_bytes), digest(&bytes));
    assert!(
        again_bytes == bytes,
        "the form downloaded again differs from the first ({} and {} bytes)",
        again_bytes.len(),
        bytes.len()
    );
}

/// Expiry reminders: a holder whose certificate expires in 20 days gets the 30-day reminder by
/// SMS and e-mail, once however often the sweep runs; 14 days later (the server's clock moved)
/// the 7-day one, with the renewal link to the portal's application pages.
#[test]
fn expiry_reminders_reach_the_holder_once_per_band() {
    let demo = portal_demo();
    let text = fs::read_to_string(demo.config()).expect("nesca.toml");
    let text = text.replace(
        "[portal]\n",
        "[portal]\nrenewal_url = \"https://eshs.example/yenileme\"\n",
    );
    fs::write(demo.config(), text).expect("write nesca.toml");
    let holder = Holder {
        tckn: tckn_from(100_000_003),
        given: "ELİF",
        surname: "KAYA",
        word: "Papatya77",
        mobile: "05331234567",
        email: Some("elif.kaya@example.com"),
    };
    let csr = demo.csr("elif", Key::P256);
    let cert = demo.work.join("elif.pem");
    let out = demo
        .issue_as(
            &csr,
            &holder.tckn,
            holder.given,
            holder.surname,
            &[
                "--out",
                s(&cert),
                "--validity-days",
                "20",
                "--mobile",
                holder.mobile,
                "--email",
                holder.email.unwrap(),
            ],
        )
        .ok();
    let serial = single_serial_line(&out);
    let reminders = |days: &str| -> (usize, usize) {
        let mark = format!("{days} gün");
        let sms_mark = format!("{days} gun");
        let sms = outbox(&demo, "sms")
            .iter()
            .filter(|m| {
                addressed_to(m, holder.mobile) && m.contains(&serial) && m.contains(&sms_mark)
            })
            .count();
        let mail = outbox(&demo, "email")
            .iter()
            .filter(|m| m.contains("elif.kaya@example.com") && m.contains(&serial))
            .filter(|m| m.contains(&mark))
            .count();
        (sms, mail)
    };

    let server = Server::serve(&demo);
    wait_for(
        "the 30-day reminder",
        OUTBOX_LIMIT,
        Duration::from_millis(200),
        || match reminders("30") {
            (1, 1) => Ok(()),
            seen => Err(format!("{seen:?}")),
        },
    );
    server.terminate(Duration::from_secs(20));
    // Started again, the sweep runs again at once: nothing is sent twice.
    let server = Server::serve(&demo);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(reminders("30"), (1, 1), "a reminder was sent twice");
    assert_eq!(reminders("7"), (0, 0));
    server.terminate(Duration::from_secs(20));

    let later = Server::serve_with_env(
        &demo,
        &[(
            "NESCA_TEST_CLOCK_OFFSET_SECONDS",
            &(14 * 86_400).to_string(),
        )],
    );
    wait_for(
        "the 7-day reminder",
        OUTBOX_LIMIT,
        Duration::from_millis(200),
        || match reminders("7") {
            (1, 1) => Ok(()),
            seen => Err(format!("{seen:?}")),
        },
    );
    assert_eq!(reminders("30"), (1, 1));
    let sms = outbox(&demo, "sms")
        .into_iter()
        .find(|m| addressed_to(m, holder.mobile) && m.contains("7 gun"))
        .expect("the 7-day SMS");
    // The renewal link is `[portal] renewal_url`.
    assert!(
        sms.contains("Yenileme: https://eshs.example/yenileme"),
        "{sms}"
    );
    later.terminate(Duration::from_secs(20));
}

/// The headers every answer of the portal carries (docs/portal.md, "Security of the pages"),
/// but HSTS, whose max-age is the server's to choose.
const SECURITY_HEADERS: [(&str, &str); 5] = [
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
];

#[track_caller]
fn assert_security_headers(answer: &Answer, what: &str) {
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(answer.header(name), Some(value), "{what}: {answer:?}");
    }
    let max_age = answer
        .header("Strict-Transport-Security")
        .and_then(|v| v.strip_prefix("max-age="))
        .and_then(|v| v.split(';').next())
        .and_then(|v| v.trim().parse::<u64>().ok());
    assert!(
        max_age.is_some_and(|a| a >= 86_400),
        "{what}: HSTS for a day at least: {answer:?}"
    );
}

/// `openssl s_client -connect ADDR -CAfile ca-chain.pem -verify_return_error CHECK…`,
/// whatever its outcome.
#[track_caller]
fn s_client(demo: &Demo, addr: &str, check: &[&str]) -> Output {
    let ca = demo.path("ca-chain.pem");
    let mut args = vec![
        "s_client",
        "-connect",
        addr,
        "-CAfile",
        s(&ca),
        "-verify_return_error",
    ];
    args.extend_from_slice(check);
    openssl_may_fail(&args)
}

/// The lower-case hex serial of the first certificate in `pem`.
#[track_caller]
fn pem_serial(pem: &Path) -> String {
    openssl(&["x509", "-in", s(pem), "-noout", "-serial"])
        .stdout
        .trim()
        .strip_prefix("serial=")
        .map(str::to_lowercase)
        .unwrap_or_else(|| panic!("no serial of {}", pem.display()))
}

#[test]
fn the_pages_carry_their_security_headers_and_refuse_large_forms() {
    let demo = portal_demo();
    let server = Server::serve(&demo);
    let addr = server.tls_listener_addr("portal");
    let base = format!("https://{addr}");

    // The home page, with every header; an unknown path is an HTML page too, 404.
    let home = curl(&demo, &[], &format!("{base}/"));
    assert_eq!(home.status, 200, "{home:?}");
    assert_eq!(home.heading(), Some(HOME), "{home:?}");
    assert_security_headers(&home, "GET /");
    let missing = curl(&demo, &[], &format!("{base}/sertifika/yok-boyle-bir-sayfa"));
    assert_eq!(missing.status, 404, "{missing:?}");
    assert!(
        missing
            .header("Content-Type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{missing:?}"
    );
    assert_eq!(missing.heading(), Some("Sayfa bulunamadı"), "{missing:?}");
    assert_security_headers(&missing, "a 404");

    // A form just under 16 KiB is read (and refused for its CSRF token); one over is not read.
    let form = |len: usize| {
        let head = format!("tckn={TCKN}&security_word=");
        format!("{head}{}", "a".repeat(len - head.len()))
    };
    let (status, body) = curl_post(
        &demo,
        &base,
        "/sertifika/giris",
        None,
        &form(16 * 1024 - 64),
    );
    assert_eq!(status, 403, "a form under 16 KiB is read: {body}");
    for len in [16 * 1024 + 1, 64 * 1024] {
        let body = form(len);
        let big = curl(
            &demo,
            &[
                "-H",
                "Content-Type: application/x-www-form-urlencoded",
                "--data-raw",
                &body,
            ],
            &format!("{base}/sertifika/giris"),
        );
        assert_eq!(big.status, 413, "a form of {len} bytes: {big:?}");
        assert_security_headers(&big, "a 413");
    }

    // The demo's certificate is nesca's for 127.0.0.1 (and for no host name).
    let verified = s_client(&demo, &addr, &["-verify_ip", "127.0.0.1"]);
    assert!(
        verified.success() && verified.stdout.contains("Verify return code: 0 (ok)"),
        "{}",
        verified.describe()
    );
    let wrong_name = s_client(&demo, &addr, &["-verify_hostname", "localhost"]);
    assert!(!wrong_name.success(), "{}", wrong_name.describe());
    server.terminate(Duration::from_secs(20));

    // `nesca portal tls-cert --name localhost`: a new certificate and key in place.
    let tls_cert = demo.path("portal-tls.pem");
    let tls_key = demo.path("portal-tls.key");
    let old_serial = pem_serial(&tls_cert);
    let out = demo
        .nesca(&[
            "portal",
            "tls-cert",
            "--config",
            s(&demo.config()),
            "--name",
            "localhost",
        ])
        .ok();
    let issued: Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {}", out.describe()));
    let serial = issued["serial"].as_str().unwrap_or_default().to_owned();
    assert_eq!(serial, pem_serial(&tls_cert), "{issued}");
    assert_ne!(serial, old_serial, "{issued}");
    assert_eq!(issued["tls_cert"].as_str(), Some(s(&tls_cert)), "{issued}");
    assert_eq!(issued["tls_key"].as_str(), Some(s(&tls_key)), "{issued}");
    let ext = openssl(&[
        "x509",
        "-in",
        s(&tls_cert),
        "-noout",
        "-ext",
        "subjectAltName,extendedKeyUsage",
    ])
    .stdout;
    assert!(ext.contains("DNS:localhost"), "{ext}");
    assert!(!ext.contains("IP Address"), "only the name given: {ext}");
    assert!(ext.contains("TLS Web Server Authentication"), "{ext}");
    let mode = fs::metadata(&tls_key)
        .expect("portal-tls.key")
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600,
        "portal-tls.key"
    );
    assert_eq!(demo.cert_show(&serial)["status"], "active");

    // Started again, the server serves it: verified for localhost, no longer for 127.0.0.1.
    let server = Server::serve(&demo);
    let addr = server.tls_listener_addr("portal");
    let port = addr.rsplit_once(':').expect("IP:PORT").1;
    let resolve = format!("localhost:{port}:127.0.0.1");
    let home = curl(
        &demo,
        &["--resolve", &resolve],
        &format!("https://localhost:{port}/"),
    );
    assert_eq!(home.status, 200, "{home:?}");
    assert_eq!(home.heading(), Some(HOME), "{home:?}");
    let (out, answer) = curl_may_fail(&demo, &[], &format!("https://{addr}/"));
    assert!(
        answer.is_none() && out.status.code() == Some(60),
        "the new certificate names no IP address: {}",
        out.describe()
    );
    let verified = s_client(&demo, &addr, &["-verify_hostname", "localhost"]);
    assert!(verified.success(), "{}", verified.describe());
    server.terminate(Duration::from_secs(20));
}

#[test]
fn a_suspension_made_by_phone_is_not_released_in_the_portal() {
    let demo = portal_demo();
    let ayse = ayse();
    let (cert, serial) = issue_holder(&demo, "ayse", &ayse);

    // The holder lost the phone and called: the operator suspends on their request.
    let out = demo
        .nesca(&[
            "suspend",
            "--config",
            s(&demo.config()),
            "--serial",
            &serial,
            "--holder-tckn",
            &ayse.tckn,
        ])
        .ok();
    assert!(out.stdout.contains("suspended"), "{}", out.describe());
    assert_eq!(demo.cert_show(&serial)["status"], "suspended");

    // The notice of a suspension made elsewhere reaches the holder too.
    let mut server = Server::serve(&demo);
    let sms = wait_for_within(
        "the operator's suspension notice by SMS",
        OUTBOX_LIMIT,
        || {
            outbox(&demo, "sms").into_iter().find(|m| {
                addressed_to(m, ayse.mobile) && m.contains(&serial) && m.contains("Askida")
            })
        },
    );
    assert!(sms.contains("durumu degisti: Askida"), "{sms}");
    wait_for_within(
        "the operator's suspension notice by e-mail",
        OUTBOX_LIMIT,
        || {
            outbox(&demo, "email").into_iter().find(|m| {
                addressed_to(m, ayse.email.unwrap())
                    && m.contains(&serial)
                    && m.contains("\"Askıda\"")
            })
        },
    );

    // Whoever has the phone and the word signs in: suspended, revocable, not releasable.
    let base = portal_url(&server);
    let downloads = tempfile::tempdir().expect("download directory");
    let b = Browser::start(downloads.path());
    sign_in(&b, &base, &demo, &ayse, ayse.word);
    assert_eq!(row_status(&b, &serial), "Askıda");
    assert_eq!(row_buttons(&b, &serial), ["İptal Et"]);

    // A forged release with the session's cookies and token is refused.
    let value = |name: &str| {
        cookie(&b, name)["value"]
            .as_str()
            .expect("a cookie value")
            .to_owned()
    };
    let csrf = value("__Host-nesca_csrf");
    let cookies = format!(
        "__Host-nesca_holder={}; __Host-nesca_csrf={csrf}",
        value("__Host-nesca_holder")
    );
    let (status, body) = curl_post(
        &demo,
        &base,
        "/sertifika/islem",
        Some(&cookies),
        &format!("csrf={csrf}&serial={serial}&action=release"),
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!("<h1>{HOLDER_LIST}</h1>"))
            && body.contains("role=\"alert\"><p class=\"hata\">İşlem yapılamadı.")
            && body.contains("Bu askıya alma portaldan yapılmadı"),
        "{body}"
    );
    assert!(!body.contains("askıdan indirildi"), "{body}");
    assert_eq!(demo.cert_show(&serial)["status"], "suspended");
    ocsp_revoked(
        &demo,
        &server.url(),
        &cert,
        "certificateHold",
        "still-held.der",
    );
    b.goto(&format!("{base}/sertifika"));
    expect_page(&b, HOLDER_LIST);
    assert_eq!(row_status(&b, &serial), "Askıda");
    sign_out(&b);
    server.assert_running();
}

#[test]
fn sessions_end_at_sign_out_and_the_code_steps_token_dies() {
    const HOLDER: &str = "__Host-nesca_holder";
    const APPLICANT: &str = "__Host-nesca_applicant";
    const CSRF: &str = "__Host-nesca_csrf";
    let demo = portal_demo();
    let ayse = Holder {
        email: None,
        ..ayse()
    };
    let (_, serial) = issue_holder(&demo, "ayse", &ayse);
    invite(&demo, &CAGRI);
    let server = Server::serve(&demo);
    let base = portal_url(&server);

    // The holder: the word, then the code, each step with its own token.
    let mut jar = Jar::default();
    let start = jar.get_page(&demo, &base, "/sertifika");
    assert_eq!(start.heading(), Some(HOLDER_SIGN_IN), "{start:?}");
    let before = codes(&demo, ayse.mobile, HOLDER_CODE_MARK).len();
    let word = jar.post_form(
        &demo,
        &base,
        "/sertifika/giris",
        &[("tckn", &ayse.tckn), ("security_word", ayse.word)],
    );
    assert_eq!(word.status, 303, "{word:?}");
    let a = jar.get(HOLDER).to_owned();
    let code_page = jar.get_page(&demo, &base, "/sertifika");
    assert_eq!(code_page.heading(), Some(HOLDER_CODE), "{code_page:?}");
    let code = next_code(&demo, ayse.mobile, HOLDER_CODE_MARK, before);
    let signed_in = jar.post_form(&demo, &base, "/sertifika/kod", &[("code", &code)]);
    assert_eq!(signed_in.status, 303, "{signed_in:?}");
    let b = jar.get(HOLDER).to_owned();
    assert_ne!(a, b, "signed in, the session has a new token");
    assert!(b.len() >= 43, "256 bits: {b}");

    let csrf_only = Jar::default().with(CSRF, jar.get(CSRF));
    let with = |name: &str, token: &str| csrf_only.clone().with(name, token);
    let list = with(HOLDER, &b).get_page(&demo, &base, "/sertifika");
    assert_eq!(list.heading(), Some(HOLDER_LIST), "{list:?}");
    assert!(
        list.body.contains(&format!("<code>{serial}</code>")),
        "{list:?}"
    );
    let old = with(HOLDER, &a).get_page(&demo, &base, "/sertifika");
    assert_eq!(
        old.heading(),
        Some(HOLDER_SIGN_IN),
        "the code step's token opens nothing: {old:?}"
    );
    let old = with(HOLDER, &a).get_page(&demo, &base, "/sertifika/guvenlik-sozcugu");
    assert_eq!(old.heading(), Some(HOLDER_SIGN_IN), "{old:?}");

    // Çıkış: the cookie is deleted, and the token ends with it.
    let out = jar.get_page(&demo, &base, "/sertifika/cikis");
    assert_eq!(
        (out.status, out.header("Location")),
        (303, Some("/")),
        "{out:?}"
    );
    assert!(!jar.0.contains_key(HOLDER), "{jar:?}");
    let after = with(HOLDER, &b).get_page(&demo, &base, "/sertifika");
    assert_eq!(
        after.heading(),
        Some(HOLDER_SIGN_IN),
        "signed out, the token opens nothing: {after:?}"
    );

    // The applicant: signed in with the e-mailed password; signed out, the token is dead.
    let password = access_password(&demo, &CAGRI);
    let mut jar = Jar::default();
    let start = jar.get_page(&demo, &base, "/basvuru");
    assert_eq!(start.heading(), Some("Başvuru — Giriş"), "{start:?}");
    let signed_in = jar.post_form(
        &demo,
        &base,
        "/basvuru/giris",
        &[("tckn", CAGRI.tckn), ("password", &password)],
    );
    assert_eq!(signed_in.status, 303, "{signed_in:?}");
    let token = jar.get(APPLICANT).to_owned();
    let page = jar.get_page(&demo, &base, "/basvuru");
    assert_eq!(page.heading(), Some("Başvuru"), "{page:?}");
    assert!(page.body.contains("Sayın Çağrı Öztürk"), "{page:?}");
    let out = jar.get_page(&demo, &base, "/basvuru/cikis");
    assert_eq!(
        (out.status, out.header("Location")),
        (303, Some("/")),
        "{out:?}"
    );
    assert!(!jar.0.contains_key(APPLICANT), "{jar:?}");
    let csrf_only = Jar::default().with(CSRF, jar.get(CSRF));
    for path in ["/basvuru", "/basvuru/basvurularim"] {
        let after = csrf_only
            .clone()
            .with(APPLICANT, &token)
            .get_page(&demo, &base, path);
        assert_eq!(
            after.heading(),
            Some("Başvuru — Giriş"),
            "signed out, the applicant's token opens nothing: {after:?}"
        );
    }
    server.terminate(Duration::from_secs(20));
}

#[test]
fn nesca_issue_refuses_a_malformed_mobile_before_issuing() {
    let demo = server_demo();
    let csr = demo.csr("ayse", Key::P256);
    let out_file = demo.work.join("ayse.pem");
    for (flag, value) in [("--mobile", "12345"), ("--email", "a b")] {
        demo.assert_refused_unchanged(&[&flag[2..]], || {
            demo.issue(&csr, &["--out", s(&out_file), flag, value])
        });
        assert!(
            !out_file.exists(),
            "{flag} {value:?}: a certificate was written"
        );
    }
    // With both right, the same request issues.
    demo.issue_ok(
        &csr,
        "ayse.pem",
        &["--mobile", "05321234567", "--email", "ayse@example.com.tr"],
    );
}
