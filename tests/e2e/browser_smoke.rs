//! The WebDriver client of support/webdriver.rs against a real headless Chromium, on a page of
//! its own served here: finding fields by their Turkish labels (`ı` is not `i`), filling,
//! choosing, ticking, submitting, following links, downloads (a PDF too, which must not open in
//! the viewer), cookies' flags and a screenshot. The portal's browser tests rely on all of it.

use std::time::Duration;

use crate::support::file_server::{Answer, FileServer};

use crate::support::wait_for;
use crate::support::webdriver::{wait_for_file, Browser};

const FORM: &str = r#"<!doctype html>
<html lang="tr"><head><meta charset="utf-8"><title>Başvuru</title></head><body>
<h1>Başvuru</h1>
<form method="get" action="/gonder">
  <p><label for="ad">Adı Soyadı</label> <input id="ad" name="ad" value="eski değer"></p>
  <p><label for="adi">Adi Soyadi</label> <input id="adi" name="adi"></p>
  <p><label>Şehir
    <select name="sehir">
      <option value="ist">İstanbul</option>
      <option value="ank">Ankara</option>
      <option value="izm">İzmir</option>
    </select></label></p>
  <p><label>
    <input type="checkbox" name="kabul"> Koşulları kabul ediyorum
  </label></p>
  <button type="submit">Gönder</button>
</form>
<p><a href="/rapor.txt">Raporu indir</a> · <a href="/belge.pdf">PDF belgesi</a></p>
</body></html>"#;

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n\
2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n\
3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n\
trailer<</Root 1 0 R>>\n%%EOF\n";

#[test]
fn browser_fills_submits_downloads_and_screenshots() {
    let site = FileServer::serve(site);
    let base = format!("http://{}", site.addr);
    let downloads = tempfile::tempdir().expect("download directory");
    let browser = Browser::start(downloads.path());

    browser.goto(&format!("{base}/"));
    assert!(
        browser.body_text().contains("Başvuru"),
        "{}",
        browser.body_text()
    );
    browser.fill("Adı Soyadı", "Işıl Çağlar");
    assert_eq!(
        browser.input_by_label("Adı Soyadı").property("value"),
        Some("Işıl Çağlar".to_string()),
        "fill replaces what the field held"
    );
    assert_eq!(
        browser.input_by_label("Adı Soyadı").attribute("value"),
        Some("eski değer".to_string()),
        "the attribute is the markup's"
    );
    assert_eq!(
        browser.input_by_label("Adi Soyadi").attribute("id"),
        Some("adi".to_string()),
        "a label with a dotted i is another label"
    );
    browser.select_option("Şehir", "İzmir");
    browser.set_checkbox("Koşulları kabul ediyorum", true);
    browser.set_checkbox("Koşulları kabul ediyorum", true);
    assert!(browser.try_button("Sil").is_none());
    assert_eq!(browser.find_all_xpath("//option").len(), 3);
    browser.click_button("Gönder");

    let expected = "/gonder?ad=I%C5%9F%C4%B1l+%C3%87a%C4%9Flar&adi=&sehir=izm&kabul=on";
    wait_for(
        "the submitted form's page",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || {
            let url = browser.current_url();
            (url == format!("{base}{expected}"))
                .then_some(())
                .ok_or(url)
        },
    );
    let text = browser.body_text();
    assert!(text.contains("Gönderildi"), "{text}");
    assert!(text.contains(expected), "the page echoes the query: {text}");
    assert!(browser.page_source().contains("<h1>Gönderildi</h1>"));

    let cookies = browser.cookies();
    let session = cookies
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == "oturum"))
        .unwrap_or_else(|| panic!("no cookie oturum in {cookies}"));
    assert_eq!(session["httpOnly"], true, "{session}");
    assert_eq!(session["sameSite"], "Strict", "{session}");
    assert_eq!(session["secure"], false, "{session}");

    assert_eq!(browser.link("Forma dön").text(), "Forma dön");
    browser.click_link("Forma dön");
    assert_eq!(browser.current_url(), format!("{base}/"));

    browser.click_link("Raporu indir");
    let report = wait_for_file(downloads.path(), "rapor.txt", Duration::from_secs(20));
    assert_eq!(std::fs::read_to_string(&report).unwrap(), "rapor içeriği\n");
    browser.click_link("PDF belgesi");
    let pdf = wait_for_file(downloads.path(), ".pdf", Duration::from_secs(20));
    assert_eq!(std::fs::read(&pdf).unwrap(), PDF);
    assert_eq!(
        browser.current_url(),
        format!("{base}/"),
        "the PDF was saved, not opened"
    );

    let shot = downloads.path().join("ekran.png");
    browser.screenshot(&shot);
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(png.len() > 1000, "a {} byte screenshot", png.len());
}

/// The smoke test's site: the form, what it submits to, a file to save and a PDF.
fn site(target: &str) -> Answer {
    match target {
        "/" => ("200 OK", vec![html()], FORM.as_bytes().to_vec()),
        t if t.starts_with("/gonder?") => {
            let page = format!(
                "<!doctype html><html lang=\"tr\"><head><meta charset=\"utf-8\"></head><body>\
                 <h1>Gönderildi</h1><p><code>{t}</code></p><a href=\"/\">Forma dön</a>\
                 </body></html>"
            );
            let cookie = "Set-Cookie: oturum=abc; Path=/; HttpOnly; SameSite=Strict".to_string();
            ("200 OK", vec![html(), cookie], page.into_bytes())
        }
        "/rapor.txt" => (
            "200 OK",
            vec![
                "Content-Type: text/plain; charset=utf-8".to_string(),
                "Content-Disposition: attachment; filename=\"rapor.txt\"".to_string(),
            ],
            "rapor içeriği\n".as_bytes().to_vec(),
        ),
        "/belge.pdf" => (
            "200 OK",
            vec!["Content-Type: application/pdf".to_string()],
            PDF.to_vec(),
        ),
        _ => ("404 Not Found", Vec::new(), Vec::new()),
    }
}

fn html() -> String {
    "Content-Type: text/html; charset=utf-8".to_string()
}
