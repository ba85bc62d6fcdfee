//! Spin variables, parsed into typed settings with defaults.
//!
//! Lookups go through [`Source`], so the parsing and defaults are tested natively
//! with a list of pairs; [`Spin`] is the real source. An unset or empty variable
//! takes its default; a set but unparsable one is an error (a 500 naming the
//! variable in the log) rather than a silent fallback.

use anyhow::{Context, anyhow, bail};

use crate::session::CookiePolicy;

/// Default lifetime of a session (4 hours).
pub const DEFAULT_SESSION_TTL_SECONDS: u64 = 4 * 60 * 60;

/// A value that can be read from a variable.
pub trait VariableValue: Sized {
    /// Parses the (trimmed, non-empty) raw value.
    fn parse_variable(raw: &str) -> Result<Self, String>;
}

impl VariableValue for bool {
    fn parse_variable(raw: &str) -> Result<Self, String> {
        match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err("expected true or false".to_owned()),
        }
    }
}

macro_rules! from_str_values {
    ($($t:ty),*) => {$(
        impl VariableValue for $t {
            fn parse_variable(raw: &str) -> Result<Self, String> {
                raw.parse().map_err(|e| format!("{e}"))
            }
        }
    )*};
}
from_str_values!(u16, u32, u64, usize, i64, String);

/// Where variables come from.
pub trait Source {
    /// The raw value of `name`, or `None` when it is not defined.
    fn raw(&self, name: &str) -> anyhow::Result<Option<String>>;

    /// `name` parsed as `T`, or `default` when unset or empty.
    fn get_or<T: VariableValue>(&self, name: &str, default: T) -> anyhow::Result<T> {
        Ok(self.get_opt(name)?.unwrap_or(default))
    }

    /// `name` parsed as `T`; an error when unset or empty.
    fn required<T: VariableValue>(&self, name: &str) -> anyhow::Result<T> {
        self.get_opt(name)?
            .ok_or_else(|| anyhow!("Required variable `{name}` is not set"))
    }

    /// `name` parsed as `T`, `None` when unset or empty.
    fn get_opt<T: VariableValue>(&self, name: &str) -> anyhow::Result<Option<T>> {
        let Some(raw) = self.raw(name)? else {
            return Ok(None);
        };
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        // The value itself is not echoed: it may be a secret.
        T::parse_variable(raw)
            .map(Some)
            .map_err(|e| anyhow!("Variable `{name}` has an invalid value: {e}"))
    }
}

/// Spin's variables (`spin_sdk::variables::get`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Spin;

impl Source for Spin {
    fn raw(&self, name: &str) -> anyhow::Result<Option<String>> {
        match spin_sdk::variables::get(name) {
            Ok(value) => Ok(Some(value)),
            Err(spin_sdk::variables::Error::Undefined(_)) => Ok(None),
            Err(e) => {
                Err(anyhow!("{e:?}")).with_context(|| format!("Failed to read variable `{name}`"))
            }
        }
    }
}

/// Fixed pairs, for tests and tools.
impl Source for [(&str, &str)] {
    fn raw(&self, name: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| (*value).to_owned()))
    }
}

/// The Spin variable `name` parsed as `T`, or `default` when unset or empty.
pub fn variable_or<T: VariableValue>(name: &str, default: T) -> anyhow::Result<T> {
    Spin.get_or(name, default)
}

/// Everything needed to verify and issue session cookies.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// HMAC key of the session JWT (variable `jwt_secret`, required).
    pub jwt_secret: String,
    /// Cookie lifetime (`session_ttl_seconds`) and `Secure` flag (`cookie_secure`).
    pub cookie: CookiePolicy,
}

impl SessionConfig {
    /// Reads `jwt_secret`, `session_ttl_seconds` (default 14400) and `cookie_secure`
    /// (default false).
    pub fn from_source(source: &(impl Source + ?Sized)) -> anyhow::Result<Self> {
        let ttl_seconds = source.get_or("session_ttl_seconds", DEFAULT_SESSION_TTL_SECONDS)?;
        if ttl_seconds == 0 {
            bail!("Variable `session_ttl_seconds` must be greater than 0");
        }
        Ok(Self {
            jwt_secret: jwt_secret(source)?,
            cookie: CookiePolicy {
                ttl_seconds,
                secure: source.get_or("cookie_secure", false)?,
            },
        })
    }

    /// [`SessionConfig::from_source`] with Spin's variables.
    pub fn from_variables() -> anyhow::Result<Self> {
        Self::from_source(&Spin)
    }
}

/// The `jwt_secret` variable: all a service needs to verify sessions.
pub fn jwt_secret(source: &(impl Source + ?Sized)) -> anyhow::Result<String> {
    source.required("jwt_secret")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_unset_or_empty() {
        let vars: &[(&str, &str)] = &[("jwt_secret", "s3cret"), ("cookie_secure", " ")];
        let config = SessionConfig::from_source(vars).unwrap();
        assert_eq!(config.jwt_secret, "s3cret");
        assert_eq!(config.cookie.ttl_seconds, 14_400);
        assert!(!config.cookie.secure);
    }

    #[test]
    fn values_are_parsed() {
        let vars: &[(&str, &str)] = &[
            ("jwt_secret", "s3cret"),
            ("session_ttl_seconds", " 60 "),
            ("cookie_secure", "TRUE"),
        ];
        let config = SessionConfig::from_source(vars).unwrap();
        assert_eq!(config.cookie.ttl_seconds, 60);
        assert!(config.cookie.secure);
    }

    #[test]
    fn jwt_secret_is_required() {
        for vars in [&[][..], &[("jwt_secret", "")][..]] {
            let err = SessionConfig::from_source(vars).unwrap_err();
            assert!(err.to_string().contains("`jwt_secret`"), "{err}");
        }
    }

    #[test]
    fn invalid_values_are_errors_naming_the_variable() {
        let vars: &[(&str, &str)] = &[("jwt_secret", "s"), ("session_ttl_seconds", "4h")];
        let err = SessionConfig::from_source(vars).unwrap_err();
        assert!(err.to_string().contains("`session_ttl_seconds`"), "{err}");
        assert!(!err.to_string().contains("4h"), "{err}");

        let vars: &[(&str, &str)] = &[("jwt_secret", "s"), ("session_ttl_seconds", "0")];
        assert!(SessionConfig::from_source(vars).is_err());

        let vars: &[(&str, &str)] = &[("jwt_secret", "s"), ("cookie_secure", "maybe")];
        assert!(SessionConfig::from_source(vars).is_err());
    }

    #[test]
    fn typed_lookups() {
        let vars: &[(&str, &str)] = &[("n", "19456"), ("flag", "0"), ("bad", "-1")];
        assert_eq!(vars.get_or("n", 1u32).unwrap(), 19_456);
        assert_eq!(vars.get_or("missing", 7u32).unwrap(), 7);
        assert!(!vars.get_or("flag", true).unwrap());
        assert!(vars.get_or("bad", 1u32).is_err());
        assert!(vars.required::<u32>("missing").is_err());
        assert_eq!(vars.get_opt::<u64>("missing").unwrap(), None);
    }
}
