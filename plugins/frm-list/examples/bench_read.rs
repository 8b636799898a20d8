//! Benchmark of list reading (issue 5): a 100,000-row FRM.01.03 list as xlsx and as csv,
//! read and checked with `read_list`, against a baseline that only opens the workbook and
//! iterates its cells with calamine.
//!
//! ```sh
//! cargo run --release -p nesca-frm-list --example bench_read [-- ROWS]
//! ```
//!
//! The lists are written to a temporary directory (rust_xlsxwriter for the xlsx). Each
//! measurement then runs in a fresh child process (this program with an internal argument),
//! so that one's peak memory does not hide the next one's: the child loads the file, notes
//! its VmHWM (peak RSS, `/proc/self/status`), reads, and prints the time of the read and the
//! VmHWM after it and its growth during the read.

use std::io::Cursor;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use calamine::{Data, DataRef, Reader, Xlsx};
use nesca_frm_list::{read_list, ListFormat};
use rust_xlsxwriter::Workbook;

const GIVEN: [&str; 20] = [
    "Çağrı", "İpek", "Şükrü", "Ayşe", "Mehmet", "Zeynep", "Ömer", "Gülşen", "Ilgın", "Hüseyin",
    "Elif", "Burak", "Özlem", "Emre", "Büşra", "Oğuz", "Şeyma", "Tuğba", "İsmail", "Nazlı",
];
const SURNAME: [&str; 20] = [
    "Öztürk",
    "Yılmaz",
    "Kaya",
    "Demir",
    "Şahin",
    "Çelik",
    "Yıldız",
    "Yıldırım",
    "Aydın",
    "Özdemir",
    "Arslan",
    "Doğan",
    "Kılıç",
    "Aslan",
    "Çetin",
    "Kara",
    "Koç",
    "Kurt",
    "Özkan",
    "Şimşek",
];
const UNITS: [&str; 12] = [
    "Bilgi İşlem Dairesi Başkanlığı",
    "İnsan Kaynakları Dairesi Başkanlığı",
    "Hukuk Müşavirliği",
    "Strateji Geliştirme Başkanlığı",
    "Destek Hizmetleri Dairesi Başkanlığı",
    "Mali Hizmetler Müdürlüğü",
    "Basın ve Halkla İlişkiler Müşavirliği",
    "Teftiş Kurulu Başkanlığı",
    "Özel Kalem Müdürlüğü",
    "Eğitim Dairesi Başkanlığı",
    "Dış İlişkiler Dairesi Başkanlığı",
    "Yazı İşleri Müdürlüğü",
];
const TITLES: [&str; 6] = ["Uzman", "Şef", "Mühendis", "Memur", "Daire Başkanı", ""];

const HEADER: [&str; 8] = [
    "Sıra No",
    "T.C. Kimlik No",
    "Adı",
    "Soyadı",
    "E-posta",
    "Cep Telefonu",
    "Birim",
    "Unvan",
];

/// One person of the list, row `i` (0-based). Every 100th has a landline: invalid.
struct Person {
    tckn: String,
    given: &'static str,
    surname: &'static str,
    email: String,
    mobile: String,
    unit: &'static str,
    title: &'static str,
}

fn tckn(base9: u64) -> String {
    let d: Vec<i64> = base9
        .to_string()
        .bytes()
        .map(|b| i64::from(b - b'0'))
        .collect();
    let d10 = (7 * (d[0] + d[2] + d[4] + d[6] + d[8]) - (d[1] + d[3] + d[5] + d[7])).rem_euclid(10);
    let d11 = (d.iter().sum::<i64>() + d10) % 10;
    format!("{base9}{d10}{d11}")
}

fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'ç' | 'Ç' => 'c',
            'ğ' | 'Ğ' => 'g',
            'ı' | 'I' | 'İ' => 'i',
            'ö' | 'Ö' => 'o',
            'ş' | 'Ş' => 's',
            'ü' | 'Ü' => 'u',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

fn person(i: usize) -> Person {
    let given = GIVEN[i % GIVEN.len()];
    let surname = SURNAME[(i / GIVEN.len()) % SURNAME.len()];
    let n = i as u64;
    let mobile = if i % 100 == 99 {
        format!(
            "0312 {:03} {:02} {:02}",
            n % 1000,
            (n / 7) % 100,
            (n / 13) % 100
        )
    } else {
        format!(
            "05{:02} {:03} {:02} {:02}",
            30 + n % 30,
            (n * 7) % 1000,
            (n / 3) % 100,
            (n / 11) % 100
        )
    };
    Person {
        tckn: tckn(100_000_000 + n * 8191),
        given,
        surname,
        email: format!("{}.{}{}@kurum.gov.tr", ascii(given), ascii(surname), i),
        mobile,
        unit: UNITS[i % UNITS.len()],
        title: TITLES[i % TITLES.len()],
    }
}

fn write_xlsx(path: &Path, rows: usize) {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    for (c, h) in HEADER.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    for i in 0..rows {
        let p = person(i);
        let r = i as u32 + 1;
        sheet.write_number(r, 0, (i + 1) as f64).unwrap();
        // Half the T.C. Kimlik Nos typed as numbers, half as text, as lists come.
        if i % 2 == 0 {
            sheet
                .write_number(r, 1, p.tckn.parse::<f64>().unwrap())
                .unwrap();
        } else {
            sheet.write_string(r, 1, &p.tckn).unwrap();
        }
        sheet.write_string(r, 2, p.given).unwrap();
        sheet.write_string(r, 3, p.surname).unwrap();
        sheet.write_string(r, 4, &p.email).unwrap();
        sheet.write_string(r, 5, &p.mobile).unwrap();
        sheet.write_string(r, 6, p.unit).unwrap();
        if !p.title.is_empty() {
            sheet.write_string(r, 7, p.title).unwrap();
        }
    }
    workbook.save(path).unwrap();
}

fn write_csv(path: &Path, rows: usize) {
    let mut out = String::from("\u{feff}");
    out.push_str(&HEADER.join(";"));
    out.push_str("\r\n");
    for i in 0..rows {
        let p = person(i);
        out.push_str(&format!(
            "{};{};{};{};{};{};{};{}\r\n",
            i + 1,
            p.tckn,
            p.given,
            p.surname,
            p.email,
            p.mobile,
            p.unit,
            p.title
        ));
    }
    std::fs::write(path, out).unwrap();
}

/// VmHWM (peak resident set) of this process, in MB.
fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// A child: one measurement, one line of output.
fn measure(what: &str, path: &Path, rows: usize) {
    let bytes = std::fs::read(path).unwrap();
    let before = peak_mb();
    let start = Instant::now();
    let summary = match what {
        "read-xlsx" | "read-csv" => {
            let format = if what == "read-xlsx" {
                ListFormat::Xlsx
            } else {
                ListFormat::Csv
            };
            let report = read_list(&bytes, format).unwrap();
            assert_eq!(report.counts.rows, rows);
            assert_eq!(
                report.counts.invalid,
                rows / 100,
                "{:?}",
                report.invalid.first()
            );
            format!(
                "{} valid, {} invalid",
                report.counts.valid, report.counts.invalid
            )
        }
        "baseline-range" => {
            // Open, load the first worksheet as a calamine Range, visit every cell.
            let mut wb = Xlsx::new(Cursor::new(&bytes)).unwrap();
            let name = wb.sheet_names()[0].clone();
            let range = wb.worksheet_range(&name).unwrap();
            let mut cells = 0usize;
            for row in range.rows() {
                for cell in row {
                    if !matches!(cell, Data::Empty) {
                        cells += 1;
                    }
                }
            }
            format!("{cells} cells")
        }
        "baseline-cells" => {
            // Open, stream the first worksheet's cells (the reader read_list uses).
            let mut wb = Xlsx::new(Cursor::new(&bytes)).unwrap();
            let name = wb.sheet_names()[0].clone();
            let mut reader = wb.worksheet_cells_reader(&name).unwrap();
            let mut cells = 0usize;
            while let Some(cell) = reader.next_cell().unwrap() {
                if !matches!(cell.get_value(), DataRef::Empty) {
                    cells += 1;
                }
            }
            format!("{cells} cells")
        }
        other => panic!("unknown measurement {other}"),
    };
    let seconds = start.elapsed().as_secs_f64();
    let after = peak_mb();
    println!(
        "{what:<15} {seconds:7.3} s   peak RSS +{:6.1} MB during the read (VmHWM {:6.1} MB, \
         {:5.1} MB before with the file loaded)   {summary}",
        after - before,
        after,
        before
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 5 && args[1] == "--child" {
        measure(&args[2], Path::new(&args[3]), args[4].parse().unwrap());
        return;
    }
    let rows: usize = args.get(1).map_or(100_000, |a| a.parse().expect("ROWS"));
    let dir = tempfile::tempdir().unwrap();
    // `bench_read ROWS --keep DIR`: leave the lists in DIR (to time `nesca import` on them).
    let out_dir = match (args.get(2).map(String::as_str), args.get(3)) {
        (Some("--keep"), Some(d)) => std::path::PathBuf::from(d),
        _ => dir.path().to_path_buf(),
    };
    let xlsx = out_dir.join("list.xlsx");
    let csv = out_dir.join("list.csv");
    let t = Instant::now();
    write_xlsx(&xlsx, rows);
    write_csv(&csv, rows);
    println!(
        "{rows} rows written in {:.1} s: xlsx {:.1} MB, csv {:.1} MB",
        t.elapsed().as_secs_f64(),
        std::fs::metadata(&xlsx).unwrap().len() as f64 / 1e6,
        std::fs::metadata(&csv).unwrap().len() as f64 / 1e6
    );
    let exe = std::env::current_exe().unwrap();
    for (what, path) in [
        ("baseline-range", &xlsx),
        ("baseline-cells", &xlsx),
        ("read-xlsx", &xlsx),
        ("read-csv", &csv),
    ] {
        let status = Command::new(&exe)
            .args(["--child", what, path.to_str().unwrap(), &rows.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "{what} failed");
    }
}
