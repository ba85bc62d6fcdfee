//! A ticket's title.

use common::FieldError;

/// Validation message of the contract.
pub const TITLE_MESSAGE: &str = "Title is required";

/// Longest title, in characters (Unicode scalar values) after trimming.
pub const MAX_TITLE_CHARS: usize = 120;

/// A trimmed title of 1 to [`MAX_TITLE_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    /// Trims and checks `raw`; `None` (missing or not a string) is invalid too.
    pub fn parse(raw: Option<&str>) -> Result<Self, FieldError> {
        let title = raw.map(str::trim).unwrap_or_default();
        let length = title.chars().count();
        if (1..=MAX_TITLE_CHARS).contains(&length) {
            Ok(Self(title.to_owned()))
        } else {
            Err(FieldError::new("title", TITLE_MESSAGE))
        }
    }
}

impl AsRef<str> for Title {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<String, FieldError> {
        Title::parse(Some(raw)).map(|t| t.as_ref().to_owned())
    }

    #[test]
    fn trims_whitespace() {
        assert_eq!(parse("  Concert \n").unwrap(), "Concert");
        assert_eq!(parse("a b").unwrap(), "a b");
    }

    #[test]
    fn accepts_one_to_120_characters() {
        assert!(parse("x").is_ok());
        assert!(parse(&"x".repeat(120)).is_ok());
        // Characters, not bytes: 120 two-byte characters fit.
        assert!(parse(&"é".repeat(120)).is_ok());
        assert!(parse(&format!("  {}  ", "x".repeat(120))).is_ok());
    }

    #[test]
    fn rejects_empty_blank_too_long_and_missing() {
        for bad in ["", "   ", "\t\n", &"x".repeat(121), &"é".repeat(121)] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Title::parse(None).unwrap_err(),
            FieldError::new("title", "Title is required")
        );
    }
}
