//! The institutional channel's first half through the real binary: an institution and its
//! e-İmza officer, FRM.01.03 lists (csv and xlsx) with good and bad rows, the per-row report,
//! a re-import that changes nothing, a wrong officer refused, a wet-signed list held until
//! confirmed, the outbox e-mailing one access password per person, and a process killed in
//! the middle of a large import leaving all of its rows or none.

use std::fs;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::idcard::{Options, World};
use crate::support::institution::{applicant_list, import, institution, json, register, sign};
use crate::support::outbox::{access_password_in, addressed_to, outbox_texts};
use crate::support::server::{server_demo, Server};
use crate::support::*;

/// A csv list: four good rows (Turkish names), a bad T.C. Kimlik No, a duplicate, a landline.
fn csv_list(dir: &Path) -> PathBuf {
    let path = dir.join("liste.csv");
    fs::write(
        &path,
        "Sıra No;T.C. Kimlik No;Adı;Soyadı;E-posta;Cep Telefonu;Birim\n\
         1;10000000146;AYŞE;YILMAZ;ayse@ankara.bel.tr;0532 123 45 67;Bilgi İşlem\n\
         2;10000000078;Çağrı;Öztürk;cagri@ankara.bel.tr;+90 533 111 22 33;Fen İşleri\n\
         3;12345678901;Hatalı;Numara;hatali@ankara.bel.tr;05321112233;Fen İşleri\n\
         4;10000000146;AYŞE;YILMAZ;ayse2@ankara.bel.tr;05321234567;Bilgi İşlem\n\
         5;10000000214;İpek;Şahin;ipek@ankara.bel.tr;0505-111-22-33;Zabıta\n\
         6;10000000382;Şükrü;Güneş;sukru@ankara.bel.tr;(0544) 555 66 77;Zabıta\n\
         7;10000000450;Hakan;Ersoy;hakan@ankara.bel.tr;0212 123 45 67;Zabıta\n",
    )
    .unwrap();
    path
}

/// A signature over `list` by someone who is not the officer (a NES of another person).
fn forged_signature(demo: &Demo, list: &Path) -> PathBuf {
    let csr = demo.csr("intruder", Key::P256);
    let cert = demo.work.join("intruder.pem");
    demo.issue_as(&csr, "10000000078", "ÇAĞRI", "ÖZTÜRK", &["--out", s(&cert)])
        .ok();
    sign(
        &demo.work,
        list,
        &cert,
        &demo.work.join("intruder.key"),
        "forged.p7s",
    )
}

fn outbox(demo: &Demo) -> Vec<Value> {
    let out = demo
        .nesca(&["outbox", "list", "--config", s(&demo.config())])
        .ok();
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn lists_import_once_with_a_per_row_report_and_passwords_go_out_once() {
    let demo = Demo::init();
    let (cert, key) = institution(&demo, "ankara-bb", "0680049583");
    let list = csv_list(&demo.work);
    let sig = sign(&demo.work, &list, &cert, &key, "liste.p7s");

    // Someone else's signature over the list: refused, nothing stored.
    let forged = forged_signature(&demo, &list);
    let refused = import(&demo, "ankara-bb", &list, ("--signature", &forged), &[]);
    assert_refusal(&refused, &["signature", "not the officer's signature"]);
    assert!(outbox(&demo).is_empty());

    // The officer's list: the report names each bad row and field.
    let report = demo.work.join("report.csv");
    let out = import(
        &demo,
        "ankara-bb",
        &list,
        ("--signature", &sig),
        &["--report-csv", s(&report), "--progress"],
    )
    .ok();
    assert!(
        out.stderr
            .contains("nesca import: storing 4 pre-applications"),
        "{}",
        out.describe()
    );
    let r = json(&out);
    assert_eq!(r["status"], "accepted", "{r}");
    assert_eq!(r["replayed"], false);
    assert_eq!(r["rows"]["valid"], 4, "{r}");
    assert_eq!(r["rows"]["created"], 4, "{r}");
    assert_eq!(r["rows"]["invalid"], 3, "{r}");
    let problems: Vec<(u64, String)> = r["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["row"].as_u64().unwrap(),
                p["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(problems.contains(&(4, "tckn".into())), "bad checksum: {r}");
    assert!(problems.contains(&(5, "tckn".into())), "duplicate: {r}");
    assert!(problems.contains(&(8, "mobile".into())), "landline: {r}");
    let csv = fs::read_to_string(&report).unwrap();
    assert!(csv.starts_with("row,field,reason\r\n"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + problems.len(), "{csv}");

    // One message per person, none sent yet; then one .eml each, with a password.
    let messages = outbox(&demo);
    assert_eq!(messages.len(), 4);
    assert!(messages.iter().all(|m| m["status"] == "pending"));
    let sent = demo
        .nesca(&["outbox", "send", "--config", s(&demo.config())])
        .ok();
    assert_eq!(json(&sent)["sent"], 4, "{}", sent.describe());
    let again = demo
        .nesca(&["outbox", "send", "--config", s(&demo.config())])
        .ok();
    assert_eq!(json(&again)["sent"], 0, "sent once");
    let mails = outbox_texts(&demo.dir.join("outbox/email"));
    assert_eq!(mails.len(), 4);
    for to in [
        "ayse@ankara.bel.tr",
        "cagri@ankara.bel.tr",
        "ipek@ankara.bel.tr",
        "sukru@ankara.bel.tr",
    ] {
        let mail = mails
            .iter()
            .find(|m| addressed_to(m, to))
            .unwrap_or_else(|| panic!("no mail to {to}"));
        let password = access_password_in(mail).unwrap_or_default();
        assert_eq!(password.len(), 14, "{mail}");
    }
    assert!(
        mails.iter().any(|m| m.contains("Sayın Çağrı Öztürk")),
        "names kept exactly"
    );

    // The same file again: nothing new.
    let again = json(&import(&demo, "ankara-bb", &list, ("--signature", &sig), &[]).ok());
    assert_eq!(
        (again["replayed"].clone(), again["rows"]["created"].clone()),
        (Value::Bool(true), Value::from(4))
    );
    assert_eq!(outbox(&demo).len(), 4);

    // A wet-signed list naming a new person and one already open: held, then confirmed.
    let wet = demo.work.join("ek-liste.csv");
    fs::write(&wet, "T.C. Kimlik No,Adı,Soyadı,E-posta,Cep Telefonu,Birim\n10000000146,AYŞE,YILMAZ,a@x.tr,05321234567,Bilgi İşlem\n10000000528,Zeynep,Ak,zeynep@ankara.bel.tr,05051112233,Zabıta\n").unwrap();
    let scan = demo.work.join("scan.pdf");
    fs::write(&scan, b"%PDF-1.7 signed on paper").unwrap();
    let held = json(&import(&demo, "ankara-bb", &wet, ("--wet-scan", &scan), &[]).ok());
    assert_eq!(held["status"], "awaiting_confirmation", "{held}");
    // A wet-signed list proves nothing before an operator saw the paper: its report says
    // nothing of who is open. Both rows are held; the confirmation sorts them out.
    assert_eq!(
        (
            held["rows"]["valid"].as_u64(),
            held["rows"]["invalid"].as_u64(),
            held["rows"]["created"].as_u64(),
            held["rows"]["already_open"].as_u64()
        ),
        (Some(2), Some(0), Some(2), Some(0)),
        "{held}"
    );
    assert_eq!(held["problems"], serde_json::json!([]), "{held}");
    let ayse_id = applicant_list(&demo, "ankara-bb")
        .into_iter()
        .find(|a| a["tckn"] == "10000000146" && a["list_status"] == "invited")
        .expect("AYŞE's open application")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A signed list of Ankara's naming her again: counted once, as invalid (her open
    // application), and the report names her own application.
    let again_list = demo.work.join("yine.csv");
    fs::write(
        &again_list,
        "T.C. Kimlik No,Adı,Soyadı,E-posta,Cep Telefonu,Birim
10000000146,AYŞE,YILMAZ,a@x.tr,05321234567,Bilgi İşlem
",
    )
    .unwrap();
    let again_sig = sign(&demo.work, &again_list, &cert, &key, "yine.p7s");
    let again = json(
        &import(
            &demo,
            "ankara-bb",
            &again_list,
            ("--signature", &again_sig),
            &[],
        )
        .ok(),
    );
    assert_eq!(
        (
            again["rows"]["valid"].as_u64(),
            again["rows"]["invalid"].as_u64(),
            again["rows"]["created"].as_u64(),
            again["rows"]["already_open"].as_u64()
        ),
        (Some(0), Some(1), Some(0), Some(1)),
        "{again}"
    );
    assert_eq!(
        again["problems"],
        serde_json::json!([{
            "row": 2,
            "field": "tckn",
            "reason": format!("already has an open application ({ayse_id}) from an earlier list of this institution"),
        }]),
        "{again}"
    );
    // Another institution's list naming her: skipped too, and Ankara's id is not İzmir's to
    // see.
    let (izmir_cert, izmir_key) = institution(&demo, "izmir-bb", "1234567890");
    let izmir_list = demo.work.join("izmir.csv");
    fs::write(
        &izmir_list,
        "T.C. Kimlik No,Adı,Soyadı,E-posta,Cep Telefonu,Birim
10000000146,AYŞE,YILMAZ,ayse@izmir.bel.tr,05321234567,Bilgi İşlem
",
    )
    .unwrap();
    let izmir_sig = sign(
        &demo.work,
        &izmir_list,
        &izmir_cert,
        &izmir_key,
        "izmir.p7s",
    );
    let izmir = json(
        &import(
            &demo,
            "izmir-bb",
            &izmir_list,
            ("--signature", &izmir_sig),
            &[],
        )
        .ok(),
    );
    assert_eq!(
        (
            izmir["rows"]["valid"].as_u64(),
            izmir["rows"]["invalid"].as_u64(),
            izmir["rows"]["created"].as_u64(),
            izmir["rows"]["already_open"].as_u64()
        ),
        (Some(0), Some(1), Some(0), Some(1)),
        "{izmir}"
    );
    assert_eq!(
        izmir["problems"][0]["reason"],
        "already has an open application through another institution's list",
        "{izmir}"
    );
    assert!(!izmir.to_string().contains(&ayse_id), "{izmir}");
    assert_eq!(outbox(&demo).len(), 4, "nothing sent for a held list");
    let sha = held["file_sha256"].as_str().unwrap();
    let confirmed = held_list(&demo, "confirm-list", sha).ok();
    assert_eq!(json(&confirmed)["invited"], 1);
    assert_eq!(outbox(&demo).len(), 5);

    // An unknown institution and a missing column are refused with the field named.
    let out = import(&demo, "nobody", &list, ("--signature", &sig), &[]);
    assert_refusal(
        &out,
        &["institution", "no registered institution \"nobody\""],
    );
    let bad = demo.work.join("eksik.csv");
    fs::write(&bad, "Adı,Soyadı\nA,B\n").unwrap();
    let out = import(&demo, "ankara-bb", &bad, ("--wet-scan", &scan), &[]);
    assert_refusal(&out, &["file", "T.C. Kimlik No"]);
    let audit = demo
        .nesca(&["audit", "verify", "--config", s(&demo.config())])
        .ok();
    assert!(audit.stdout.contains("intact"), "{}", audit.describe());
}

/// `nesca VERB` (`confirm-list`, `reject-list`) on `ankara-bb`'s held list `sha`.
fn held_list(demo: &Demo, verb: &str, sha: &str) -> Output {
    demo.nesca(&[
        verb,
        "--config",
        s(&demo.config()),
        "--institution",
        "ankara-bb",
        "--file-sha256",
        sha,
    ])
}

/// A valid T.C. Kimlik No for `n` (the checksum of docs/STANDARDS.md "T.C. Kimlik No").
fn tckn(n: u64) -> String {
    let mut d: Vec<u32> = format!("{:09}", 100_000_000 + n)
        .chars()
        .map(|c| c.to_digit(10).unwrap())
        .collect();
    let odd: u32 = d.iter().step_by(2).sum();
    let even: u32 = d.iter().skip(1).step_by(2).sum();
    let d10 = ((odd * 7 + 10 * 10 - even) % 10) % 10;
    d.push(d10);
    let d11 = d.iter().sum::<u32>() % 10;
    d.push(d11);
    d.iter()
        .map(|x| char::from_digit(*x, 10).unwrap())
        .collect()
}

#[test]
fn a_process_killed_during_a_large_import_leaves_all_rows_or_none() {
    let demo = Demo::init();
    let (cert, key) = institution(&demo, "buyuk-kurum", "1234567890");
    let list = demo.work.join("buyuk.csv");
    let mut text = String::from("T.C. Kimlik No,Adı,Soyadı,E-posta,Cep Telefonu,Birim\n");
    const ROWS: u64 = 40_000;
    for n in 0..ROWS {
        text.push_str(&format!(
            "{},Ad,Soyad,p{n}@kurum.gov.tr,0532{:07},Birim\n",
            tckn(n),
            n
        ));
    }
    fs::write(&list, text).unwrap();
    let sig = sign(&demo.work, &list, &cert, &key, "buyuk.p7s");
    let config = demo.config();
    let mut child = nesca_command()
        .args([
            "import",
            "--config",
            s(&config),
            "--institution",
            "buyuk-kurum",
            "--progress",
            "--file",
        ])
        .arg(&list)
        .arg("--signature")
        .arg(&sig)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nesca import");
    // Kill it as soon as it says it is writing (bounded: the line comes within seconds).
    let stderr = child.stderr.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap_or_default();
        if line.contains("storing") || Instant::now() > deadline {
            break;
        }
    }
    let _ = child.kill();
    child.wait().expect("reap");

    let stored = outbox(&demo).len() as u64;
    assert!(
        stored == 0 || stored == ROWS,
        "half an import is on record: {stored} of {ROWS}"
    );
    let audit = demo
        .nesca(&["audit", "verify", "--config", s(&config)])
        .ok();
    assert!(audit.stdout.contains("intact"), "{}", audit.describe());
    // Importing again completes it (or finds it complete).
    let r = json(&import(&demo, "buyuk-kurum", &list, ("--signature", &sig), &[]).ok());
    assert_eq!(r["rows"]["created"], ROWS, "{}", r["rows"]);
    assert_eq!(outbox(&demo).len() as u64, ROWS);
}

#[test]
fn an_xlsx_list_imports_with_its_report() {
    let demo = Demo::init();
    let (cert, key) = institution(&demo, "kurum", "0680049583");
    // The xlsx vector of plugins/frm-list: 3 good rows, 4 bad ones, an unknown column.
    let list = demo.work.join("liste.xlsx");
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../plugins/frm-list/tests/data/frm-01-03-sample.xlsx"),
        &list,
    )
    .unwrap();
    let sig = sign(&demo.work, &list, &cert, &key, "liste.p7s");
    let r = json(&import(&demo, "kurum", &list, ("--signature", &sig), &[]).ok());
    assert_eq!(r["status"], "accepted", "{r}");
    assert_eq!(
        (
            r["rows"]["valid"].clone(),
            r["rows"]["created"].clone(),
            r["rows"]["invalid"].clone()
        ),
        (Value::from(3), Value::from(3), Value::from(4)),
        "{r}"
    );
    let rows: Vec<u64> = r["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["row"].as_u64().unwrap())
        .collect();
    assert_eq!(rows, vec![3, 5, 6, 8, 8, 8], "{r}");
    assert!(
        r["warnings"][0].as_str().unwrap_or("").contains("\"Not\""),
        "{r}"
    );
    let sent = demo
        .nesca(&["outbox", "send", "--config", s(&demo.config())])
        .ok();
    assert_eq!(json(&sent)["sent"], 3);
    let mails = outbox_texts(&demo.dir.join("outbox/email"));
    assert!(
        mails.iter().any(|m| m.contains("Sayın ılgaz D'Ağaoğlu")),
        "names kept exactly"
    );
}

/// A demo serving the channels, its partner world, the institution `ankara-bb` (its officer's
/// certificate and key) and the csv list.
fn portal_world() -> (Demo, World, (PathBuf, PathBuf), PathBuf) {
    let demo = server_demo();
    let world = World::new(&demo, Options::default());
    let officer = institution(&demo, "ankara-bb", "0680049583");
    let list = csv_list(&demo.work);
    (demo, world, officer, list)
}

/// The same import through the `batch-import` channel: an ESHS portal (a partner's
/// secure-communication certificate) forwards the officer's signed list over mTLS.
#[test]
fn a_portal_uploads_a_signed_list_through_the_batch_import_channel() {
    let (demo, world, (cert, key), list) = portal_world();
    let sig = sign(&demo.work, &list, &cert, &key, "liste.p7s");
    let mut server = Server::serve(&demo);
    let portal = world.client(Some(&world.kdhs_client));
    let path = "/channels/batch-import/v1/institutions/ankara-bb/lists";
    let body = |signature: &Path| {
        serde_json::json!({
            "v": 1,
            "file_name": "liste.csv",
            "file": b64(&fs::read(&list).unwrap()),
            "signature": b64(&fs::read(signature).unwrap()),
        })
    };

    // Another person's signature: 422 signature, nothing stored.
    let forged = forged_signature(&demo, &list);
    let r = portal.post(path, &body(&forged)).unwrap();
    let v: Value = serde_json::from_slice(&r.body).unwrap_or_default();
    assert_eq!(
        (r.status, v["error"]["code"].as_str()),
        (422, Some("signature")),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(outbox(&demo).is_empty());

    let r = portal.post_ok(path, &body(&sig));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        (
            v["created"].clone(),
            v["invalid"].clone(),
            v["status"].clone()
        ),
        (Value::from(4), Value::from(3), Value::from("accepted")),
        "{v}"
    );
    assert!(
        v["report_csv"]
            .as_str()
            .unwrap_or("")
            .starts_with("row,field,reason\r\n4,tckn,"),
        "{v}"
    );
    assert_eq!(outbox(&demo).len(), 4);
    // Again: 200, replayed, nothing new.
    let r = portal.post_ok(path, &body(&sig));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        (r.status, v["replayed"].clone()),
        (200, Value::Bool(true)),
        "{v}"
    );
    assert_eq!(outbox(&demo).len(), 4);
    // More than the plugin's max_body_bytes (default 4 MiB): 413 before the plugin is called,
    // in the shape of every other error, and nothing stored.
    let big = serde_json::json!({ "v": 1, "file_name": "big.csv", "file": "A".repeat(5 << 20), "signature": "" });
    let r = portal.post(path, &big).unwrap();
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        (v["v"].as_u64(), v["error"]["code"].as_str()),
        (Some(1), Some("too_large")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("body: ") && m.contains("4194304 bytes")),
        "{v}"
    );
    assert_eq!(outbox(&demo).len(), 4);
    // Another channel name: 404 in the same shape.
    let r = portal
        .post("/channels/no-such-channel/v1/x", &body(&sig))
        .unwrap();
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        (r.status, v["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{v}"
    );
    // A new file naming two of the same people and a new one: the two are counted once,
    // as invalid (already open), and the report names their own applications.
    let again = demo.work.join("liste-2.csv");
    fs::write(
        &again,
        "T.C. Kimlik No;Adı;Soyadı;E-posta;Cep Telefonu;Birim
         10000000146;AYŞE;YILMAZ;ayse@ankara.bel.tr;0532 123 45 67;Bilgi İşlem
         10000000078;Çağrı;Öztürk;cagri@ankara.bel.tr;+90 533 111 22 33;Fen İşleri
         10000000528;Zeynep;Ak;zeynep@ankara.bel.tr;05051112233;Zabıta
",
    )
    .unwrap();
    let again_sig = sign(&demo.work, &again, &cert, &key, "liste-2.p7s");
    let r = portal.post_ok(
        path,
        &serde_json::json!({
            "v": 1,
            "file_name": "liste-2.csv",
            "file": b64(&fs::read(&again).unwrap()),
            "signature": b64(&fs::read(&again_sig).unwrap()),
        }),
    );
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        (
            r.status,
            v["valid"].as_u64(),
            v["invalid"].as_u64(),
            v["created"].as_u64(),
            v["already_open"].as_u64()
        ),
        (201, Some(1), Some(2), Some(1), Some(2)),
        "{v}"
    );
    let open = applicant_list(&demo, "ankara-bb");
    for (row, tckn) in [(2, "10000000146"), (3, "10000000078")] {
        let id = open
            .iter()
            .find(|a| a["tckn"] == tckn && a["list_status"] == "invited")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let problem = v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["row"] == row)
            .unwrap_or_else(|| panic!("row {row}: {v}"));
        assert_eq!(
            problem["reason"],
            format!(
                "already has an open application ({id}) from an earlier list of this institution"
            ),
            "{v}"
        );
    }
    server.assert_running();
}

/// A plain SMTP relay on 127.0.0.1 for the test: it accepts sessions until `sessions` have
/// ended (or 60 s pass) and returns each message's DATA.
fn smtp_relay(sessions: usize) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    use std::io::Write as _;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let handle = std::thread::spawn(move || {
        let start = Instant::now();
        let mut messages = Vec::new();
        let mut ended = 0;
        while ended < sessions && start.elapsed() < Duration::from_secs(60) {
            let Ok((stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut out = stream.try_clone().unwrap();
            let mut reader = BufReader::new(stream);
            let mut say = |l: &str| {
                let _ = out.write_all(format!("{l}\r\n").as_bytes());
            };
            say("220 relay.test ESMTP");
            let (mut data, mut in_data, mut line) = (String::new(), false, String::new());
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if in_data && line == ".\r\n" {
                    in_data = false;
                    messages.push(std::mem::take(&mut data));
                    say("250 queued");
                } else if in_data {
                    data.push_str(&line);
                } else {
                    match line
                        .get(..4)
                        .unwrap_or_default()
                        .to_ascii_uppercase()
                        .as_str()
                    {
                        "EHLO" => say("250 relay.test"),
                        "DATA" => {
                            in_data = true;
                            say("354 go on");
                        }
                        "QUIT" => {
                            say("221 bye");
                            break;
                        }
                        _ => say("250 ok"),
                    }
                }
                line.clear();
            }
            ended += 1;
        }
        messages
    });
    (port, handle)
}

/// `[outbox.smtp]`: the access passwords go through an SMTP relay; while it is down they wait
/// and are retried (a minute later: the test clock moves past it).
#[test]
#[cfg_attr(
    not(feature = "test-clock"),
    ignore = "needs the test clock: cargo test --features test-clock (scripts/test.sh sets it)"
)]
fn access_passwords_go_through_a_configured_smtp_relay() {
    let demo = Demo::init();
    let (cert, key) = institution(&demo, "ankara-bb", "0680049583");
    let list = csv_list(&demo.work);
    let sig = sign(&demo.work, &list, &cert, &key, "liste.p7s");
    import(&demo, "ankara-bb", &list, ("--signature", &sig), &[]).ok();
    let config = demo.config();
    let plain = fs::read_to_string(&config).unwrap();
    let with_relay = |port: u16, extra: &str| {
        fs::write(
            &config,
            format!("{plain}\n[outbox.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\ntimeout_seconds = 5\n{extra}"),
        )
        .unwrap();
    };
    let send = || demo.nesca(&["outbox", "send", "--config", s(&config)]);

    // A password that is not in the environment: refused by name before anything is sent.
    with_relay(
        25,
        "username = \"nesca\"\npassword_env = \"NESCA_E2E_NO_SUCH_VARIABLE\"\n",
    );
    assert_refusal(
        &send(),
        &["outbox.smtp.password_env", "NESCA_E2E_NO_SUCH_VARIABLE"],
    );

    // The relay is down (a port nobody listens on): every message waits for its retry.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    with_relay(closed, "");
    let out = send().ok();
    assert_eq!(
        (json(&out)["sent"].as_u64(), json(&out)["failed"].as_u64()),
        (Some(0), Some(4)),
        "{}",
        out.describe()
    );
    assert!(outbox(&demo)
        .iter()
        .all(|m| m["status"] == "pending" && m["attempts"] == 1));

    // Up again; the retry is due after a minute: the next pass after that sends them all,
    // one session each. (The relay's port changes; the retry time is what is waited for.)
    let (port, relay) = smtp_relay(4);
    with_relay(port, "");
    assert_eq!(
        json(&send().ok())["sent"],
        0,
        "not due before the retry time"
    );
    let mut cmd = nesca_command();
    cmd.args(["outbox", "send", "--config", s(&config)])
        .current_dir(&demo.work)
        .env("NESCA_TEST_CLOCK_OFFSET_SECONDS", "120");
    let out = run(cmd).ok();
    assert_eq!(json(&out)["sent"].as_u64(), Some(4), "{}", out.describe());
    let messages = relay.join().unwrap();
    assert_eq!(messages.len(), 4);
    for m in &messages {
        assert!(m.contains("From: nesca@localhost"), "{m}");
        assert!(m.contains("Content-Type: text/plain; charset=utf-8"), "{m}");
        // The Turkish text, quoted-printable: "Erişim parolası: …".
        assert!(m.contains("Eri=C5=9Fim parolas=C4=B1: "), "{m}");
    }
    assert!(messages
        .iter()
        .any(|m| m.contains("To: ayse@ankara.bel.tr")));
    assert!(outbox(&demo).iter().all(|m| m["status"] == "sent"));
}

/// A held list is a claim nobody checked: anyone with the channel's certificate can upload
/// one with a one-byte "scan". It must not stop the officer's signed list: a fake held list
/// naming the institution's people does not make them "already open"; the officer's
/// signature over the very file a fake carries confirms it; an operator rejects a fake (its
/// rows closed); and the same file signed after its rejection is refused with what to do.
#[test]
fn a_fake_wet_scan_blocks_no_one() {
    let (demo, world, (cert, key), list) = portal_world();
    // The same people in another file (CRLF line ends): a fake uploaded before the real one.
    let fake = demo.work.join("sahte.csv");
    fs::write(
        &fake,
        fs::read_to_string(&list).unwrap().replace('\n', "\r\n"),
    )
    .unwrap();
    let mut server = Server::serve(&demo);
    let portal = world.client(Some(&world.kdhs_client));
    let path = "/channels/batch-import/v1/institutions/ankara-bb/lists";
    let upload = |file: &Path, proof: (&str, Vec<u8>)| {
        let mut body = serde_json::json!({
            "v": 1,
            "file_name": "liste.csv",
            "file": b64(&fs::read(file).unwrap()),
        });
        body[proof.0] = Value::from(b64(&proof.1));
        let r = portal.post(path, &body).unwrap();
        let v: Value = serde_json::from_slice(&r.body).unwrap_or_default();
        (r.status, v)
    };
    let one_byte = ("wet_scan", b"%".to_vec());

    let (status, held) = upload(&fake, one_byte.clone());
    assert_eq!(
        (status, held["status"].as_str(), held["created"].as_u64()),
        (201, Some("awaiting_confirmation"), Some(4)),
        "{held}"
    );
    assert!(outbox(&demo).is_empty(), "nobody is invited by a held list");

    // The officer's signed list: all four invited, none "already open".
    let sig = sign(&demo.work, &list, &cert, &key, "liste.p7s");
    let (status, v) = upload(&list, ("signature", fs::read(&sig).unwrap()));
    assert_eq!(
        (
            status,
            v["status"].as_str(),
            v["created"].as_u64(),
            v["already_open"].as_u64()
        ),
        (201, Some("accepted"), Some(4), Some(0)),
        "{v}"
    );
    assert_eq!(outbox(&demo).len(), 4);

    // The operator rejects the fake: its four held rows are closed.
    let sha = held["file_sha256"].as_str().unwrap();
    let rejected = json(&held_list(&demo, "reject-list", sha).ok());
    assert_eq!(
        (rejected["status"].as_str(), rejected["closed"].as_u64()),
        (Some("rejected"), Some(4)),
        "{rejected}"
    );
    let out = held_list(&demo, "confirm-list", sha);
    assert_refusal(&out, &["file-sha256", "awaits confirmation"]);
    // That file, signed after its rejection: refused with what to do, not replayed.
    let sig = sign(&demo.work, &fake, &cert, &key, "sahte.p7s");
    let (status, v) = upload(&fake, ("signature", fs::read(&sig).unwrap()));
    assert_eq!(status, 422, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("export the list again")),
        "{v}"
    );

    // A held list whose very file the officer then signs: the signature confirms it.
    let extra = demo.work.join("ek.csv");
    fs::write(
        &extra,
        "T.C. Kimlik No;Adı;Soyadı;E-posta;Cep Telefonu;Birim\n10000000528;Zeynep;Ak;zeynep@ankara.bel.tr;05051112233;Zabıta\n",
    )
    .unwrap();
    let (status, v) = upload(&extra, one_byte);
    assert_eq!(
        (status, v["status"].as_str()),
        (201, Some("awaiting_confirmation")),
        "{v}"
    );
    let sig = sign(&demo.work, &extra, &cert, &key, "ek.p7s");
    let (status, v) = upload(&extra, ("signature", fs::read(&sig).unwrap()));
    assert_eq!(
        (status, v["status"].as_str(), v["replayed"].as_bool()),
        (201, Some("accepted"), Some(false)),
        "{v}"
    );
    assert_eq!(outbox(&demo).len(), 5);
    server.assert_running();
    let audit = demo
        .nesca(&["audit", "verify", "--config", s(&demo.config())])
        .ok();
    assert!(audit.stdout.contains("intact"), "{}", audit.describe());
}

/// A suspended or revoked officer signs no list: nesca checks the status of the officer's
/// certificate it issued before it imports a signed list (and before a signature confirms a
/// held one).
#[test]
fn a_revoked_officer_enrols_no_one() {
    let demo = Demo::init();
    let (cert, key) = institution(&demo, "ankara-bb", "0680049583");
    let list = csv_list(&demo.work);
    let sig = sign(&demo.work, &list, &cert, &key, "liste.p7s");
    let serial = cert_serial(&cert).to_ascii_lowercase();
    let officer = "17291716060";
    let config = demo.config();
    for (verb, extra, status) in [
        ("suspend", vec![], "suspended"),
        ("revoke", vec!["--reason", "keyCompromise"], "revoked"),
    ] {
        let mut args = vec![
            verb,
            "--config",
            s(&config),
            "--serial",
            &serial,
            "--holder-tckn",
            officer,
        ];
        args.extend_from_slice(&extra);
        demo.nesca(&args).ok();
        let out = import(&demo, "ankara-bb", &list, ("--signature", &sig), &[]);
        assert_refusal(&out, &["signature", "officer's certificate", status]);
        assert!(outbox(&demo).is_empty(), "{}", out.describe());
    }
}

/// An officer whose certificate another ESHS issued: that ESHS's CRL, fetched from the URL in
/// the certificate and verified under the issuer's certificate (also fetched), decides. No
/// answer refuses the list as a revoked officer does, with another message; nothing is stored
/// either way.
#[test]
fn a_foreign_officer_is_checked_against_the_issuers_crl() {
    use crate::support::file_server::FileServer;
    use crate::support::idcard::TestCa;

    let demo = Demo::init();
    let published = demo.work.join("baska-eshs-www");
    fs::create_dir_all(&published).unwrap();
    let server = FileServer::start(&published);
    let eshs = TestCa::new(
        &demo.work,
        "baska-eshs",
        "/C=TR/O=Başka ESHS/CN=Başka ESHS NES CA",
    );
    fs::write(published.join("ca.crt"), cert_der(&eshs.cert)).unwrap();
    let ext = format!(
        "basicConstraints = critical,CA:FALSE\n\
         keyUsage = critical,nonRepudiation\n\
         subjectKeyIdentifier = hash\n\
         authorityKeyIdentifier = keyid\n\
         authorityInfoAccess = caIssuers;URI:http://{addr}/ca.crt\n\
         crlDistributionPoints = URI:http://{addr}/ca.crl\n",
        addr = server.addr
    );
    let officer = eshs.issue(
        "officer",
        "/C=TR/serialNumber=PNOTR-17291716060/GN=MEHMET/SN=KAYA/CN=MEHMET KAYA",
        &ext,
        now() - 3600,
        now() + 365 * 86400,
    );
    register(&demo, "ankara-bb", "0680049583", &officer.cert);
    let list = csv_list(&demo.work);
    let signed = |name: &str| sign(&demo.work, &list, &officer.cert, &officer.key, name);

    // No CRL published yet: no answer, no import.
    let sig = signed("liste-1.p7s");
    let out = import(&demo, "ankara-bb", &list, ("--signature", &sig), &[]);
    assert_refusal(
        &out,
        &["signature", "status cannot be checked", "ca.crl", "404"],
    );
    assert!(outbox(&demo).is_empty(), "{}", out.describe());

    // The issuer's CRL, but out of date: no answer, for now.
    fs::write(
        published.join("ca.crl"),
        eshs.crl_der_between(now() - 2 * 86400, now() - 86400),
    )
    .unwrap();
    let out = import(&demo, "ankara-bb", &list, ("--signature", &sig), &[]);
    assert_refusal(
        &out,
        &[
            "signature",
            "status cannot be checked",
            "out of date",
            "try again later",
        ],
    );
    assert!(outbox(&demo).is_empty(), "{}", out.describe());

    // A CRL of another CA at that URL proves nothing, and asking again will not help.
    let stranger = TestCa::new(&demo.work, "yabanci", "/C=TR/O=Yabancı/CN=Yabancı CA");
    fs::write(published.join("ca.crl"), stranger.crl_der()).unwrap();
    let out = import(&demo, "ankara-bb", &list, ("--signature", &sig), &[]);
    assert_refusal(
        &out,
        &[
            "signature",
            "status cannot be checked",
            "register the officer",
        ],
    );
    assert!(outbox(&demo).is_empty(), "{}", out.describe());

    // The issuer's CRL, not listing the officer: the list is imported.
    fs::write(published.join("ca.crl"), eshs.crl_der()).unwrap();
    let out = import(&demo, "ankara-bb", &list, ("--signature", &sig), &[]).ok();
    let v = json(&out);
    assert_eq!(v["status"], "accepted", "{v}");
    let invited = outbox(&demo).len();
    assert!(invited > 0, "{}", out.describe());

    // Revoked by its ESHS: the next list is refused, and no one more is invited.
    eshs.revoke(&officer.cert, "keyCompromise");
    fs::write(published.join("ca.crl"), eshs.crl_der()).unwrap();
    fs::write(
        &list,
        fs::read_to_string(&list)
            .unwrap()
            .replace("Zabıta", "Zabıta Dairesi"),
    )
    .unwrap();
    let sig = signed("liste-2.p7s");
    let out = import(&demo, "ankara-bb", &list, ("--signature", &sig), &[]);
    assert_refusal(
        &out,
        &[
            "signature",
            "officer's certificate is revoked (its issuer's CRL)",
        ],
    );
    assert_eq!(outbox(&demo).len(), invited, "{}", out.describe());

    // The ESHS's server gone: no answer again.
    drop(server);
    let out = import(&demo, "ankara-bb", &list, ("--signature", &sig), &[]);
    assert_refusal(&out, &["signature", "status cannot be checked"]);
}

/// What operators do for an institution and its people: deactivate it (its lists refused)
/// and activate it again; replace its officer (the old officer's signature refused, the new
/// one's accepted, a certificate naming someone else than the officer refused); send an
/// invited person a new access password.
#[test]
fn operators_change_officers_deactivate_and_resend_passwords() {
    let demo = Demo::init();
    let (cert, key) = institution(&demo, "ankara-bb", "0680049583");
    let list = csv_list(&demo.work);
    let old_sig = sign(&demo.work, &list, &cert, &key, "liste.p7s");
    // A NES of Çağrı (10000000078), who becomes the officer.
    let new_sig = forged_signature(&demo, &list);
    let new_cert = demo.work.join("intruder.pem");
    let config = demo.config();
    let nesca = |args: &[&str]| {
        let mut all = vec![args[0], args[1], "--config", s(&config)];
        all.extend_from_slice(&args[2..]);
        demo.nesca(&all)
    };

    let off = json(&nesca(&["institution", "deactivate", "--id", "ankara-bb"]).ok());
    assert_eq!(off["active"], false, "{off}");
    let out = import(&demo, "ankara-bb", &list, ("--signature", &old_sig), &[]);
    assert_refusal(&out, &["institution", "is deactivated"]);
    let on = json(&nesca(&["institution", "activate", "--id", "ankara-bb"]).ok());
    assert_eq!(on["active"], true, "{on}");

    let out = nesca(&[
        "institution",
        "set-officer",
        "--id",
        "ankara-bb",
        "--officer-tckn",
        "10000000146",
        "--officer-cert",
        s(&new_cert),
    ]);
    assert_refusal(&out, &["officer-cert", "names another person"]);
    let changed = json(
        &nesca(&[
            "institution",
            "set-officer",
            "--id",
            "ankara-bb",
            "--officer-tckn",
            "10000000078",
            "--officer-cert",
            s(&new_cert),
        ])
        .ok(),
    );
    assert_eq!(changed["officer_tckn"], "10000000078", "{changed}");
    let out = import(&demo, "ankara-bb", &list, ("--signature", &old_sig), &[]);
    assert_refusal(&out, &["signature", "not the officer's signature"]);
    let imported = json(&import(&demo, "ankara-bb", &list, ("--signature", &new_sig), &[]).ok());
    assert_eq!(imported["rows"]["created"], 4, "{imported}");

    let listed = nesca(&["applicant", "list", "--institution", "ankara-bb"]).ok();
    let first: Value = serde_json::from_str(listed.stdout.lines().next().unwrap()).unwrap();
    let id = first["id"].as_str().unwrap();
    let sent = outbox(&demo).len();
    nesca(&["applicant", "resend-password", "--id", id]).ok();
    assert_eq!(outbox(&demo).len(), sent + 1);
    let out = nesca(&["applicant", "resend-password", "--id", "pa-0000"]);
    assert_refusal(&out, &["id", "not an invited application"]);
    let audit = demo
        .nesca(&["audit", "verify", "--config", s(&config)])
        .ok();
    assert!(audit.stdout.contains("intact"), "{}", audit.describe());
}
