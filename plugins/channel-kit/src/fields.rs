//! Reading the fields of a JSON object with refusals that name the field: the protocol's
//! messages (`firmware_sha256: must be 64 hex digits`) rather than serde's. Parsing into a
//! `serde_json::Value` first also keeps request content out of every message: serde's type errors
//! quote the offending value, ours never do.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::error::ChannelError;

/// The payload version every JSON body of the protocol carries (`"v": 1`).
pub const PROTOCOL_VERSION: u64 = 1;

/// How a refusal is made: the error code depends on what is being read (the request body is
/// `request`, the KDB inside the KDBO is `kdb`).
pub(crate) type MakeError = fn(String, String) -> ChannelError;

/// The fields of one JSON object, named with `prefix` (`""`, `"kdb."`, `"key.hsm."`).
#[derive(Debug)]
pub(crate) struct Fields<'a> {
    map: &'a Map<String, Value>,
    prefix: String,
    make: MakeError,
}

impl<'a> Fields<'a> {
    /// The object `value`, which `name` names in a refusal.
    pub(crate) fn object(
        value: &'a Value,
        name: &str,
        make: MakeError,
    ) -> Result<Self, ChannelError> {
        match value {
            Value::Object(map) => Ok(Fields {
                map,
                prefix: if name.is_empty() {
                    String::new()
                } else {
                    format!("{name}.")
                },
                make,
            }),
            _ => Err(make(
                if name.is_empty() {
                    "body".into()
                } else {
                    name.into()
                },
                "must be a JSON object".into(),
            )),
        }
    }

    /// A top-level protocol object: an object whose `v` is 1.
    pub(crate) fn versioned(
        value: &'a Value,
        name: &str,
        make: MakeError,
    ) -> Result<Self, ChannelError> {
        let fields = Fields::object(value, name, make)?;
        match fields.get("v") {
            None => Err(fields.fail("v", "is required (1)")),
            Some(v) if v.as_u64() == Some(PROTOCOL_VERSION) => Ok(fields),
            Some(_) => Err(fields.fail(
                "v",
                "must be 1: this nesca speaks version 1 of the protocol",
            )),
        }
    }

    /// The refusal for `field` (named with the prefix) breaking `rule`.
    pub(crate) fn fail(&self, field: &str, rule: impl Into<String>) -> ChannelError {
        (self.make)(self.name(field), rule.into())
    }

    /// The full name of `field`.
    pub(crate) fn name(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    /// The value of `field`; `null` counts as absent, as it does for every optional field.
    pub(crate) fn get(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    fn required(&self, field: &str) -> Result<&'a Value, ChannelError> {
        self.get(field)
            .ok_or_else(|| self.fail(field, "is required"))
    }

    /// A required string.
    pub(crate) fn str(&self, field: &str) -> Result<&'a str, ChannelError> {
        let value = self.required(field)?;
        value
            .as_str()
            .ok_or_else(|| self.fail(field, "must be a string"))
    }

    /// An optional string.
    pub(crate) fn opt_str(&self, field: &str) -> Result<Option<&'a str>, ChannelError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| self.fail(field, "must be a string")),
        }
    }

    /// A required base64 string of non-empty bytes (DER).
    pub(crate) fn bytes(&self, field: &str) -> Result<Vec<u8>, ChannelError> {
        let text = self.str(field)?;
        decode_b64(text).map_err(|rule| self.fail(field, rule))
    }

    /// An optional list of base64 strings, at most `max` of them; absent is empty.
    pub(crate) fn bytes_list(&self, field: &str, max: usize) -> Result<Vec<Vec<u8>>, ChannelError> {
        let Some(value) = self.get(field) else {
            return Ok(Vec::new());
        };
        let items = value
            .as_array()
            .ok_or_else(|| self.fail(field, "must be a list of base64 strings"))?;
        if items.len() > max {
            return Err(self.fail(field, format!("at most {max} entries are accepted")));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let item_name = format!("{field}[{i}]");
                let text = item
                    .as_str()
                    .ok_or_else(|| self.fail(&item_name, "must be a base64 string"))?;
                decode_b64(text).map_err(|rule| self.fail(&item_name, rule))
            })
            .collect()
    }

    /// A required whole number (Unix seconds and the like).
    pub(crate) fn i64(&self, field: &str) -> Result<i64, ChannelError> {
        let value = self.required(field)?;
        value
            .as_i64()
            .ok_or_else(|| self.fail(field, "must be a whole number"))
    }

    /// An optional whole number from 1 to `u32::MAX`.
    pub(crate) fn opt_positive_u32(&self, field: &str) -> Result<Option<u32>, ChannelError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .filter(|n| *n >= 1)
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| self.fail(field, "must be a whole number from 1 to 4294967295")),
        }
    }

    /// A required whole number from 0 to `u32::MAX`.
    pub(crate) fn u32(&self, field: &str) -> Result<u32, ChannelError> {
        let value = self.required(field)?;
        value
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| self.fail(field, "must be a whole number from 0 to 4294967295"))
    }

    /// An optional nested object, its fields named `"{prefix}{field}."`.
    pub(crate) fn opt_object(&self, field: &str) -> Result<Option<Fields<'a>>, ChannelError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => Fields::object(v, &self.name(field), self.make).map(Some),
        }
    }
}

/// Standard base64 with padding, of at least one byte; the rule broken otherwise.
fn decode_b64(text: &str) -> Result<Vec<u8>, String> {
    match STANDARD.decode(text) {
        Ok(bytes) if bytes.is_empty() => Err("must not be empty".into()),
        Ok(bytes) => Ok(bytes),
        Err(_) => Err("must be standard base64 with padding".into()),
    }
}

/// Parses a JSON body: a refusal names `name` and says where the syntax broke (serde's syntax
/// errors give a line and column, never content).
pub(crate) fn parse_json(bytes: &[u8], name: &str, make: MakeError) -> Result<Value, ChannelError> {
    serde_json::from_slice(bytes).map_err(|e| {
        make(
            name.into(),
            format!("is not JSON (line {}, column {})", e.line(), e.column()),
        )
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn make(field: String, rule: String) -> ChannelError {
        ChannelError::Request { field, rule }
    }

    fn refusal(result: Result<impl std::fmt::Debug, ChannelError>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn version_is_required_and_must_be_1() {
        assert!(Fields::versioned(&json!({"v": 1}), "", make).is_ok());
        assert_eq!(
            refusal(Fields::versioned(&json!({}), "", make)),
            "v: is required (1)"
        );
        assert!(refusal(Fields::versioned(&json!({"v": 2}), "", make)).starts_with("v: must be 1"));
        assert!(
            refusal(Fields::versioned(&json!({"v": "1"}), "", make)).starts_with("v: must be 1")
        );
        assert_eq!(
            refusal(Fields::versioned(&json!([1]), "", make)),
            "body: must be a JSON object"
        );
        assert_eq!(
            refusal(Fields::versioned(&json!(3), "kdb", make)),
            "kdb: must be a JSON object"
        );
    }

    #[test]
    fn strings_bytes_and_numbers_name_the_field() {
        let v = json!({"v":1,"s":"x","n":5,"neg":-1,"b":"AQI=","bad":"***","empty":"","nul":null,
                       "list":["AQ==","!"],"obj":{"inner":7}});
        let f = Fields::versioned(&v, "", make).unwrap();
        assert_eq!(f.str("s").unwrap(), "x");
        assert_eq!(refusal(f.str("n")), "n: must be a string");
        assert_eq!(refusal(f.str("missing")), "missing: is required");
        assert_eq!(refusal(f.str("nul")), "nul: is required");
        assert_eq!(f.opt_str("nul").unwrap(), None);
        assert_eq!(f.bytes("b").unwrap(), vec![1, 2]);
        assert_eq!(
            refusal(f.bytes("bad")),
            "bad: must be standard base64 with padding"
        );
        assert_eq!(refusal(f.bytes("empty")), "empty: must not be empty");
        assert_eq!(f.i64("neg").unwrap(), -1);
        assert_eq!(refusal(f.i64("s")), "s: must be a whole number");
        assert_eq!(f.opt_positive_u32("n").unwrap(), Some(5));
        assert!(
            refusal(f.opt_positive_u32("neg")).starts_with("neg: must be a whole number from 1")
        );
        assert_eq!(f.u32("n").unwrap(), 5);
        assert_eq!(
            refusal(f.bytes_list("list", 4)),
            "list[1]: must be standard base64 with padding"
        );
        assert_eq!(
            refusal(f.bytes_list("list", 1)),
            "list: at most 1 entries are accepted"
        );
        assert_eq!(f.bytes_list("absent", 1).unwrap(), Vec::<Vec<u8>>::new());
        let inner = f.opt_object("obj").unwrap().unwrap();
        assert_eq!(refusal(inner.str("inner")), "obj.inner: must be a string");
        assert_eq!(refusal(f.opt_object("s")), "s: must be a JSON object");
    }

    #[test]
    fn syntax_errors_give_position_not_content() {
        let e = parse_json(br#"{"secret": "hunter2""#, "body", make).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("body: is not JSON (line 1, column"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
    }
}
