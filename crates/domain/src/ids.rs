//! Typed identifiers for what crosses crate boundaries as text: each one checked once where
//! it enters (from a certificate, a path, a store row) and then carried as itself, so that
//! a CVR cannot be passed where an account is expected, nor parsed back out of a path.

use std::fmt;

/// Why a text is not a valid identifier of its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a {kind}: {expected}")]
pub struct InvalidId {
    pub kind: &'static str,
    pub text: String,
    pub expected: &'static str,
}

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $expected:literal, $valid:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Checks `text` and makes it an identifier.
            pub fn parse(text: impl Into<String>) -> Result<Self, InvalidId> {
                let text = text.into();
                let valid: fn(&str) -> bool = $valid;
                if valid(&text) {
                    Ok(Self(text))
                } else {
                    Err(InvalidId {
                        kind: $kind,
                        text,
                        expected: $expected,
                    })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::parse(text).map_err(serde::de::Error::custom)
            }
        }
    };
}

text_id!(
    /// A Danish company registration number: eight digits.
    Cvr,
    "CVR number",
    "eight digits",
    |text| text.len() == 8 && text.bytes().all(|byte| byte.is_ascii_digit())
);

text_id!(
    /// The account part of a gateway username (`UID_…`, `RID_…`, `UI_…`): what the
    /// certificate says besides the CVR, one path segment of letters, digits, `_` and `-`.
    AccountId,
    "account",
    "letters, digits, '_' and '-'",
    |text| {
        !text.is_empty()
            && text.len() <= 128
            && text
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
    }
);

text_id!(
    /// The gateway's id of a transaction (`ci<epoch-ms>_<node>_<seq>` when it makes one; a
    /// backend may bring its own for an outbound file): 1 to 100 visible ASCII characters.
    SkatTransactionId,
    "SKATTransactionId",
    "1 to 100 visible ASCII characters",
    |text| !text.is_empty() && text.len() <= 100 && text.bytes().all(|byte| byte.is_ascii_graphic())
);

text_id!(
    /// An upload's name, its FTPTransactionID (unique per user, forever): a plain file name.
    /// An upload to a service must also leave room for the files named after it
    /// (`transaction::check_transaction_id`).
    FtpTransactionId,
    "FTPTransactionID",
    "a plain file name",
    |text| crate::path_segment::check_path_segment(text).is_ok()
);

/// Whose `/out` a file belongs to. Every transaction is reported to the mailbox chosen when
/// it was uploaded (by the profile of the listener it came in on), and its later steps'
/// files follow it there. Today each gateway user has their own; the legacy "Secure FTP"
/// profile shares one per company.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Mailbox {
    /// The `/out` of one gateway user (by username).
    User(String),
}

impl Mailbox {
    /// The mailbox of the gateway user `username`.
    pub fn of_user(username: &str) -> Self {
        Self::User(username.to_owned())
    }

    /// The stable key stores keep it under: `user:<username>`.
    pub fn key(&self) -> String {
        match self {
            Self::User(username) => format!("user:{username}"),
        }
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(username) => write!(f, "the /out of {username}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_checked_where_they_enter() {
        assert_eq!(Cvr::parse("19552101").unwrap(), "19552101");
        for bad in ["", "1955210", "195521011", "1955210x", "１９５５２１０１"] {
            let refused = Cvr::parse(bad).unwrap_err();
            assert_eq!(refused.kind, "CVR number", "{bad:?}");
        }
        assert_eq!(
            AccountId::parse("RID_60134540").unwrap().as_str(),
            "RID_60134540"
        );
        for bad in ["", "UID 1", "UID/1", "../x"] {
            assert!(AccountId::parse(bad).is_err(), "{bad:?}");
        }
        let json = serde_json::to_string(&Cvr::parse("19552101").unwrap()).unwrap();
        assert_eq!(json, "\"19552101\"");
        assert!(serde_json::from_str::<Cvr>("\"1\"").is_err());
    }
}
