//! Test helpers: a software CA key standing in for the HSM (unit tests only; the end-to-end
//! tests use SoftHSM), a temporary store, a demo hierarchy and CSRs.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use der::Encode;
use x509_cert::builder::{Builder, RequestBuilder};

use crate::bootstrap::{create_hierarchy, CaKey, HierarchyPlan};
use crate::engine::{Engine, SigningCa, TbsSigner};
use crate::name::organization_name;
use crate::profile::{CaUrls, NesProfile};
use crate::store::prelude::*;
use crate::store::SqliteStore;
use crate::{FixedClock, IssuerId};

/// A P-256 key in memory: `nesca-ca-types`' test signer, at the path ca-core's users name.
pub use nesca_ca_types::testkit::SoftSigner;

/// A store, an engine on a fixed clock, and an issuing CA under a fresh root.
pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub store: Arc<SqliteStore>,
    pub engine: Engine,
    pub clock: Arc<FixedClock>,
    pub ca: SigningCa,
    pub nes: NesProfile,
}

pub const PUBLIC_URL: &str = "http://pki.nesca-demo.com.tr";

/// 2026-11-22T00:00:00Z.
pub fn test_now() -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_305_600)
}

/// A temporary directory only its owner may enter (0700), as the store's directory must be
/// (`SqliteStore::open` refuses one that group or others can read or write).
pub fn private_tempdir() -> tempfile::TempDir {
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700));
    builder.tempdir().expect("temp dir")
}

pub fn fixture_with(issuing_signer: Arc<dyn TbsSigner>) -> Fixture {
    let dir = private_tempdir();
    let store = Arc::new(SqliteStore::open(&dir.path().join("t.db")).expect("open store"));
    let clock = Arc::new(FixedClock::new(test_now()));
    let store_dyn: Arc<dyn Store> = store.clone();
    let engine = Engine::new(store_dyn, clock.clone());
    let plan = HierarchyPlan {
        root_id: IssuerId::parse("root-ca").unwrap(),
        root_name: organization_name("TR", "Test ESHS", "Test Root").unwrap(),
        root_validity_days: 7305,
        issuing_id: IssuerId::parse("nes-ca").unwrap(),
        issuing_name: organization_name("TR", "Test ESHS", "Test NES CA").unwrap(),
        issuing_validity_days: 3653,
        ocsp_name: organization_name("TR", "Test ESHS", "Test OCSP").unwrap(),
        ocsp_validity_days: 90,
        public_url: PUBLIC_URL.into(),
    };
    let key = |label: &str, signer: Arc<dyn TbsSigner>| CaKey {
        label: label.into(),
        signer,
    };
    let h = create_hierarchy(
        &engine,
        &plan,
        key("root", Arc::new(SoftSigner::random())),
        key("issuing", issuing_signer.clone()),
        key("ocsp", Arc::new(SoftSigner::random())),
        &crate::Principal::HostOperator,
    )
    .expect("hierarchy");
    let ca = SigningCa::new(
        plan.issuing_id.clone(),
        h.issuing_cert,
        issuing_signer,
        Some(CaUrls::new(PUBLIC_URL, &plan.issuing_id).unwrap()),
    )
    .unwrap();
    let nes = NesProfile::from_config(&crate::profile::nes_demo_config()).unwrap();
    Fixture {
        _dir: dir,
        store,
        engine,
        clock,
        ca,
        nes,
    }
}

pub fn fixture() -> Fixture {
    fixture_with(Arc::new(SoftSigner::random()))
}

/// The NES application of the test holder (AYŞE YILMAZ, 10000000146) with a fresh P-256 CSR.
pub fn nes_application(
    validity_days: Option<u32>,
    await_commitment: bool,
) -> crate::engine::NesApplication {
    crate::engine::NesApplication {
        key: crate::VerifiedCsr::parse(&p256_csr()).unwrap().into(),
        tckn: crate::Tckn::parse("10000000146").unwrap(),
        given_name: crate::PersonName::parse("given-name", "AYŞE").unwrap(),
        surname: crate::PersonName::parse("surname", "YILMAZ").unwrap(),
        validity_days,
        await_commitment,
    }
}

/// A P-256 CSR, DER.
pub fn p256_csr() -> Vec<u8> {
    let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let subject = organization_name("TR", "x", "applicant").unwrap();
    RequestBuilder::new(subject, &key)
        .unwrap()
        .build::<p256::ecdsa::DerSignature>()
        .unwrap()
        .to_der()
        .unwrap()
}

/// The test institution "ankara-bb" (payer: the institution; officer 10000000146 with a
/// placeholder certificate: tests write its lists straight to the store).
pub fn institution_record() -> crate::institution::InstitutionRecord {
    use crate::institution::{InstitutionId, InstitutionRecord, Payer, TaxNo};
    InstitutionRecord {
        id: InstitutionId::parse("ankara-bb").unwrap(),
        name: "Ankara Büyükşehir Belediyesi".into(),
        tax_no: TaxNo::parse("0680049583").unwrap(),
        payer: Payer::Institution,
        officer_tckn: crate::Tckn::parse("10000000146").unwrap(),
        officer_cert_der: vec![0x30, 0x00],
        created_at: crate::UnixTime::from_secs(1),
        active: true,
    }
}

/// Registers the test institution "ankara-bb" ([`institution_record`]).
pub fn demo_institution(f: &Fixture) -> crate::institution::InstitutionId {
    let record = institution_record();
    let id = record.id.clone();
    f.store
        .add_institution(
            record,
            &crate::Principal::HostOperator,
            crate::UnixTime::from_secs(1),
        )
        .unwrap();
    id
}

/// A checked list row: surname ÖZTÜRK, e-mail p{n}@example.gov.tr, mobile +905321234567.
pub fn list_row(n: u32, tckn: &str, given: &str) -> crate::institution::ListRow {
    crate::institution::ListRow {
        row: n,
        tckn: crate::Tckn::parse(tckn).unwrap(),
        given_name: crate::PersonName::parse("given-name", given).unwrap(),
        surname: crate::PersonName::parse("surname", "ÖZTÜRK").unwrap(),
        email: crate::Email::parse("email", &format!("p{n}@example.gov.tr")).unwrap(),
        mobile: crate::TrMobile::parse("mobile", "05321234567").unwrap(),
        unit: "Bilgi İşlem".into(),
        title: None,
    }
}

/// The PostgreSQL server tests create their databases on: `NESCA_TEST_POSTGRES_URL`, by
/// default the local server's `postgres` database as user `postgres` (trust authentication).
pub fn test_postgres_url() -> String {
    std::env::var("NESCA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A PostgreSQL database of its own for one test, dropped with this guard.
pub struct TestDatabase(crate::store::ScratchDatabase);

impl TestDatabase {
    /// Creates an empty database with a name no other test uses.
    pub fn create() -> TestDatabase {
        let url = test_postgres_url();
        TestDatabase(
            crate::store::ScratchDatabase::create(&url, "nesca_test")
                .unwrap_or_else(|e| panic!("create a test database on {url}: {e}")),
        )
    }

    /// The database's URL.
    pub fn url(&self) -> String {
        self.0.url().to_owned()
    }

    /// Options to open a store on the database.
    pub fn options(&self) -> crate::store::PgOptions {
        crate::store::PgOptions {
            url: self.url(),
            password: None,
            tls: crate::store::PgTls::Disable,
            pool_size: 4,
        }
    }
}
