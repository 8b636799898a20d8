//! Payloads crossing the boundary: JSON objects, each carrying `"v": 1` (the payload version).
//!
//! Bytes (`body`, DER) travel as standard base64 with padding; headers as an array of
//! `[name, value]` pairs in the order received. A reader accepts only `"v": 1`, requires every
//! field that is not optional, and ignores fields it does not know, so that fields can be added
//! (as optional) without a new payload version. See the crate's README for examples.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The payload version written into and required from every payload (`"v"`).
pub const PAYLOAD_VERSION: u32 = 1;

/// Defines a payload struct whose JSON form carries `"v": PAYLOAD_VERSION` in front of its fields:
/// the struct itself has no `v` field, serialization adds it and deserialization checks it.
macro_rules! payload {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[doc = $doc:literal])* $(#[serde($($fattr:tt)*)])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                #[derive(::serde::Serialize)]
                struct Wire<'a> {
                    v: u32,
                    $( $(#[serde($($fattr)*)])* $field: &'a $ty, )*
                }
                ::serde::Serialize::serialize(
                    &Wire { v: $crate::payload::PAYLOAD_VERSION, $( $field: &self.$field, )* },
                    serializer,
                )
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                #[derive(::serde::Deserialize)]
                struct Wire {
                    v: u32,
                    $( $(#[serde($($fattr)*)])* $field: $ty, )*
                }
                let wire = <Wire as ::serde::Deserialize>::deserialize(deserializer)?;
                if wire.v != $crate::payload::PAYLOAD_VERSION {
                    return Err(<D::Error as ::serde::de::Error>::custom(format_args!(
                        concat!("unsupported ", stringify!($name), " payload version {} (this side speaks {})"),
                        wire.v,
                        $crate::payload::PAYLOAD_VERSION
                    )));
                }
                Ok($name { $( $field: wire.$field, )* })
            }
        }
    };
}

payload! {
    /// An HTTP request under `/channels/{name}/…`, forwarded by the host to the plugin `name`.
    pub struct HttpRequest {
        /// `GET`, `POST`, …
        pub method: String,
        /// The path after `/channels/{name}`, starting with `/` (`/` for the channel root).
        pub path: String,
        /// The query string without `?`, if there was one.
        pub query: Option<String>,
        /// Header names (lower case) and values, in the order received.
        pub headers: Vec<(String, String)>,
        /// The request body (base64 in JSON).
        #[serde(with = "b64")]
        pub body: Vec<u8>,
        /// The verified TLS client certificate chain, leaf first, DER (base64 in JSON); empty when
        /// the client presented none.
        #[serde(with = "b64_list")]
        pub client_cert_chain: Vec<Vec<u8>>,
    }
}

impl HttpRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

payload! {
    /// The plugin's answer to an [`HttpRequest`].
    pub struct HttpResponse {
        /// HTTP status code.
        pub status: u16,
        /// Header names and values.
        pub headers: Vec<(String, String)>,
        /// The response body (base64 in JSON).
        #[serde(with = "b64")]
        pub body: Vec<u8>,
    }
}

impl HttpResponse {
    /// A response with `status`, no headers and `body`.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> HttpResponse {
        HttpResponse {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: u16, body: impl Into<String>) -> HttpResponse {
        HttpResponse::new(status, body.into())
            .with_header("content-type", "text/plain; charset=utf-8")
    }

    /// An `application/json` response with `value` serialized as its body.
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> HttpResponse {
        match serde_json::to_vec(value) {
            Ok(body) => {
                HttpResponse::new(status, body).with_header("content-type", "application/json")
            }
            Err(e) => HttpResponse::text(500, format!("cannot encode the response: {e}")),
        }
    }

    /// Adds a header.
    pub fn with_header(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> HttpResponse {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Log levels a plugin may use (`HostTable::log`'s `level`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
}

impl LogLevel {
    /// The level for its ABI number, `None` for an unknown one.
    pub fn from_u32(level: u32) -> Option<LogLevel> {
        match level {
            1 => Some(LogLevel::Error),
            2 => Some(LogLevel::Warn),
            3 => Some(LogLevel::Info),
            4 => Some(LogLevel::Debug),
            _ => None,
        }
    }

    /// The ABI number of the level.
    pub fn as_u32(self) -> u32 {
        self as u32
    }
}

/// What a plugin may ask of the host: the method names ([`HostTable`](crate::HostTable)`::call`'s
/// `method`) and their request and response payloads. The host refuses any other method.
pub mod host_api {
    use super::{b64, b64_list, b64_opt};

    /// A secret in a payload (a password, a code, a token): plain text on the wire, never
    /// shown by `Debug`.
    #[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    #[serde(transparent)]
    pub struct SecretText(pub String);

    impl std::fmt::Debug for SecretText {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("SecretText([redacted])")
        }
    }

    /// [`SubmitApplication`] → [`Issued`]: an issuance application for a natural person.
    pub const SUBMIT_APPLICATION: &str = "submit_application";
    /// [`LifecycleCall`] → [`LifecycleOutcome`]: suspend, unsuspend or revoke on the holder's behalf.
    pub const LIFECYCLE: &str = "lifecycle";
    /// [`LookupCertificate`] → [`CertificateInfo`]: a certificate and its status by serial.
    pub const LOOKUP_CERTIFICATE: &str = "lookup_certificate";
    /// [`LookupApplication`] → [`ApplicationInfo`]: an application by the channel's reference.
    pub const LOOKUP_APPLICATION: &str = "lookup_application";
    /// [`SubmitCommitment`] → [`CommitmentAccepted`]: the applicant's signed commitment for a
    /// certificate issued with `commitment: true`; the host verifies it, keeps it as evidence,
    /// releases the suspension and revokes the overwritten certificate.
    pub const SUBMIT_COMMITMENT: &str = "submit_commitment";
    /// [`ImportList`] → [`ListImported`]: an institution's FRM.01.03 list, signed by its
    /// e-İmza officer (or wet-signed, held for an operator), read, checked and imported.
    pub const IMPORT_LIST: &str = "import_list";
    /// [`ApplicantCall`] → [`ApplicantAnswer`]: one step of an invited person's completion of
    /// their application (sign-in, form, SMS code, approval, status).
    pub const APPLICANT: &str = "applicant";
    /// Every method of the host API.
    pub const METHODS: &[&str] = &[
        SUBMIT_APPLICATION,
        LIFECYCLE,
        LOOKUP_CERTIFICATE,
        LOOKUP_APPLICATION,
        SUBMIT_COMMITMENT,
        IMPORT_LIST,
        APPLICANT,
    ];

    payload! {
        /// Request of [`SUBMIT_APPLICATION`].
        pub struct SubmitApplication {
            /// PKCS#10 certification request made on the card, DER (base64 in JSON). Empty
            /// (or absent) when `hsm_key` asks for a key generated in the HSM instead.
            #[serde(default, with = "b64")]
            pub csr_der: Vec<u8>,
            /// The applicant's T.C. Kimlik No (11 digits).
            pub tckn: String,
            pub given_name: String,
            pub surname: String,
            /// Requested validity; the profile's default when absent.
            pub validity_days: Option<u32>,
            /// The channel's own reference for the application (1–128 of `A-Z a-z 0-9 . _ : -`),
            /// unique per channel: submitting it again issues nothing new and answers with the
            /// first result (the kdhs and kec channels name the verification: `kdb-` and a digest
            /// of the partner's licence and the KDB's id, person, purpose and certificate).
            pub channel_ref: String,
            /// Instead of a CSR: generate the key pair in the HSM and wrap its private key for
            /// the card (added in payload 1; absent means a CSR is given).
            #[serde(default)]
            pub hsm_key: Option<HsmKeyRequest>,
            /// Issue the certificate suspended until the applicant's signed commitment
            /// (taahhütname) arrives through [`SUBMIT_COMMITMENT`]; revoked
            /// (cessationOfOperation) if it does not arrive by the deadline.
            #[serde(default)]
            pub commitment: bool,
            /// The applicant's certificate (serial, hex) that the new one overwrites on the
            /// card: it must be the same person's, and it is revoked as superseded when the new
            /// certificate is accepted (its commitment arrives; at once without `commitment`).
            #[serde(default)]
            pub overwrite_serial: Option<String>,
            /// The holder's mobile number (added in payload 1, optional): the portal's sign-in
            /// codes and the certificate's notices go to it.
            #[serde(default)]
            pub mobile: Option<String>,
            /// The holder's e-mail address for notices (optional).
            #[serde(default)]
            pub email: Option<String>,
            /// The security word the holder chose (optional): kept as an argon2id hash, the
            /// first factor of the portal's sign-in and what an operator asks on the phone.
            #[serde(default)]
            pub security_word: Option<SecretText>,
        }
    }

    /// A key generated in the HSM for a card (in [`SubmitApplication::hsm_key`]).
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    pub struct HsmKeyRequest {
        /// `"ecdsa-p256"`, `"ecdsa-p384"`, `"rsa-2048"`, `"rsa-3072"` or `"rsa-4096"`.
        pub algorithm: String,
        /// The id of a transport key an operator registered with nesca (`nesca transport-key
        /// add`): lower-case hex SHA-256 of its certificate's SubjectPublicKeyInfo, the RSA
        /// key of the card-personalisation system or of a KEC device. The host wraps only for
        /// a registered key that is not withdrawn and whose certificate is valid now, and
        /// refuses anything else (`refused`, field `hsm_key.transport_key`). A key the request
        /// brings is never wrapped for. Required; empty (absent in JSON) is refused by name.
        #[serde(default)]
        pub transport_key: String,
    }

    /// The HSM-generated private key, wrapped for the card (in [`Issued::wrapped_key`]). The
    /// card unwraps `wrapped_key` (an AES-256 key) with its transport private key under RSA-OAEP,
    /// then `wrapped_private_key` (PKCS#8) with AES key wrap with padding (RFC 5649).
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    pub struct WrappedKey {
        /// `"rsa-oaep-sha256+aes-kwp"` or `"rsa-oaep-sha1+aes-kwp"` (the OAEP hash and MGF1 hash).
        pub scheme: String,
        /// The AES-256 key under RSA-OAEP (base64 in JSON).
        #[serde(with = "b64")]
        pub wrapped_key: Vec<u8>,
        /// The PKCS#8 private key under AES-KWP (base64 in JSON).
        #[serde(with = "b64")]
        pub wrapped_private_key: Vec<u8>,
        /// The registered transport key it was wrapped for (its id, as in
        /// [`HsmKeyRequest::transport_key`]); added within payload 1, absent from older hosts.
        #[serde(default)]
        pub transport_key: Option<String>,
    }

    /// The commitment (taahhütname) the applicant signs with the new key (in
    /// [`Issued::commitment`]).
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    pub struct Commitment {
        /// The text, UTF-8; the applicant signs exactly these bytes.
        pub text: String,
        /// SHA-256 of `text`'s UTF-8 bytes, lower-case hex.
        pub sha256: String,
        /// Until when the signed commitment is accepted, Unix seconds.
        pub deadline: i64,
    }

    payload! {
        /// Response of [`SUBMIT_APPLICATION`].
        pub struct Issued {
            /// Serial number, lower-case hex.
            pub serial: String,
            /// The certificate, DER (base64 in JSON).
            #[serde(with = "b64")]
            pub certificate_der: Vec<u8>,
            /// The issuing chain, issuer first, DER (base64 in JSON).
            #[serde(with = "b64_list")]
            pub chain_der: Vec<Vec<u8>>,
            /// The certificate's status now: `"active"`, or `"suspended"` while its commitment
            /// is awaited (absent from older hosts: active).
            #[serde(default)]
            pub status: Option<String>,
            /// For `hsm_key`: the private key wrapped for the card (also on a replay).
            #[serde(default)]
            pub wrapped_key: Option<WrappedKey>,
            /// For `commitment: true`: what the applicant must sign, and by when.
            #[serde(default)]
            pub commitment: Option<Commitment>,
            /// True when `channel_ref` had been seen and this is the first result again.
            #[serde(default)]
            pub replayed: bool,
        }
    }

    payload! {
        /// Request of [`SUBMIT_COMMITMENT`].
        pub struct SubmitCommitment {
            /// The certificate's serial, hex.
            pub serial: String,
            /// CMS SignedData (RFC 5652) over the commitment text's UTF-8 bytes, attached or
            /// detached, signed with the new certificate's key (base64 in JSON).
            #[serde(with = "b64")]
            pub signed_commitment_der: Vec<u8>,
        }
    }

    payload! {
        /// Response of [`SUBMIT_COMMITMENT`].
        pub struct CommitmentAccepted {
            /// The certificate's serial, lower-case hex.
            pub serial: String,
            /// The certificate's status afterwards (`"active"`).
            pub status: String,
            /// The signed commitment as kept in evidence (base64 in JSON).
            #[serde(with = "b64")]
            pub signed_commitment_der: Vec<u8>,
            /// The overwritten certificate revoked as superseded (serial, hex), if any.
            pub superseded: Option<String>,
            /// True when the commitment had been accepted before and this is that result again.
            pub replayed: bool,
        }
    }

    payload! {
        /// Request of [`LIFECYCLE`].
        pub struct LifecycleCall {
            /// Idempotency key: the same id returns the first outcome with `replayed: true`.
            pub request_id: String,
            /// Serial number, hex.
            pub serial: String,
            /// The holder's T.C. Kimlik No; must be the certificate's.
            pub holder_tckn: String,
            /// `"suspend"`, `"unsuspend"` or `"revoke"`.
            pub action: String,
            /// RFC 5280 reason name for a revocation (e.g. `"keyCompromise"`).
            pub reason: Option<String>,
            /// Invalidity date, Unix seconds.
            pub invalidity_date: Option<i64>,
        }
    }

    payload! {
        /// Response of [`LIFECYCLE`].
        pub struct LifecycleOutcome {
            /// The certificate's status afterwards (`"active"`, `"suspended"`, `"revoked"`).
            pub status: String,
            /// When the change took effect, Unix seconds.
            pub at: i64,
            pub reason: Option<String>,
            /// True when `request_id` had been seen and this is the first outcome again.
            pub replayed: bool,
        }
    }

    payload! {
        /// Request of [`IMPORT_LIST`]. Exactly one of `signature_der` and `wet_scan` is given.
        pub struct ImportList {
            /// The institution's id in nesca.
            pub institution: String,
            /// The file's name; its ending (`.xlsx`, `.csv`) says how to read it.
            pub file_name: String,
            /// The list, as uploaded (base64 in JSON).
            #[serde(with = "b64")]
            pub file: Vec<u8>,
            /// The officer's detached CMS signature over `file`, DER (base64 in JSON).
            #[serde(default, with = "b64_opt")]
            pub signature_der: Option<Vec<u8>>,
            /// The scan of the list signed on paper (base64 in JSON): the rows are held until an
            /// operator confirms the paper.
            #[serde(default, with = "b64_opt")]
            pub wet_scan: Option<Vec<u8>>,
        }
    }

    /// One problem of one row (in [`ListImported::problems`]).
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    pub struct ListProblem {
        /// The row in the file (header is row 1).
        pub row: u32,
        pub field: String,
        pub reason: String,
    }

    payload! {
        /// Response of [`IMPORT_LIST`].
        pub struct ListImported {
            /// SHA-256 of the file, hex: the same file again imports nothing new.
            pub file_sha256: String,
            /// `"accepted"`, or `"awaiting_confirmation"` for a wet-signed list.
            pub status: String,
            /// True when this file had been imported before (nothing new was written).
            pub replayed: bool,
            pub valid: u64,
            pub invalid: u64,
            pub created: u64,
            pub already_open: u64,
            /// Row by row, in row order.
            pub problems: Vec<ListProblem>,
            pub warnings: Vec<String>,
            /// The problems as csv (`row,field,reason`, CRLF), for download.
            pub report_csv: String,
        }
    }

    payload! {
        /// Request of [`APPLICANT`]. `action` says which step; it names the fields it reads:
        /// `sign_in` (`tckn`, `password`) · `status` · `form` (`security_word`,
        /// `do_not_publish`, `delivery_address`) · `resend_code` · `confirm_code` (`code`) ·
        /// `approval_text` · `approve` (`method`: `e-onay`, `signature` with
        /// `signature_der`, or `wet`) · `wet_form` (the wet-signature form again, while it is
        /// awaited). Every action but `sign_in` needs `token`.
        pub struct ApplicantCall {
            pub action: String,
            #[serde(default)]
            pub token: Option<SecretText>,
            #[serde(default)]
            pub tckn: Option<String>,
            /// The access password (a secret: never logged).
            #[serde(default)]
            pub password: Option<SecretText>,
            /// Sign-in: the applicant's IP address as the portal saw it (text). Failures are
            /// counted per person and address; without it every applicant of the portal is
            /// one source.
            #[serde(default)]
            pub client_address: Option<String>,
            /// The security word (a secret: stored hashed, never logged).
            #[serde(default)]
            pub security_word: Option<SecretText>,
            #[serde(default)]
            pub do_not_publish: Option<bool>,
            #[serde(default)]
            pub delivery_address: Option<String>,
            /// The SMS code (a secret).
            #[serde(default)]
            pub code: Option<SecretText>,
            #[serde(default)]
            pub method: Option<String>,
            /// CMS SignedData over the approval text, DER (base64 in JSON).
            #[serde(default, with = "b64_opt")]
            pub signature_der: Option<Vec<u8>>,
        }
    }

    /// An application as its applicant sees it.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    pub struct ApplicantState {
        pub id: String,
        /// `invited`, `form`, `confirmed`, `awaiting_wet`, `approved`, `produced`.
        pub stage: String,
        pub institution: String,
        pub given_name: String,
        pub surname: String,
        pub email: String,
        /// The listed mobile number, masked (`+90532*****67`).
        pub mobile: String,
        pub do_not_publish: bool,
        pub delivery_address: Option<String>,
        pub approval_method: Option<String>,
        /// A renewal is held until this time (Unix seconds).
        pub produce_after: Option<i64>,
        /// The certificate's serial (hex), once produced.
        pub serial: Option<String>,
    }

    payload! {
        /// Response of [`APPLICANT`]: what the step gives. A refused step is a
        /// [`HostError`](crate::HostError) (`invalid`, `unauthenticated`, `locked`, `conflict`,
        /// `unavailable`), like any refused call.
        pub struct ApplicantAnswer {
            /// `sign_in`: the session token (a secret) and its expiry.
            #[serde(default)]
            pub token: Option<SecretText>,
            #[serde(default)]
            pub expires_at: Option<i64>,
            #[serde(default)]
            pub application: Option<ApplicantState>,
            /// `approval_text`: the text to sign, and its SHA-256 (hex).
            #[serde(default)]
            pub approval_text: Option<String>,
            #[serde(default)]
            pub approval_text_sha256: Option<String>,
            /// `approve` with `wet`: the form to print and sign (PDF, base64 in JSON).
            #[serde(default, with = "b64_opt")]
            pub form_pdf: Option<Vec<u8>>,
        }
    }

    payload! {
        /// Request of [`LOOKUP_CERTIFICATE`].
        pub struct LookupCertificate {
            /// Serial number, hex.
            pub serial: String,
        }
    }

    payload! {
        /// Response of [`LOOKUP_CERTIFICATE`].
        pub struct CertificateInfo {
            /// Serial number, lower-case hex.
            pub serial: String,
            /// `"active"`, `"suspended"`, `"revoked"` or `"expired"`.
            pub status: String,
            /// Subject DN as text (RFC 4514).
            pub subject: String,
            /// The holder's T.C. Kimlik No, for a natural person's certificate.
            pub tckn: Option<String>,
            /// Unix seconds.
            pub not_before: i64,
            /// Unix seconds.
            pub not_after: i64,
            /// The certificate, DER (base64 in JSON), when the host chooses to include it.
            #[serde(default, with = "b64_opt")]
            pub certificate_der: Option<Vec<u8>>,
        }
    }

    payload! {
        /// Request of [`LOOKUP_APPLICATION`].
        pub struct LookupApplication {
            /// The `channel_ref` the application was submitted with.
            pub channel_ref: String,
        }
    }

    payload! {
        /// Response of [`LOOKUP_APPLICATION`].
        pub struct ApplicationInfo {
            pub channel_ref: String,
            /// `"pending"` (being issued), `"issued"` or `"refused"`.
            pub status: String,
            /// The certificate's serial, lower-case hex, once issued.
            pub serial: Option<String>,
            /// Why it was refused.
            pub error: Option<String>,
            /// Unix seconds.
            pub submitted_at: i64,
        }
    }
}

/// Decodes a payload of type `T` from JSON; the error says what was wrong (never the content).
pub fn decode<T: DeserializeOwned>(json: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(json)
}

/// Encodes a payload as JSON.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(value)
}

/// `#[serde(with)]` for bytes as standard base64. Generic over `AsRef<[u8]>` so that it also
/// serializes the `&Vec<u8>` fields of the wire structs.
mod b64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer, T: AsRef<[u8]> + ?Sized>(
        bytes: &T,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes.as_ref()))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(|e| D::Error::custom(format_args!("invalid base64: {e}")))
    }
}

/// `#[serde(with)]` for a list of byte strings, each standard base64.
mod b64_list {
    use serde::ser::SerializeSeq as _;
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(serde::Serialize)]
    struct Item<'a>(#[serde(with = "super::b64")] &'a [u8]);

    #[derive(Deserialize)]
    struct Owned(#[serde(with = "super::b64")] Vec<u8>);

    pub(super) fn serialize<S: Serializer, T: AsRef<[Vec<u8>]> + ?Sized>(
        list: &T,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let list = list.as_ref();
        let mut seq = s.serialize_seq(Some(list.len()))?;
        for item in list {
            seq.serialize_element(&Item(item))?;
        }
        seq.end()
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Ok(Vec::<Owned>::deserialize(d)?
            .into_iter()
            .map(|o| o.0)
            .collect())
    }
}

/// `#[serde(with)]` for optional bytes: `null` (or absent, with `default`) or standard base64.
mod b64_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    /// `Option<Vec<u8>>`, also behind any number of references.
    pub(super) trait OptBytes {
        fn opt_bytes(&self) -> Option<&[u8]>;
    }
    impl OptBytes for Option<Vec<u8>> {
        fn opt_bytes(&self) -> Option<&[u8]> {
            self.as_deref()
        }
    }
    impl<T: OptBytes + ?Sized> OptBytes for &T {
        fn opt_bytes(&self) -> Option<&[u8]> {
            (**self).opt_bytes()
        }
    }

    #[derive(Deserialize)]
    struct Owned(#[serde(with = "super::b64")] Vec<u8>);

    pub(super) fn serialize<S: Serializer, T: OptBytes + ?Sized>(
        value: &T,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value.opt_bytes() {
            Some(bytes) => super::b64::serialize(bytes, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        Ok(Option::<Owned>::deserialize(d)?.map(|o| o.0))
    }
}

#[cfg(test)]
mod tests {
    use super::host_api::*;
    use super::*;
    use serde_json::{json, Value};

    fn request() -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            path: "/applications".into(),
            query: Some("a=1&b=2".into()),
            headers: vec![("content-type".into(), "application/json".into())],
            body: vec![0, 1, 2, 0xff, b'x'],
            client_cert_chain: vec![vec![0x30, 0x82, 0x01], vec![0x30, 0x03]],
        }
    }

    #[test]
    fn http_request_round_trips_with_version_and_base64() {
        let req = request();
        let json: Value = serde_json::to_value(&req).unwrap();
        assert_eq!(json["v"], 1);
        assert_eq!(json["body"], "AAEC/3g=");
        assert_eq!(json["client_cert_chain"], json!(["MIIB", "MAM="]));
        assert_eq!(
            json["headers"],
            json!([["content-type", "application/json"]])
        );
        let back: HttpRequest = serde_json::from_value(json).unwrap();
        assert_eq!(back, req);
        assert_eq!(back.header("Content-Type"), Some("application/json"));
        assert_eq!(back.header("accept"), None);
    }

    #[test]
    fn http_response_round_trips() {
        let resp = HttpResponse::text(201, "créé").with_header("x-a", "b");
        let bytes = encode(&resp).unwrap();
        let back: HttpResponse = decode(&bytes).unwrap();
        assert_eq!(back, resp);
        assert_eq!(back.body, "créé".as_bytes());
        let j = HttpResponse::json(200, &json!({"k": 1}));
        assert_eq!(j.body, br#"{"k":1}"#);
    }

    #[test]
    fn version_is_required_and_checked() {
        let missing = decode::<HttpResponse>(br#"{"status":200,"headers":[],"body":""}"#)
            .unwrap_err()
            .to_string();
        assert!(missing.contains("missing field `v`"), "{missing}");
        let wrong = decode::<HttpResponse>(br#"{"v":2,"status":200,"headers":[],"body":""}"#)
            .unwrap_err()
            .to_string();
        assert!(
            wrong.contains("payload version 2 (this side speaks 1)"),
            "{wrong}"
        );
    }

    #[test]
    fn payloads_of_older_peers_still_decode() {
        // A plugin built before the optional fields: no hsm_key, commitment, overwrite_serial.
        let old: SubmitApplication = decode(
            br#"{"v":1,"csr_der":"MAE=","tckn":"10000000146","given_name":"A","surname":"B","validity_days":null,"channel_ref":"r"}"#,
        )
        .unwrap();
        assert_eq!(
            (old.hsm_key, old.commitment, old.overwrite_serial),
            (None, false, None)
        );
        // A host before them: no status, wrapped_key, commitment, replayed.
        let old: Issued =
            decode(br#"{"v":1,"serial":"0a","certificate_der":"MAE=","chain_der":[]}"#).unwrap();
        assert_eq!(
            (old.status, old.wrapped_key, old.commitment, old.replayed),
            (None, None, None, false)
        );
    }

    #[test]
    fn unknown_fields_are_ignored_and_bad_base64_refused() {
        let ok: HttpResponse =
            decode(br#"{"v":1,"status":204,"headers":[],"body":"","added_later":true}"#).unwrap();
        assert_eq!(ok.status, 204);
        let bad = decode::<HttpResponse>(br#"{"v":1,"status":200,"headers":[],"body":"***"}"#)
            .unwrap_err()
            .to_string();
        assert!(bad.contains("invalid base64"), "{bad}");
    }

    #[test]
    fn host_api_payloads_round_trip() {
        let sub = SubmitApplication {
            csr_der: vec![0x30, 1, 2],
            tckn: "10000000146".into(),
            given_name: "Ayşe".into(),
            surname: "Yılmaz".into(),
            validity_days: None,
            channel_ref: "kdhs:42".into(),
            hsm_key: None,
            commitment: false,
            overwrite_serial: None,
            mobile: Some("+905321234567".into()),
            email: None,
            security_word: Some(SecretText("gizli1234".into())),
        };
        assert!(!format!("{sub:?}").contains("gizli1234"));
        let back: SubmitApplication = decode(&encode(&sub).unwrap()).unwrap();
        assert_eq!(back, sub);
        let card = SubmitApplication {
            csr_der: Vec::new(),
            hsm_key: Some(HsmKeyRequest {
                algorithm: "ecdsa-p256".into(),
                transport_key: "ab".repeat(32),
            }),
            commitment: true,
            overwrite_serial: Some("0a1b".into()),
            ..sub.clone()
        };
        assert_eq!(
            decode::<SubmitApplication>(&encode(&card).unwrap()).unwrap(),
            card
        );

        let issued = Issued {
            serial: "0a1b".into(),
            certificate_der: vec![1, 2, 3],
            chain_der: vec![vec![4], vec![]],
            status: Some("suspended".into()),
            wrapped_key: Some(WrappedKey {
                scheme: "rsa-oaep-sha1+aes-kwp".into(),
                wrapped_key: vec![5],
                wrapped_private_key: vec![6, 7],
                transport_key: Some("ab".repeat(32)),
            }),
            commitment: Some(Commitment {
                text: "TAAHHÜTNAME".into(),
                sha256: "00".into(),
                deadline: 3,
            }),
            replayed: false,
        };
        assert_eq!(decode::<Issued>(&encode(&issued).unwrap()).unwrap(), issued);

        let signed = SubmitCommitment {
            serial: "0a1b".into(),
            signed_commitment_der: vec![0x30, 0x80],
        };
        assert_eq!(
            decode::<SubmitCommitment>(&encode(&signed).unwrap()).unwrap(),
            signed
        );
        let accepted = CommitmentAccepted {
            serial: "0a1b".into(),
            status: "active".into(),
            signed_commitment_der: vec![0x30, 0x80],
            superseded: Some("0c".into()),
            replayed: true,
        };
        assert_eq!(
            decode::<CommitmentAccepted>(&encode(&accepted).unwrap()).unwrap(),
            accepted
        );

        let call = LifecycleCall {
            request_id: "r1".into(),
            serial: "0a1b".into(),
            holder_tckn: "10000000146".into(),
            action: "revoke".into(),
            reason: Some("keyCompromise".into()),
            invalidity_date: Some(1_700_000_000),
        };
        assert_eq!(
            decode::<LifecycleCall>(&encode(&call).unwrap()).unwrap(),
            call
        );

        let outcome = LifecycleOutcome {
            status: "revoked".into(),
            at: 1_700_000_001,
            reason: None,
            replayed: false,
        };
        assert_eq!(
            decode::<LifecycleOutcome>(&encode(&outcome).unwrap()).unwrap(),
            outcome
        );

        let lookup = LookupCertificate {
            serial: "0a1b".into(),
        };
        assert_eq!(encode(&lookup).unwrap(), br#"{"v":1,"serial":"0a1b"}"#);
        assert_eq!(
            decode::<LookupCertificate>(&encode(&lookup).unwrap()).unwrap(),
            lookup
        );

        for der in [None, Some(vec![9u8, 8])] {
            let info = CertificateInfo {
                serial: "0a1b".into(),
                status: "active".into(),
                subject: "CN=Ayşe Yılmaz".into(),
                tckn: Some("10000000146".into()),
                not_before: 1,
                not_after: 2,
                certificate_der: der,
            };
            assert_eq!(
                decode::<CertificateInfo>(&encode(&info).unwrap()).unwrap(),
                info
            );
        }
        // An absent optional DER reads as None.
        let info: CertificateInfo = decode(
            br#"{"v":1,"serial":"01","status":"active","subject":"CN=x","tckn":null,"not_before":1,"not_after":2}"#,
        )
        .unwrap();
        assert_eq!(info.certificate_der, None);
    }

    #[test]
    fn log_levels_map_both_ways() {
        for level in [
            LogLevel::Error,
            LogLevel::Warn,
            LogLevel::Info,
            LogLevel::Debug,
        ] {
            assert_eq!(LogLevel::from_u32(level.as_u32()), Some(level));
        }
        assert_eq!(LogLevel::from_u32(0), None);
        assert_eq!(LogLevel::from_u32(5), None);
    }
}
