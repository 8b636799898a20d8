//! Whole-list tests: both readers, the checks, the report, the limits, hostile input.

use rust_xlsxwriter::Workbook;
use serde_json::json;

use super::*;

/// A cell of a test sheet: text, a number (written as a number cell in xlsx), or nothing.
#[derive(Clone)]
enum C {
    T(&'static str),
    N(f64),
    E,
}

const HEADER: [&str; 9] = [
    "Sıra No",
    "T.C. Kimlik No",
    "Adı",
    "Soyadı",
    "E-posta",
    "Cep Telefonu",
    "Birim",
    "Unvan",
    "Açıklama",
];

/// Good and bad rows: rows 2, 7 and 9 are valid; 3 has a bad T.C. Kimlik No, 4 a landline,
/// 5 repeats row 2's number, 6 is empty but for its "Sıra No", 8 has five problems.
fn sample() -> Vec<Vec<C>> {
    use C::*;
    let mut rows = vec![HEADER.iter().map(|h| T(h)).collect::<Vec<_>>()];
    rows.extend([
        vec![
            N(1.0),
            N(10_000_000_146.0),
            T("Çağrı"),
            T("Öztürk"),
            T("cagri.ozturk@example.gov.tr"),
            T("0532 123 45 67"),
            T("Bilgi İşlem Dairesi"),
            T("Uzman"),
        ],
        vec![
            N(2.0),
            T("17291716050"),
            T("İpek"),
            T("Şahin"),
            T("ipek.sahin@example.gov.tr"),
            T("05321234568"),
            T("Hukuk Müşavirliği"),
        ],
        vec![
            N(3.0),
            T("17291716060"),
            T("Şükrü"),
            T("Öztürk"),
            T("sukru.ozturk@EXAMPLE.GOV.TR"),
            T("+90 212 555 12 12"),
            T("İnsan Kaynakları"),
        ],
        vec![
            N(4.0),
            T("10000000146"),
            T("Ayşe Nur"),
            T("Yılmaz-Çelik"),
            T("ayse@example.gov.tr"),
            T("5551234567"),
            T("Strateji Geliştirme"),
        ],
        vec![N(5.0)],
        vec![
            N(6.0),
            T(" 12345678950 "),
            T("Ömer Faruk"),
            T("Güneş"),
            T("omer@example.gov.tr"),
            N(5_061_112_233.0),
            T("Destek Hizmetleri"),
            T("Şef"),
        ],
        vec![
            N(7.0),
            T("1234"),
            T("Ali3"),
            T("Kaya"),
            T("ali.example.gov.tr"),
            T("0532"),
            E,
        ],
        vec![
            N(8.0),
            T("34567890170"),
            T("İlknur"),
            T("Çağlayan"),
            T("ilknur@example.gov.tr"),
            T("0 (544) 987-65-43"),
            T("\u{a0}Bilgi İşlem Dairesi "),
            E,
            T("not: yeni personel"),
        ],
    ]);
    rows
}

/// The exact report of [`sample`], without format and digest.
fn sample_expected() -> serde_json::Value {
    json!({
        "counts": {"rows": 7, "valid": 3, "invalid": 4, "problems": 8},
        "valid": [
            {"row": 2, "tckn": "10000000146", "given_name": "Çağrı", "surname": "Öztürk",
             "email": "cagri.ozturk@example.gov.tr", "mobile": "+905321234567",
             "unit": "Bilgi İşlem Dairesi", "title": "Uzman"},
            {"row": 7, "tckn": "12345678950", "given_name": "Ömer Faruk", "surname": "Güneş",
             "email": "omer@example.gov.tr", "mobile": "+905061112233",
             "unit": "Destek Hizmetleri", "title": "Şef"},
            {"row": 9, "tckn": "34567890170", "given_name": "İlknur", "surname": "Çağlayan",
             "email": "ilknur@example.gov.tr", "mobile": "+905449876543",
             "unit": "Bilgi İşlem Dairesi", "title": null},
        ],
        "invalid": [
            {"row": 3, "field": "tckn",
             "reason": "checksum digit 10 is wrong (not a valid T.C. Kimlik No)"},
            {"row": 4, "field": "mobile",
             "reason": "must be a mobile number: the 10-digit national number must begin with 5 (got 2125551212)"},
            {"row": 5, "field": "tckn", "reason": "the same T.C. Kimlik No as row 2"},
            {"row": 8, "field": "tckn", "reason": "must be exactly 11 digits (got 4 characters)"},
            {"row": 8, "field": "given_name",
             "reason": "character '3' is not allowed (letters, spaces, '-', '\\'' and '.' only)"},
            {"row": 8, "field": "email", "reason": "must contain an '@'"},
            {"row": 8, "field": "mobile",
             "reason": "must be written as 05321234567, 5321234567, +905321234567 or 905321234567 (got 4 digits)"},
            {"row": 8, "field": "unit", "reason": "must not be empty"},
        ],
        "warnings": [
            "header: the column \"Açıklama\" (column I) is not part of FRM.01.03 and is ignored"
        ],
    })
}

fn xlsx(rows: &[Vec<C>]) -> Vec<u8> {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("Liste").unwrap();
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let (r, c) = (r as u32, c as u16);
            match cell {
                C::T(t) => {
                    sheet.write_string(r, c, *t).unwrap();
                }
                C::N(n) => {
                    sheet.write_number(r, c, *n).unwrap();
                }
                C::E => {}
            }
        }
    }
    workbook.save_to_buffer().unwrap()
}

fn csv_text(rows: &[Vec<C>], sep: char) -> String {
    let mut out = String::new();
    for row in rows {
        let fields: Vec<String> = row
            .iter()
            .map(|cell| {
                let t = match cell {
                    C::T(t) => t.to_string(),
                    C::N(n) => xlsx::number_text(*n),
                    C::E => String::new(),
                };
                if t.contains([sep, '"', '\n', '\r']) {
                    format!("\"{}\"", t.replace('"', "\"\""))
                } else {
                    t
                }
            })
            .collect();
        out.push_str(&fields.join(&sep.to_string()));
        out.push_str("\r\n");
    }
    out
}

/// The report as JSON without `format` and `file_sha256`, after checking those two.
fn body(bytes: &[u8], format: ListFormat) -> serde_json::Value {
    let report = read_list(bytes, format).unwrap_or_else(|e| panic!("{e}"));
    let mut v: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let obj = v.as_object_mut().unwrap();
    assert_eq!(obj.remove("format").unwrap(), json!(format.as_str()));
    assert_eq!(
        obj.remove("file_sha256").unwrap(),
        json!(hex::encode(Sha256::digest(bytes)))
    );
    v
}

#[test]
fn xlsx_with_good_and_bad_rows_gives_the_exact_report() {
    assert_eq!(body(&xlsx(&sample()), ListFormat::Xlsx), sample_expected());
}

#[test]
fn csv_with_good_and_bad_rows_gives_the_exact_report() {
    let text = csv_text(&sample(), ',');
    assert_eq!(body(text.as_bytes(), ListFormat::Csv), sample_expected());
}

#[test]
fn semicolons_bom_and_line_ends_do_not_change_the_report() {
    let semicolon = csv_text(&sample(), ';');
    let with_bom = format!("\u{feff}{semicolon}");
    let lf_only = semicolon.replace("\r\n", "\n");
    for text in [&semicolon, &with_bom, &lf_only] {
        assert_eq!(body(text.as_bytes(), ListFormat::Csv), sample_expected());
    }
}

#[test]
fn turkish_names_round_trip_exactly() {
    let names = [
        ("Çağrı", "Öztürk"),
        ("İpek", "Şahin"),
        ("Şükrü", "Öztürk"),
        ("IŞIL", "ÇİĞDEM"),
        ("ılgın", "Ünal-Ağaoğlu"),
        ("Ahmet Can", "O'Neil"),
    ];
    let mut rows = vec![HEADER[..7].iter().map(|h| C::T(h)).collect::<Vec<_>>()];
    let tckns = [
        "10000000146",
        "17291716060",
        "12345678950",
        "34567890170",
        "56789012390",
        "24051732598",
    ];
    for ((given, surname), tckn) in names.iter().zip(tckns) {
        rows.push(vec![
            C::E,
            C::T(tckn),
            C::T(given),
            C::T(surname),
            C::T("a@example.gov.tr"),
            C::T("05321234567"),
            C::T("Birim"),
        ]);
    }
    let csv = csv_text(&rows, ',');
    for report in [
        read_list(&xlsx(&rows), ListFormat::Xlsx).unwrap(),
        read_list(csv.as_bytes(), ListFormat::Csv).unwrap(),
    ] {
        assert_eq!(report.counts.valid, names.len(), "{:?}", report.invalid);
        for (row, (given, surname)) in report.valid.iter().zip(names) {
            assert_eq!(row.given_name.as_str(), given);
            assert_eq!(row.surname.as_str(), surname);
        }
        // The JSON holds the same characters, not escapes or a case-folded form.
        let json = report.to_json();
        for (given, surname) in names {
            assert!(
                json.contains(&format!("\"given_name\":\"{given}\"")),
                "{json}"
            );
            assert!(
                json.contains(&format!("\"surname\":\"{surname}\"")),
                "{json}"
            );
        }
    }
}

/// A one-row csv list with the given values for tckn, given name, surname, email, mobile,
/// unit and title; the problems of row 2.
fn problems_of(values: [&str; 7]) -> Vec<(&'static str, String)> {
    let mut text = String::from("TCKN,Adı,Soyadı,E-posta,GSM,Birim,Unvan\n");
    let quoted: Vec<String> = values
        .iter()
        .map(|v| format!("\"{}\"", v.replace('"', "\"\"")))
        .collect();
    text.push_str(&quoted.join(","));
    let report = read_list(text.as_bytes(), ListFormat::Csv).unwrap();
    assert_eq!(report.counts.rows, 1);
    assert_eq!(report.counts.valid + report.counts.invalid, 1);
    report
        .invalid
        .into_iter()
        .map(|p| {
            assert_eq!(p.row, 2);
            (p.field, p.reason)
        })
        .collect()
}

const GOOD: [&str; 7] = [
    "10000000146",
    "Çağrı",
    "Öztürk",
    "cagri@example.gov.tr",
    "05321234567",
    "Bilgi İşlem",
    "Uzman",
];

fn with(index: usize, value: &'static str) -> [&'static str; 7] {
    let mut v = GOOD;
    v[index] = value;
    v
}

#[test]
fn each_row_check_names_its_field_and_reason() {
    assert!(problems_of(GOOD).is_empty());
    assert!(problems_of(with(6, "")).is_empty(), "Unvan is optional");
    let long_unit = "B".repeat(129);
    let long_unit: &'static str = Box::leak(long_unit.into_boxed_str());
    let cases: Vec<([&str; 7], &str, &str)> = vec![
        (with(0, ""), "tckn", "must not be empty"),
        (with(0, "1000000014"), "tckn", "must be exactly 11 digits (got 10 characters)"),
        (with(0, "01234567890"), "tckn", "must not begin with 0"),
        (with(0, "1000000014a"), "tckn", "must contain digits only"),
        (with(0, "17291716050"), "tckn", "checksum digit 10 is wrong (not a valid T.C. Kimlik No)"),
        (with(0, "10000000147"), "tckn", "checksum digit 11 is wrong (not a valid T.C. Kimlik No)"),
        (with(0, "1.0000000146E10"), "tckn", "must be exactly 11 digits (got 15 characters)"),
        (with(1, ""), "given_name", "must not be empty"),
        (with(1, "Ali  Veli"), "given_name", "must not contain two spaces in a row"),
        (with(2, "Öztürk2"), "surname", "character '2' is not allowed (letters, spaces, '-', '\\'' and '.' only)"),
        (with(3, ""), "email", "must not be empty"),
        (with(3, "a@b@example.gov.tr"), "email", "must contain exactly one '@'"),
        (with(3, "cagri@localhost"), "email", "domain \"localhost\" must be a name with a dot, such as example.com.tr"),
        (with(4, ""), "mobile", "must not be empty"),
        (with(4, "03121234567"), "mobile", "must be a mobile number: the 10-digit national number must begin with 5 (got 3121234567)"),
        (with(4, "+15551234567"), "mobile", "must be a Turkish number: '+' must be followed by the country code 90"),
        (with(4, "0532123456"), "mobile", "must be a mobile number: the 10-digit national number must begin with 5 (got 0532123456)"),
        (with(4, "053212345678"), "mobile", "must be written as 05321234567, 5321234567, +905321234567 or 905321234567 (got 12 digits)"),
        (with(5, ""), "unit", "must not be empty"),
        (with(5, long_unit), "unit", "must be at most 128 characters (got 129)"),
        (with(5, "Bilgi\nİşlem"), "unit", "control character '\\n' is not allowed"),
        (with(6, "Uz\u{7}man"), "title", "control character '\\u{7}' is not allowed"),
    ];
    for (values, field, reason) in cases {
        assert_eq!(
            problems_of(values),
            vec![(field, reason.to_string())],
            "{values:?}"
        );
    }
    // 128 characters, and every accepted mobile form.
    assert!(problems_of(with(5, Box::leak("Ü".repeat(128).into_boxed_str()))).is_empty());
    for mobile in [
        "5321234567",
        "+905321234567",
        "905321234567",
        "0 (532) 123-45-67",
    ] {
        assert!(problems_of(with(4, mobile)).is_empty(), "{mobile}");
    }
}

#[test]
fn duplicates_point_at_the_first_row() {
    let text = "TCKN;Ad;Soyad;Eposta;Cep Tel;Birim\n\
                10000000146;Ali;Kaya;a@example.gov.tr;05321234567;A\n\
                17291716060;Veli;Kaya;v@example.gov.tr;05321234567;A\n\
                10000000146;Ali;Kaya;a@example.gov.tr;05321234567;A\n\
                17291716060;Veli;Kaya;bad-mail;05321234567;A\n\
                10000000146;Ali;Kaya;a@example.gov.tr;05321234567;A\n";
    let report = read_list(text.as_bytes(), ListFormat::Csv).unwrap();
    let got: Vec<(u32, &str, &str)> = report
        .invalid
        .iter()
        .map(|p| (p.row, p.field, p.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (4, "tckn", "the same T.C. Kimlik No as row 2"),
            (5, "tckn", "the same T.C. Kimlik No as row 3"),
            (5, "email", "must contain an '@'"),
            (6, "tckn", "the same T.C. Kimlik No as row 2"),
        ]
    );
    assert_eq!(
        report.valid.iter().map(|r| r.row).collect::<Vec<_>>(),
        [2, 3]
    );
    assert_eq!(report.valid[0].identity().as_str(), "10000000146");
    // The first occurrence counts even when that row is invalid for another reason.
    let text = "TCKN,Ad,Soyad,Eposta,GSM,Birim\n\
                10000000146,Ali,Kaya,bad,05321234567,A\n\
                10000000146,Ali,Kaya,a@example.gov.tr,05321234567,A\n";
    let report = read_list(text.as_bytes(), ListFormat::Csv).unwrap();
    assert_eq!(report.counts.invalid, 2);
    assert_eq!(report.invalid[1].reason, "the same T.C. Kimlik No as row 2");
}

#[test]
fn numbers_in_xlsx_cells_read_as_typed() {
    use C::*;
    let rows = vec![
        HEADER[1..7].iter().map(|h| T(h)).collect::<Vec<_>>(),
        vec![
            N(17_291_716_060.0),
            T("Ali"),
            T("Kaya"),
            T("a@example.gov.tr"),
            N(5_321_234_567.0),
            T("A"),
        ],
        vec![
            N(1.0000000146e10),
            T("Veli"),
            T("Kaya"),
            T("v@example.gov.tr"),
            N(905_321_234_567.0),
            N(42.0),
        ],
        vec![
            N(1_729_171_606.5),
            T("Veli"),
            T("Kaya"),
            T("v@example.gov.tr"),
            T("05321234567"),
            T("A"),
        ],
    ];
    let report = read_list(&xlsx(&rows), ListFormat::Xlsx).unwrap();
    assert_eq!(report.valid.len(), 2, "{:?}", report.invalid);
    assert_eq!(report.valid[0].tckn.as_str(), "17291716060");
    assert_eq!(report.valid[0].mobile.as_str(), "+905321234567");
    assert_eq!(report.valid[1].tckn.as_str(), "10000000146");
    assert_eq!(report.valid[1].unit, "42");
    assert_eq!(
        report.invalid,
        [RowProblem {
            row: 4,
            field: "tckn",
            reason: "must be exactly 11 digits (got 12 characters)".into()
        }]
    );
}

#[test]
fn empty_rows_are_skipped_and_row_numbers_are_the_spreadsheets() {
    use C::*;
    let person = |tckn: &'static str| {
        vec![
            E,
            T(tckn),
            T("Ali"),
            T("Kaya"),
            T("a@example.gov.tr"),
            T("05321234567"),
            T("A"),
        ]
    };
    // Two empty rows above the header, an empty and a numbered-only row between people.
    let rows = vec![
        vec![],
        vec![E, T("  ")],
        HEADER[..7].iter().map(|h| T(h)).collect(),
        person("10000000146"),
        vec![],
        vec![N(3.0), T(" ")],
        person("1"),
        vec![
            E,
            E,
            E,
            E,
            E,
            E,
            E,
            E,
            T("only a note in an unknown column"),
        ],
    ];
    let check = |report: ListReport| {
        assert_eq!(report.counts.rows, 2);
        assert_eq!(report.valid[0].row, 4);
        assert_eq!(report.invalid[0].row, 7);
        assert_eq!(
            report.warnings,
            ["header: column I has values but no header (first in row 8); they are ignored"]
        );
    };
    check(read_list(&xlsx(&rows), ListFormat::Xlsx).unwrap());
    // In a csv a blank line is a row, and a quoted line break stays in its row.
    let text = "\n,  \nSıra No,TCKN,Adı,Soyadı,E-posta,GSM,Birim\n\
                ,10000000146,Ali,Kaya,a@example.gov.tr,05321234567,A\n\
                \n3, \n,1,Ali,Kaya,a@example.gov.tr,05321234567,A\n,,,,,,,,only a note\n";
    check(read_list(text.as_bytes(), ListFormat::Csv).unwrap());
    let text = "TCKN,Adı,Soyadı,E-posta,GSM,Birim\n\
                10000000146,Ali,Kaya,a@example.gov.tr,05321234567,\"Bilgi\r\nİşlem\"\n\
                \n\
                1,Ali,Kaya,a@example.gov.tr,05321234567,A\n";
    let report = read_list(text.as_bytes(), ListFormat::Csv).unwrap();
    let rows: Vec<(u32, &str)> = report.invalid.iter().map(|p| (p.row, p.field)).collect();
    assert_eq!(rows, [(2, "unit"), (4, "tckn")]);
    // Blank lines after CRLF, LF and CR line ends, quoted line breaks of each kind.
    let text = "TCKN,Ad,Soyad,Eposta,GSM,Birim\n1,\"x\r\ny\"\n\n2,z\n\n\n3,w\r\n4,\"a\nb\nc\"\n5,q\r\n\r\n6\r\r7\n";
    let report = read_list(text.as_bytes(), ListFormat::Csv).unwrap();
    let rows: Vec<u32> = report
        .invalid
        .iter()
        .filter(|p| p.field == "tckn")
        .map(|p| p.row)
        .collect();
    assert_eq!(rows, [2, 4, 7, 8, 9, 11, 13]);
}

#[test]
fn header_problems_refuse_the_file() {
    let e = read_list(b"Adi,Soyadi,E-posta,GSM,Birim\n", ListFormat::Csv).unwrap_err();
    assert_eq!(
        e.to_string(),
        "header: the column \"T.C. Kimlik No\" is missing"
    );
    let e = read_list(
        &xlsx(&[vec![C::T("TCKN"), C::T("Ad Soyad"), C::T("E-posta")]]),
        ListFormat::Xlsx,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "header: the columns \"Adı\", \"Soyadı\", \"Cep Telefonu\", \"Birim\" are missing"
    );
    let e = read_list(b"TCKN;Ad;Soyad;Eposta;GSM;Birim;Cep Tel", ListFormat::Csv).unwrap_err();
    assert_eq!(
        e.to_string(),
        "header: the column \"Cep Telefonu\" appears twice (columns E and G)"
    );
    for empty in [&b""[..], b"\xef\xbb\xbf", b"\n\n ,, \n", b"\r\n;  ;\r\n"] {
        assert_eq!(
            read_list(empty, ListFormat::Csv).unwrap_err(),
            ListError::Empty
        );
    }
    assert_eq!(
        read_list(&xlsx(&[]), ListFormat::Xlsx).unwrap_err(),
        ListError::Empty
    );
    // A header alone: an empty report with a warning.
    let report = read_list(b"TCKN,Ad,Soyad,Eposta,GSM,Birim\n", ListFormat::Csv).unwrap();
    assert_eq!(report.counts, ListCounts::default());
    assert_eq!(report.warnings, ["list: no rows after the header"]);
}

#[test]
fn other_worksheets_and_hidden_ones_are_warnings() {
    let mut workbook = Workbook::new();
    let first = workbook.add_worksheet();
    for (c, h) in HEADER[1..7].iter().enumerate() {
        first.write_string(0, c as u16, *h).unwrap();
    }
    first.set_hidden(true);
    let second = workbook.add_worksheet();
    second.write_string(0, 0, "other").unwrap();
    second.set_active(true);
    let bytes = workbook.save_to_buffer().unwrap();
    let report = read_list(&bytes, ListFormat::Xlsx).unwrap();
    assert_eq!(
        report.warnings,
        [
            "xlsx: the workbook has 2 worksheets; only the first, \"Sheet1\", is read",
            "xlsx: the worksheet \"Sheet1\" is hidden; it is read all the same",
            "list: no rows after the header",
        ]
    );
}

#[test]
fn csv_must_be_utf8() {
    // "Şahin" in Windows-1254 on line 3.
    let e = read_list(
        b"TCKN,Ad,Soyad,Eposta,GSM,Birim\n10000000146,Ali,Kaya,a@b.tr,05321234567,A\n17291716060,Ay\xfee,\xdeahin,x@b.tr,05321234567,A\n",
        ListFormat::Csv,
    )
    .unwrap_err();
    assert_eq!(e, ListError::CsvNotUtf8 { line: 3 });
    assert!(
        e.to_string().starts_with("csv: line 3 is not UTF-8 text"),
        "{e}"
    );
}

#[test]
fn formats_from_file_names() {
    assert_eq!(
        ListFormat::from_file_name("liste.xlsx").unwrap(),
        ListFormat::Xlsx
    );
    assert_eq!(
        ListFormat::from_file_name("LİSTE.XLSX").unwrap(),
        ListFormat::Xlsx
    );
    assert_eq!(
        ListFormat::from_file_name("a/b/liste.Csv").unwrap(),
        ListFormat::Csv
    );
    let e = ListFormat::from_file_name("liste.xls").unwrap_err();
    assert_eq!(
        e.to_string(),
        "file: \"liste.xls\" is not a list: the name must end in .xlsx or .csv"
    );
}

#[test]
fn the_json_field_names_are_stable() {
    let text = "TCKN,Ad,Soyad,Eposta,GSM,Birim\n10000000146,Çağrı,Öztürk,c@example.gov.tr,05321234567,A\n1,Ali,Kaya,a@example.gov.tr,05321234567,A\n";
    let report = read_list(text.as_bytes(), ListFormat::Csv).unwrap();
    assert_eq!(
        report.to_json(),
        format!(
            "{{\"format\":\"csv\",\"file_sha256\":\"{}\",\
             \"counts\":{{\"rows\":2,\"valid\":1,\"invalid\":1,\"problems\":1}},\
             \"valid\":[{{\"row\":2,\"tckn\":\"10000000146\",\"given_name\":\"Çağrı\",\
             \"surname\":\"Öztürk\",\"email\":\"c@example.gov.tr\",\"mobile\":\"+905321234567\",\
             \"unit\":\"A\",\"title\":null}}],\
             \"invalid\":[{{\"row\":3,\"field\":\"tckn\",\
             \"reason\":\"must be exactly 11 digits (got 1 characters)\"}}],\
             \"warnings\":[]}}",
            hex::encode(Sha256::digest(text.as_bytes()))
        )
    );
    assert_eq!(
        report_csv(&report),
        "row,field,reason\r\n3,tckn,must be exactly 11 digits (got 1 characters)\r\n"
    );
}

#[test]
fn too_large_files_and_too_many_rows_are_refused() {
    let big = vec![b' '; (MAX_FILE_BYTES + 1) as usize];
    for format in [ListFormat::Xlsx, ListFormat::Csv] {
        let e = read_list(&big, format).unwrap_err();
        assert_eq!(
            e,
            ListError::FileTooLarge {
                size: MAX_FILE_BYTES + 1
            }
        );
        assert_eq!(
            e.to_string(),
            "file: 67108865 bytes is over the limit of 67108864 bytes (64 MiB)"
        );
    }
    let mut text = String::from("TCKN,Ad,Soyad,Eposta,GSM,Birim\n");
    for _ in 0..MAX_ROWS {
        text.push_str("1\n");
    }
    let report = read_list(text.as_bytes(), ListFormat::Csv).unwrap();
    assert_eq!(report.counts.rows, MAX_ROWS);
    text.push_str("1\n");
    let e = read_list(text.as_bytes(), ListFormat::Csv).unwrap_err();
    assert_eq!(e, ListError::TooManyRows);
    assert_eq!(
        e.to_string(),
        "list: more than 200000 rows, the limit of one list (split it into several files)"
    );
}

#[test]
fn not_a_workbook_is_a_clear_error() {
    let cases: [(&[u8], &str); 4] = [
        (b"", "xlsx: not a readable workbook: not a zip archive (an .xlsx file is one)"),
        (b"TCKN,Ad\n", "xlsx: not a readable workbook: not a zip archive (an .xlsx file is one)"),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\0\0\0\0",
            "xlsx: not a readable workbook: this is an Excel 97-2003 (.xls) or password-protected workbook; save it as .xlsx without a password",
        ),
        (b"PK\x03\x04\0\0", "xlsx: not a readable workbook: the zip archive is truncated or damaged"),
    ];
    for (bytes, want) in cases {
        assert_eq!(
            read_list(bytes, ListFormat::Xlsx).unwrap_err().to_string(),
            want
        );
    }
}

// --- hand-made zip archives, for the structure checks ---------------------------------------

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A zip of stored entries; `declared` overrides an entry's uncompressed size in the
/// central directory.
fn stored_zip(entries: &[(&str, Vec<u8>)], declared: Option<(&str, u32)>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = out.len() as u32;
        let crc = crc32(data);
        let size = data.len() as u32;
        let mut local = b"PK\x03\x04".to_vec();
        local.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
        local.extend_from_slice(&crc.to_le_bytes());
        local.extend_from_slice(&size.to_le_bytes());
        local.extend_from_slice(&size.to_le_bytes());
        local.extend_from_slice(&(name.len() as u16).to_le_bytes());
        local.extend_from_slice(&0u16.to_le_bytes());
        local.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&local);
        out.extend_from_slice(data);
        let usize_ = match declared {
            Some((n, s)) if n == *name => s,
            _ => size,
        };
        central.extend_from_slice(b"PK\x01\x02");
        central.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&usize_.to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    let n = entries.len() as u16;
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A minimal workbook: header from shared strings announcing `unique_count`, one person.
fn hand_made_workbook(sst_start: &str) -> Vec<(&'static str, Vec<u8>)> {
    const MAIN: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
    const REL: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
    const PKG: &str = "http://schemas.openxmlformats.org/package/2006/relationships";
    let headers = ["TCKN", "Ad", "Soyad", "Eposta", "GSM", "Birim"];
    let mut sst = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{sst_start}");
    for h in headers {
        sst.push_str(&format!("<si><t>{h}</t></si>"));
    }
    sst.push_str("</sst>");
    let mut sheet = format!("<worksheet xmlns=\"{MAIN}\"><sheetData><row r=\"1\">");
    for (i, col) in ["A", "B", "C", "D", "E", "F"].iter().enumerate() {
        sheet.push_str(&format!("<c r=\"{col}1\" t=\"s\"><v>{i}</v></c>"));
    }
    sheet.push_str("</row><row r=\"2\"><c r=\"A2\"><v>10000000146</v></c>");
    for (col, v) in [
        ("B", "Çağrı"),
        ("C", "Öztürk"),
        ("D", "c@example.gov.tr"),
        ("E", "05321234567"),
        ("F", "Birim"),
    ] {
        sheet.push_str(&format!(
            "<c r=\"{col}2\" t=\"inlineStr\"><is><t>{v}</t></is></c>"
        ));
    }
    sheet.push_str("</row></sheetData></worksheet>");
    vec![
        (
            "[Content_Types].xml",
            b"<?xml version=\"1.0\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"/>".to_vec(),
        ),
        (
            "_rels/.rels",
            format!("<Relationships xmlns=\"{PKG}\"><Relationship Id=\"rId1\" Type=\"{REL}/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>").into_bytes(),
        ),
        (
            "xl/workbook.xml",
            format!("<workbook xmlns=\"{MAIN}\" xmlns:r=\"{REL}\"><sheets><sheet name=\"Liste\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>").into_bytes(),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            format!("<Relationships xmlns=\"{PKG}\"><Relationship Id=\"rId1\" Type=\"{REL}/worksheet\" Target=\"worksheets/sheet1.xml\"/><Relationship Id=\"rId2\" Type=\"{REL}/sharedStrings\" Target=\"sharedStrings.xml\"/></Relationships>").into_bytes(),
        ),
        ("xl/worksheets/sheet1.xml", sheet.into_bytes()),
        ("xl/sharedStrings.xml", sst.into_bytes()),
    ]
}

#[test]
fn a_hand_made_stored_workbook_reads() {
    let bytes = stored_zip(
        &hand_made_workbook("<sst xmlns=\"x\" count=\"6\" uniqueCount=\"6\">"),
        None,
    );
    let report = read_list(&bytes, ListFormat::Xlsx).unwrap();
    assert_eq!(report.counts.valid, 1, "{report:?}");
    assert_eq!(report.valid[0].given_name.as_str(), "Çağrı");
}

#[test]
fn hostile_zip_structures_are_refused_before_calamine() {
    let refused = |bytes: Vec<u8>, want: &str| {
        let e = read_list(&bytes, ListFormat::Xlsx).unwrap_err().to_string();
        assert!(e.starts_with("xlsx: not a readable workbook: "), "{e}");
        assert!(e.contains(want), "{e} (wanted {want:?})");
    };
    // calamine would reserve room for ten billion strings and abort the process.
    refused(
        stored_zip(
            &hand_made_workbook("<sst uniqueCount=\"10000000000\">"),
            None,
        ),
        "the shared strings part announces 10000000000 unique strings, over the limit of 10000000",
    );
    refused(
        stored_zip(
            &hand_made_workbook("<!-- padding --><wrapper/><sst uniqueCount=\"1\">"),
            None,
        ),
        "the shared strings part does not begin with its <sst> element",
    );
    let padding = format!("<!--{}--><sst uniqueCount=\"1\">", "x".repeat(20_000));
    refused(
        stored_zip(&hand_made_workbook(&padding), None),
        "the shared strings part does not begin with its <sst> element",
    );
    let parts = hand_made_workbook("<sst>");
    refused(
        stored_zip(
            &parts,
            Some((
                "xl/sharedStrings.xml",
                (MAX_SHARED_STRINGS_BYTES + 1) as u32,
            )),
        ),
        "the part \"xl/sharedstrings.xml\" expands to 134217729 bytes, over the limit of 134217728",
    );
    refused(
        stored_zip(&parts, Some(("xl/workbook.xml", 9 << 20))),
        "the part \"xl/workbook.xml\" expands to 9437184 bytes, over the limit of 8388608",
    );
    let mut twice = parts.clone();
    twice.push(("XL/SharedStrings.xml", b"<sst>".to_vec()));
    refused(
        stored_zip(&twice, None),
        "holds the part \"xl/sharedstrings.xml\" twice",
    );
    // Data before the archive, or a central directory that is not where the end says.
    let mut prefixed = b"PK\x03\x04junk".to_vec();
    prefixed.extend(stored_zip(&parts, None));
    refused(
        prefixed,
        "the zip central directory is not where its end record says",
    );
    let mut trailing = stored_zip(&parts, None);
    trailing.extend_from_slice(b"trailing bytes");
    let eocd = trailing.len() - 22 - 14;
    trailing[eocd + 20] = 14; // a comment covering the trailing bytes: fine
    assert!(read_list(&trailing, ListFormat::Xlsx).is_ok());
    trailing[eocd + 20] = 15; // a comment past the end
    refused(trailing, "the zip archive is truncated or damaged");
}

/// The hand-made workbook with another worksheet: `rows` is the XML inside `<sheetData>`;
/// the shared strings 0..6 are the header texts TCKN, Ad, Soyad, Eposta, GSM, Birim.
fn with_sheet(rows: &str) -> Vec<u8> {
    let mut parts = hand_made_workbook("<sst>");
    let sheet = format!(
        "<worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\">\
         <sheetData>{rows}</sheetData></worksheet>"
    );
    for (name, data) in parts.iter_mut() {
        if *name == "xl/worksheets/sheet1.xml" {
            *data = sheet.clone().into_bytes();
        }
    }
    stored_zip(&parts, None)
}

const HEADER_ROW: &str = "<row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c><c r=\"B1\" t=\"s\"><v>1</v></c>\
    <c r=\"C1\" t=\"s\"><v>2</v></c><c r=\"D1\" t=\"s\"><v>3</v></c><c r=\"E1\" t=\"s\"><v>4</v></c>\
    <c r=\"F1\" t=\"s\"><v>5</v></c></row>";

#[test]
fn malformed_cell_references_are_refused_not_a_crash() {
    // Cells of the header in reverse order: read by their references.
    let reversed = "<row r=\"1\"><c r=\"F1\" t=\"s\"><v>5</v></c><c r=\"E1\" t=\"s\"><v>4</v></c>\
        <c r=\"D1\" t=\"s\"><v>3</v></c><c r=\"C1\" t=\"s\"><v>2</v></c><c r=\"B1\" t=\"s\"><v>1</v></c>\
        <c r=\"A1\" t=\"s\"><v>0</v></c></row>";
    let report = read_list(&with_sheet(reversed), ListFormat::Xlsx).unwrap();
    assert_eq!(report.warnings, ["list: no rows after the header"]);
    let beyond = format!("{HEADER_ROW}<row r=\"2\"><c r=\"XFE2\"><v>1</v></c></row>");
    assert_eq!(
        read_list(&with_sheet(&beyond), ListFormat::Xlsx)
            .unwrap_err()
            .to_string(),
        "xlsx: the worksheet \"Liste\" could not be read: it has a cell beyond column XFD (row 2)"
    );
    let backwards = format!("{HEADER_ROW}<row r=\"3\"><c r=\"A3\"><v>1</v></c></row><row r=\"2\"><c r=\"A2\"><v>1</v></c></row>");
    assert_eq!(
        read_list(&with_sheet(&backwards), ListFormat::Xlsx).unwrap_err().to_string(),
        "xlsx: the worksheet \"Liste\" could not be read: its rows are out of order (row 2 after row 3)"
    );
    // References whose column or row overflow calamine's u32 counters.
    for cell in ["ZZZZZZZZZZZZ2", "A99999999999", "A4294967296"] {
        let sheet = format!("{HEADER_ROW}<row><c r=\"{cell}\"><v>1</v></c><c><v>2</v></c></row>");
        let e = read_list(&with_sheet(&sheet), ListFormat::Xlsx)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("xlsx: "), "{cell}: {e}");
    }
    let mut wide = String::from("TCKN,Ad,Soyad,Eposta,GSM,Birim\n");
    wide.push_str(&",".repeat(MAX_COLUMNS as usize));
    assert_eq!(
        read_list(wide.as_bytes(), ListFormat::Csv)
            .unwrap_err()
            .to_string(),
        "csv: line 2: more than 16384 fields"
    );
}

#[test]
fn the_inflater_reproduces_every_part_of_a_real_workbook() {
    // Every deflated part of a rust_xlsxwriter workbook decodes to its declared size and CRC.
    let bytes = xlsx(&sample());
    let eocd = bytes.len() - 22;
    let cd = u32::from_le_bytes(bytes[eocd + 16..eocd + 20].try_into().unwrap()) as usize;
    let entries = u16::from_le_bytes(bytes[eocd + 10..eocd + 12].try_into().unwrap());
    let mut at = cd;
    let mut deflated = 0;
    for _ in 0..entries {
        let h = &bytes[at..];
        let u16_ = |o: usize| usize::from(u16::from_le_bytes(h[o..o + 2].try_into().unwrap()));
        let u32_ = |o: usize| u32::from_le_bytes(h[o..o + 4].try_into().unwrap());
        let (method, crc, csize, usize_) =
            (u16_(10), u32_(16), u32_(20) as usize, u32_(24) as usize);
        let local = u32_(42) as usize;
        let l = &bytes[local..];
        let start = local
            + 30
            + usize::from(u16::from_le_bytes(l[26..28].try_into().unwrap()))
            + usize::from(u16::from_le_bytes(l[28..30].try_into().unwrap()));
        if method == 8 {
            let out = inflate::inflate_prefix(&bytes[start..start + csize], usize::MAX).unwrap();
            assert_eq!(out.len(), usize_);
            assert_eq!(crc32(&out), crc);
            deflated += 1;
        }
        at += 46 + u16_(28) + u16_(30) + u16_(32);
    }
    assert!(deflated >= 5, "{deflated}");
}

// --- no input makes a reader panic -----------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_truncated_and_mutated_input_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let both = |bytes: &[u8]| {
        let _ = read_list(bytes, ListFormat::Xlsx);
        let _ = read_list(bytes, ListFormat::Csv);
    };
    // Random bytes, some starting like a zip, some like a csv.
    for n in 0..400 {
        let len = rng.below(2048);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        match n % 3 {
            0 if len >= 4 => bytes[..4].copy_from_slice(b"PK\x03\x04"),
            1 => bytes
                .splice(0..0, b"TCKN;Ad;Soyad;Eposta;GSM;Birim\n".iter().copied())
                .for_each(drop),
            _ => {}
        }
        both(&bytes);
    }
    let workbook = xlsx(&sample());
    let csv = csv_text(&sample(), ';').into_bytes();
    let hand_made = stored_zip(&hand_made_workbook("<sst uniqueCount=\"6\">"), None);
    for valid in [&workbook, &csv, &hand_made] {
        // Every truncation point (in steps), then random byte changes.
        let step = (valid.len() / 300).max(1);
        for cut in (0..valid.len()).step_by(step) {
            both(&valid[..cut]);
        }
        for _ in 0..600 {
            let mut bytes = valid.clone();
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(bytes.len());
                bytes[at] = rng.next() as u8;
            }
            both(&bytes);
        }
    }
    // Changes inside the XML parts of a stored workbook, its CRCs kept right, so that the
    // changed XML reaches calamine's parser.
    let parts = hand_made_workbook("<sst count=\"6\" uniqueCount=\"6\">");
    const ALPHABET: &[u8] = b"<>/=\"' 0123456789AZaz:rctvsi&;#x\n\xc3\xff";
    for _ in 0..1500 {
        let mut parts = parts.clone();
        let which = rng.below(parts.len());
        let data = &mut parts[which].1;
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(data.len());
            let b = ALPHABET[rng.below(ALPHABET.len())];
            match rng.below(3) {
                0 => data[at] = b,
                1 => data.insert(at, b),
                _ => {
                    data.remove(at);
                }
            }
        }
        let _ = read_list(&stored_zip(&parts, None), ListFormat::Xlsx);
    }
}
