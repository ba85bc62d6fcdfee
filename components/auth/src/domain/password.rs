//! A password as the user meant it: trimmed, never printed.

use std::fmt;

use common::FieldError;

/// Validation message of the contract for new passwords.
pub const LENGTH_MESSAGE: &str = "Password must be between 4 and 20 characters";
/// Validation message when signing in without a password.
pub const MISSING_MESSAGE: &str = "You must supply a password";

const MIN_CHARS: usize = 4;
const MAX_CHARS: usize = 20;

/// A trimmed password. `Debug` is redacted so it cannot end up in a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// A new password (signup): 4–20 characters after trimming.
    pub fn parse_new(raw: Option<&str>) -> Result<Self, FieldError> {
        let password = raw.map(str::trim).unwrap_or_default();
        // Characters, not bytes: "pässwörd" is 8 long.
        if (MIN_CHARS..=MAX_CHARS).contains(&password.chars().count()) {
            Ok(Self(password.to_owned()))
        } else {
            Err(FieldError::new("password", LENGTH_MESSAGE))
        }
    }

    /// A password to check (signin): anything non-empty after trimming, so that
    /// a wrong password is "Invalid credentials" and not a hint about the rules.
    pub fn parse_existing(raw: Option<&str>) -> Result<Self, FieldError> {
        match raw.map(str::trim) {
            Some(password) if !password.is_empty() => Ok(Self(password.to_owned())),
            _ => Err(FieldError::new("password", MISSING_MESSAGE)),
        }
    }

    /// The bytes to hash.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_passwords_are_trimmed_and_length_checked() {
        assert_eq!(
            Password::parse_new(Some("  abcd  ")).unwrap().expose(),
            b"abcd"
        );
        assert!(Password::parse_new(Some(&"x".repeat(20))).is_ok());
        assert!(Password::parse_new(Some("pässwörd")).is_ok());
        assert!(
            Password::parse_new(Some("ääää")).is_ok(),
            "4 chars, 8 bytes"
        );
        for bad in ["", "abc", "  abc  ", "    ", &"x".repeat(21)] {
            let err = Password::parse_new(Some(bad)).unwrap_err();
            assert_eq!(err, FieldError::new("password", LENGTH_MESSAGE), "{bad:?}");
        }
        assert!(Password::parse_new(None).is_err());
    }

    #[test]
    fn existing_passwords_only_need_to_be_present() {
        assert!(Password::parse_existing(Some("x")).is_ok());
        assert!(Password::parse_existing(Some(&"x".repeat(100))).is_ok());
        for bad in [None, Some(""), Some("   ")] {
            let err = Password::parse_existing(bad).unwrap_err();
            assert_eq!(err, FieldError::new("password", MISSING_MESSAGE));
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let password = Password::parse_new(Some("hunter22")).unwrap();
        assert!(!format!("{password:?}").contains("hunter"));
    }
}
