//! The committed test vectors: `tests/data/frm-01-03-sample.xlsx` and `.csv`, one list in both
//! formats (the csv as Turkish Excel saves "CSV UTF-8": a byte order mark, `;`, CRLF), with
//! good and bad rows, and their exact report.
//!
//! Regenerate them (only when the sample changes, then update the digests below) with
//! `cargo test -p nesca-frm-list --test vectors -- --ignored generate`.

use std::path::PathBuf;

use nesca_frm_list::{read_list, report_csv, ListFormat};
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Workbook};
use serde_json::json;

/// A cell: text, or a number cell in the xlsx (written as typed in the csv).
enum C {
    T(&'static str),
    N(f64, &'static str),
}
use C::{N, T};

fn sample() -> Vec<Vec<C>> {
    vec![
        // Columns in another order than the template, short headers, an unknown column.
        vec![
            T("Sıra"),
            T("TCKN"),
            T("Ad"),
            T("Soyad"),
            T("Unvan"),
            T("Birim"),
            T("E-Posta"),
            T("GSM"),
            T("Not"),
        ],
        // 2: valid; T.C. Kimlik No and mobile typed as numbers.
        vec![
            N(1.0, "1"),
            N(10_000_000_146.0, "10000000146"),
            T("Çağrı"),
            T("Öztürk"),
            T("Mühendis"),
            T("Bilgi İşlem Dairesi Başkanlığı"),
            T("cagri.ozturk@kurum.gov.tr"),
            N(5_321_234_567.0, "5321234567"),
        ],
        // 3: bad T.C. Kimlik No.
        vec![
            N(2.0, "2"),
            T("17291716050"),
            T("İpek"),
            T("Şahin"),
            T(""),
            T("Hukuk Müşavirliği"),
            T("ipek.sahin@kurum.gov.tr"),
            T("0533 765 43 21"),
        ],
        // 4: valid, Turkish names with capitals İ, Ş, Ü.
        vec![
            N(3.0, "3"),
            T("17291716060"),
            T("Şükrü"),
            T("ÜNAL"),
            T("Şef"),
            T("İnsan Kaynakları"),
            T("sukru.unal@KURUM.GOV.TR"),
            T("+90 (542) 111 22 33"),
            T("yeni"),
        ],
        // 5: duplicate of row 2.
        vec![
            N(4.0, "4"),
            T("10000000146"),
            T("Ayşe Nur"),
            T("Yılmaz-Çelik"),
            T(""),
            T("Strateji Geliştirme"),
            T("aysenur@kurum.gov.tr"),
            T("05551234567"),
        ],
        // 6: bad phone (a landline).
        vec![
            N(5.0, "5"),
            T("12345678950"),
            T("Ömer"),
            T("Güneş"),
            T(""),
            T("Destek Hizmetleri"),
            T("omer.gunes@kurum.gov.tr"),
            T("0312 555 12 12"),
        ],
        // 7: pre-numbered but empty: skipped.
        vec![N(6.0, "6")],
        // 8: several problems.
        vec![
            N(7.0, "7"),
            T("3456789017"),
            T("Ilgın"),
            T("Çağlayan"),
            T(""),
            T(""),
            T("ilgin.caglayan@kurum"),
            T("0544 987 65 43"),
        ],
        // 9: valid, lower-case dotless ı and an apostrophe.
        vec![
            N(8.0, "8"),
            T("56789012390"),
            T("ılgaz"),
            T("D'Ağaoğlu"),
            T("Uzman Yardımcısı"),
            T("Mali Hizmetler"),
            T("ilgaz@kurum.gov.tr"),
            T("0505 000 00 00"),
        ],
    ]
}

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

const XLSX: &str = "frm-01-03-sample.xlsx";
const CSV: &str = "frm-01-03-sample.csv";

fn expected() -> serde_json::Value {
    json!({
        "counts": {"rows": 7, "valid": 3, "invalid": 4, "problems": 6},
        "valid": [
            {"row": 2, "tckn": "10000000146", "given_name": "Çağrı", "surname": "Öztürk",
             "email": "cagri.ozturk@kurum.gov.tr", "mobile": "+905321234567",
             "unit": "Bilgi İşlem Dairesi Başkanlığı", "title": "Mühendis"},
            {"row": 4, "tckn": "17291716060", "given_name": "Şükrü", "surname": "ÜNAL",
             "email": "sukru.unal@kurum.gov.tr", "mobile": "+905421112233",
             "unit": "İnsan Kaynakları", "title": "Şef"},
            {"row": 9, "tckn": "56789012390", "given_name": "ılgaz", "surname": "D'Ağaoğlu",
             "email": "ilgaz@kurum.gov.tr", "mobile": "+905050000000",
             "unit": "Mali Hizmetler", "title": "Uzman Yardımcısı"},
        ],
        "invalid": [
            {"row": 3, "field": "tckn",
             "reason": "checksum digit 10 is wrong (not a valid T.C. Kimlik No)"},
            {"row": 5, "field": "tckn", "reason": "the same T.C. Kimlik No as row 2"},
            {"row": 6, "field": "mobile",
             "reason": "must be a mobile number: the 10-digit national number must begin with 5 (got 3125551212)"},
            {"row": 8, "field": "tckn", "reason": "must be exactly 11 digits (got 10 characters)"},
            {"row": 8, "field": "email",
             "reason": "domain \"kurum\" must be a name with a dot, such as example.com.tr"},
            {"row": 8, "field": "unit", "reason": "must not be empty"},
        ],
        "warnings": [
            "header: the column \"Not\" (column I) is not part of FRM.01.03 and is ignored"
        ],
    })
}

/// The digests of the committed files: a regenerated file must be deliberate.
const XLSX_SHA256: &str = "1364c0f20c181624814358a7be40f2071a90840f3bf973f4266fa2ee9d0b09eb";
const CSV_SHA256: &str = "2fcc9ed7ffef5e0766c6a058a93421aec41e0ff00491272e93059623e6edc5d1";

fn check(name: &str, format: ListFormat, sha256: &str) -> String {
    let bytes = std::fs::read(data(name)).unwrap();
    let report = read_list(&bytes, format).unwrap();
    assert_eq!(report.format, format);
    assert_eq!(report.file_sha256, sha256, "{name}");
    let mut json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let obj = json.as_object_mut().unwrap();
    obj.remove("format");
    obj.remove("file_sha256");
    assert_eq!(json, expected(), "{name}");
    report_csv(&report)
}

#[test]
fn the_committed_vectors_give_their_exact_report() {
    let from_xlsx = check(XLSX, ListFormat::Xlsx, XLSX_SHA256);
    let from_csv = check(CSV, ListFormat::Csv, CSV_SHA256);
    assert_eq!(from_xlsx, from_csv);
    assert_eq!(
        from_csv,
        "row,field,reason\r\n\
         3,tckn,checksum digit 10 is wrong (not a valid T.C. Kimlik No)\r\n\
         5,tckn,the same T.C. Kimlik No as row 2\r\n\
         6,mobile,must be a mobile number: the 10-digit national number must begin with 5 (got 3125551212)\r\n\
         8,tckn,must be exactly 11 digits (got 10 characters)\r\n\
         8,email,\"domain \"\"kurum\"\" must be a name with a dot, such as example.com.tr\"\r\n\
         8,unit,must not be empty\r\n"
    );
}

#[test]
#[ignore = "writes tests/data; run once when the sample changes"]
fn generate() {
    let rows = sample();
    let mut workbook = Workbook::new();
    let created = ExcelDateTime::from_ymd(2026, 1, 1).unwrap();
    workbook.set_properties(&DocProperties::new().set_creation_datetime(&created));
    let sheet = workbook.add_worksheet();
    sheet.set_name("FRM.01.03").unwrap();
    let mut csv = String::from("\u{feff}");
    for (r, row) in rows.iter().enumerate() {
        let mut fields = Vec::new();
        for (c, cell) in row.iter().enumerate() {
            match cell {
                T(t) => {
                    if !t.is_empty() {
                        sheet.write_string(r as u32, c as u16, *t).unwrap();
                    }
                    fields.push(t.to_string());
                }
                N(n, typed) => {
                    sheet.write_number(r as u32, c as u16, *n).unwrap();
                    fields.push(typed.to_string());
                }
            }
        }
        csv.push_str(&fields.join(";"));
        csv.push_str("\r\n");
    }
    workbook.save(data(XLSX)).unwrap();
    std::fs::write(data(CSV), csv).unwrap();
}
