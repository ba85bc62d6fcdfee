//! A normalised, plausibly deliverable email address.

use common::FieldError;

/// Validation message of the contract.
pub const EMAIL_MESSAGE: &str = "Email must be valid";

/// Longest address SMTP can carry.
const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;
const MAX_LABEL_LEN: usize = 63;

/// Trimmed, lower-cased, syntactically valid email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Normalises and checks `raw`; `None` (missing or not a string) is invalid too.
    pub fn parse(raw: Option<&str>) -> Result<Self, FieldError> {
        let invalid = || FieldError::new("email", EMAIL_MESSAGE);
        let email = raw.ok_or_else(invalid)?.trim().to_lowercase();
        if is_valid(&email) {
            Ok(Self(email))
        } else {
            Err(invalid())
        }
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A pragmatic syntax check, not RFC 5322: it accepts what people type and rejects
/// what cannot be an address (no `@`, spaces, empty parts, a domain without a dot).
fn is_valid(email: &str) -> bool {
    if email.len() > MAX_LEN || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    is_valid_local(local) && is_valid_domain(domain)
}

fn is_valid_local(local: &str) -> bool {
    const SPECIALS: &[char] = &['@', '"', '(', ')', ',', ':', ';', '<', '>', '[', '\\', ']'];
    !local.is_empty()
        && local.len() <= MAX_LOCAL_LEN
        && !local.contains(SPECIALS)
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
}

fn is_valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    let Some(tld) = labels.last() else {
        return false;
    };
    labels.len() >= 2
        && labels.iter().all(|label| is_valid_label(label))
        && tld.chars().count() >= 2
        && !tld.chars().all(|c| c.is_ascii_digit())
}

fn is_valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL_LEN
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label.chars().all(|c| c.is_alphanumeric() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<String, FieldError> {
        Email::parse(Some(raw)).map(|e| e.as_ref().to_owned())
    }

    #[test]
    fn normalises_case_and_whitespace() {
        assert_eq!(
            parse("  Jane.Doe@Example.COM \n").unwrap(),
            "jane.doe@example.com"
        );
    }

    #[test]
    fn accepts_common_addresses() {
        for ok in [
            "a@b.co",
            "first.last+tag@sub.example.org",
            "o'brien@example.ie",
            "user_1-x@my-host.example",
            "ünïcode@bücher.de",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_invalid_addresses() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let too_long = format!("a@{}.com", "b".repeat(250));
        for bad in [
            "",
            "   ",
            "plainaddress",
            "@example.com",
            "user@",
            "user@localhost",
            "user@@example.com",
            "a@b@example.com",
            "user name@example.com",
            "user@exa mple.com",
            "user@example..com",
            "user@.example.com",
            "user@example.com.",
            "user@-example.com",
            "user@example.c",
            "user@127.0.0.1",
            ".user@example.com",
            "user.@example.com",
            "us..er@example.com",
            "us<er@example.com",
            "user@exa_mple.com",
            long_local.as_str(),
            too_long.as_str(),
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn missing_is_invalid_with_the_contract_message() {
        let err = Email::parse(None).unwrap_err();
        assert_eq!(err, FieldError::new("email", "Email must be valid"));
    }
}
