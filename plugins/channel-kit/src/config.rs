//! The plugin configuration (`[[plugins]] config = {…}` of nesca.toml, handed over as JSON at
//! `init`): a reader that refuses unknown keys and bad values with the key's name, and the keys
//! both identity-card channels share.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Map, Value};

use crate::error::ChannelError;
use crate::identifiers::is_sha256_hex;
use crate::pem::read_certificates;

/// The default of `kdb_max_age_minutes`.
pub const DEFAULT_KDB_MAX_AGE_MINUTES: u32 = 15;
/// The largest `kdb_max_age_minutes` accepted: one day.
pub const MAX_KDB_MAX_AGE_MINUTES: u32 = 1440;

/// The keys [`CommonConfig::read`] reads; a channel adds its own to them.
pub const COMMON_KEYS: &[&str] = &["idcard_ca", "firmware_sha256", "kdb_max_age_minutes"];

/// A plugin's configuration object, read key by key.
#[derive(Debug)]
pub struct ConfigReader {
    map: Map<String, Value>,
}

impl ConfigReader {
    /// The configuration `config`, whose keys must all be among `known` (an unknown key is
    /// most often a typo, and silently ignoring it would run with a default the operator did not
    /// mean). `null` reads as an empty configuration.
    pub fn new(config: Value, known: &[&str]) -> Result<ConfigReader, ChannelError> {
        let map = match config {
            Value::Null => Map::new(),
            Value::Object(map) => map,
            _ => return Err(ChannelError::config("config", "must be a table of keys")),
        };
        if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(ChannelError::config(
                unknown.as_str(),
                format!(
                    "is not a configuration key of this channel (known: {})",
                    known.join(", ")
                ),
            ));
        }
        Ok(ConfigReader { map })
    }

    fn required(&self, key: &str) -> Result<&Value, ChannelError> {
        self.map
            .get(key)
            .ok_or_else(|| ChannelError::config(key, "is required"))
    }

    /// A required, non-empty list of non-empty strings.
    pub fn string_list(&self, key: &str) -> Result<Vec<String>, ChannelError> {
        let items = self
            .required(key)?
            .as_array()
            .ok_or_else(|| ChannelError::config(key, "must be a list of strings"))?;
        if items.is_empty() {
            return Err(ChannelError::config(key, "must list at least one entry"));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item.as_str() {
                Some(s) if !s.trim().is_empty() => Ok(s.to_owned()),
                _ => Err(ChannelError::config(
                    format!("{key}[{i}]"),
                    "must be a non-empty string",
                )),
            })
            .collect()
    }

    /// The certificates of the PEM file whose path is the required string `key` (relative
    /// paths are relative to the server's working directory).
    pub fn certificates(&self, key: &str) -> Result<Vec<Vec<u8>>, ChannelError> {
        let path = self
            .required(key)?
            .as_str()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| ChannelError::config(key, "must be the path of a PEM file"))?;
        read_certificates(key, Path::new(path))
    }

    /// An optional table whose every value is a non-empty list of non-empty strings (empty when
    /// the key is absent), e.g. `operator_firmware = { "BTK-KEC-07" = ["…"] }`.
    pub fn string_list_table(&self, key: &str) -> Result<Vec<(String, Vec<String>)>, ChannelError> {
        let Some(value) = self.map.get(key) else {
            return Ok(Vec::new());
        };
        let table = value
            .as_object()
            .ok_or_else(|| ChannelError::config(key, "must be a table of lists of strings"))?;
        table
            .iter()
            .map(|(name, list)| {
                let field = format!("{key}.{name}");
                if name.trim().is_empty() {
                    return Err(ChannelError::config(key, "a name must not be empty"));
                }
                let reader = ConfigReader {
                    map: Map::from_iter([(field.clone(), list.clone())]),
                };
                Ok((name.clone(), reader.string_list(&field)?))
            })
            .collect()
    }

    /// An optional whole number in `min..=max`, `default` when absent.
    pub fn u32_in(&self, key: &str, min: u32, max: u32, default: u32) -> Result<u32, ChannelError> {
        let Some(value) = self.map.get(key) else {
            return Ok(default);
        };
        value
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                ChannelError::config(key, format!("must be a whole number from {min} to {max}"))
            })
    }
}

/// The approved KEC firmware digests (lower-case hex), check 9.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareDigests(BTreeSet<String>);

impl FirmwareDigests {
    /// The digests listed under `key`: each 64 hex digits, either case.
    pub fn read(config: &ConfigReader, key: &str) -> Result<FirmwareDigests, ChannelError> {
        FirmwareDigests::parse(key, &config.string_list(key)?)
    }

    /// The digests `list`, which the configuration key `key` holds.
    pub fn parse(key: &str, list: &[String]) -> Result<FirmwareDigests, ChannelError> {
        let mut digests = BTreeSet::new();
        for (i, digest) in list.iter().enumerate() {
            if !is_sha256_hex(digest) {
                return Err(ChannelError::config(
                    format!("{key}[{i}]"),
                    "must be a SHA-256 digest: 64 hex digits",
                ));
            }
            digests.insert(digest.to_ascii_lowercase());
        }
        Ok(FirmwareDigests(digests))
    }

    /// Check 9: `digest` (already known to be 64 hex digits) is approved; case does not matter.
    pub fn check(&self, digest: &str) -> Result<(), ChannelError> {
        if self.0.contains(&digest.to_ascii_lowercase()) {
            return Ok(());
        }
        Err(ChannelError::firmware(
            "firmware_sha256",
            "is not the digest of an approved KEC firmware",
        ))
    }
}

/// The configuration both identity-card channels share.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    /// `idcard_ca`: the identity-card CA certificates the authentication certificate must chain
    /// to (DER).
    pub idcard_ca: Vec<Vec<u8>>,
    /// `firmware_sha256`: the approved KEC firmware digests.
    pub firmware: FirmwareDigests,
    /// `kdb_max_age_minutes`: how old an identity verification may be (1 to 1440, default 15).
    pub kdb_max_age_minutes: u32,
}

impl CommonConfig {
    /// Reads [`COMMON_KEYS`] from `config`.
    pub fn read(config: &ConfigReader) -> Result<CommonConfig, ChannelError> {
        Ok(CommonConfig {
            idcard_ca: config.certificates("idcard_ca")?,
            firmware: FirmwareDigests::read(config, "firmware_sha256")?,
            kdb_max_age_minutes: config.u32_in(
                "kdb_max_age_minutes",
                1,
                MAX_KDB_MAX_AGE_MINUTES,
                DEFAULT_KDB_MAX_AGE_MINUTES,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::pem::to_pem;
    use crate::testing::pki::Pki;

    const KEYS: &[&str] = &[
        "idcard_ca",
        "firmware_sha256",
        "kdb_max_age_minutes",
        "extra",
    ];

    fn refusal(config: Value) -> String {
        ConfigReader::new(config, KEYS)
            .and_then(|r| CommonConfig::read(&r))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn reads_the_common_keys() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("idcard.pem");
        std::fs::write(&ca, to_pem(&[Pki::get().idcard_root.cert.clone()])).unwrap();
        let digest = "AB".repeat(32);
        let config = json!({"idcard_ca": ca, "firmware_sha256": [digest]});
        let common = CommonConfig::read(&ConfigReader::new(config.clone(), KEYS).unwrap()).unwrap();
        assert_eq!(common.idcard_ca, vec![Pki::get().idcard_root.cert.clone()]);
        assert_eq!(common.kdb_max_age_minutes, DEFAULT_KDB_MAX_AGE_MINUTES);
        assert!(common.firmware.check(&"ab".repeat(32)).is_ok());
        let e = common.firmware.check(&"cd".repeat(32)).unwrap_err();
        assert_eq!(e.code(), "firmware");
        assert_eq!(
            e.to_string(),
            "firmware_sha256: is not the digest of an approved KEC firmware"
        );

        let mut longer = config;
        longer["kdb_max_age_minutes"] = json!(1440);
        let common = CommonConfig::read(&ConfigReader::new(longer, KEYS).unwrap()).unwrap();
        assert_eq!(common.kdb_max_age_minutes, 1440);
    }

    #[test]
    fn refusals_name_the_key() {
        assert!(refusal(json!({"idcard_cert": "x"})).starts_with(
            "idcard_cert: is not a configuration key of this channel (known: idcard_ca, firmware_sha256"
        ));
        assert_eq!(refusal(json!(["x"])), "config: must be a table of keys");
        assert_eq!(refusal(json!({})), "idcard_ca: is required");
        assert_eq!(refusal(Value::Null), "idcard_ca: is required");
        assert_eq!(
            refusal(json!({"idcard_ca": 3})),
            "idcard_ca: must be the path of a PEM file"
        );

        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("idcard.pem");
        std::fs::write(&ca, to_pem(&[Pki::get().idcard_root.cert.clone()])).unwrap();
        let good = "0".repeat(64);
        let cases = [
            (
                json!({"idcard_ca": ca, "firmware_sha256": []}),
                "firmware_sha256: must list at least one entry",
            ),
            (
                json!({"idcard_ca": ca, "firmware_sha256": "x"}),
                "firmware_sha256: must be a list of strings",
            ),
            (
                json!({"idcard_ca": ca, "firmware_sha256": [good, "abc"]}),
                "firmware_sha256[1]: must be a SHA-256 digest: 64 hex digits",
            ),
            (
                json!({"idcard_ca": ca, "firmware_sha256": [""]}),
                "firmware_sha256[0]: must be a non-empty string",
            ),
            (
                json!({"idcard_ca": ca, "firmware_sha256": [good], "kdb_max_age_minutes": 0}),
                "kdb_max_age_minutes: must be a whole number from 1 to 1440",
            ),
            (
                json!({"idcard_ca": ca, "firmware_sha256": [good], "kdb_max_age_minutes": 1441}),
                "kdb_max_age_minutes: must be a whole number from 1 to 1440",
            ),
            (
                json!({"idcard_ca": ca, "firmware_sha256": [good], "kdb_max_age_minutes": "15"}),
                "kdb_max_age_minutes: must be a whole number from 1 to 1440",
            ),
        ];
        for (config, expected) in cases {
            assert_eq!(refusal(config), expected);
        }
    }
}
