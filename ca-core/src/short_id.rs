//! Short ids that operators type on the command line (partners, institutions): 1 to 32
//! lower-case ASCII letters, digits and `-`. Parsed at the edge, so every later use is known
//! to be well formed (safe in file names, URLs and audit details).

/// Defines a short-id newtype: `parse` (refusals name `$field`), `as_str`, Display, Debug.
macro_rules! short_id {
    ($(#[$meta:meta])* $name:ident, $field:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            #[doc = concat!("Checks an id given for the field `", $field, "`.")]
            pub fn parse(s: &str) -> $crate::error::Result<$name> {
                let ok = !s.is_empty()
                    && s.len() <= 32
                    && s.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if !ok {
                    return Err($crate::error::CaError::invalid(
                        $field,
                        format!("\"{s}\" must be 1 to 32 lower-case letters, digits or '-'"),
                    ));
                }
                Ok($name(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }
    };
}

pub(crate) use short_id;
