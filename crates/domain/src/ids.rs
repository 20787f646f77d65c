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

text_id!(
    /// A gateway username: `CVR_<cvr>_<account>` for the users the gateway makes from a
    /// company's certificate (see [`Username::of_account`]), a person's account itself
    /// (`PID_<pid>`); one path segment of letters, digits, `_`
    /// and `-`, as operators' imports may bring other shapes.
    Username,
    "gateway username",
    "1 to 160 letters, digits, '_' and '-'",
    |text| {
        !text.is_empty()
            && text.len() <= 160
            && text
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
    }
);

impl Username {
    /// The username of the account `account` of the company `cvr`: `CVR_<cvr>_<account>`;
    /// a person's (no company) is the account.
    pub fn of_account(cvr: Option<&Cvr>, account: &AccountId) -> Self {
        match cvr {
            Some(cvr) => Self(format!("CVR_{cvr}_{account}")),
            None => Self(account.as_str().to_owned()),
        }
    }
}

text_id!(
    /// A business service's name (e.g. `Moms`), as the catalogue lists it and the user's
    /// tree shows it as a folder: a plain file name, case-sensitive.
    ServiceName,
    "service name",
    "a plain file name",
    |text| crate::path_segment::check_path_segment(text).is_ok()
);

impl ServiceName {
    /// The gateway's own heartbeat service, which every user holds.
    pub fn heartbeat() -> Self {
        Self(crate::transaction::HEARTBEAT_SERVICE.to_owned())
    }

    /// `text` as a service name if it can be a folder name; otherwise `text` back with the
    /// reason it cannot.
    pub fn from_folder_name(
        text: String,
    ) -> Result<Self, (String, crate::path_segment::PathSegmentError)> {
        match crate::path_segment::check_path_segment(&text) {
            Ok(()) => Ok(Self(text)),
            Err(reason) => Err((text, reason)),
        }
    }
}

text_id!(
    /// The SHA-256 of a body, as 64 lowercase hex digits.
    Sha256,
    "SHA-256",
    "64 lowercase hex digits",
    |text| {
        text.len() == 64
            && text
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
    }
);

impl Sha256 {
    /// The digest `bytes` (32 of them) written as lowercase hex.
    pub fn from_digest(bytes: &[u8; 32]) -> Self {
        Self(crate::hex::encode(bytes))
    }
}

text_id!(
    /// Where the blob store keeps a body: lowercase hex, chosen by the store when the blob
    /// is created.
    BlobKey,
    "blob key",
    "1 to 64 lowercase hex digits",
    |text| {
        !text.is_empty()
            && text.len() <= 64
            && text
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
    }
);

impl BlobKey {
    /// The key written as the lowercase hex of `bytes` (16 random ones, in the local store).
    pub fn from_bytes(bytes: &[u8; 16]) -> Self {
        Self(crate::hex::encode(bytes))
    }
}

/// Whose `/out` a file belongs to. Every transaction is reported to the mailbox chosen when
/// it was uploaded (by the profile of the listener it came in on), and its later steps'
/// files follow it there. The FTPS Gateway gives each user their own; the legacy "Secure
/// FTP" profile shares one per company, and gives a person (personal certificate) their own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Mailbox {
    /// The `/out` of one gateway user (the FTPS Gateway profile).
    User(Username),
    /// The `/out` every certificate of one company shares (the legacy profile).
    Company(Cvr),
    /// The `/out` of a person, in their login folder (the legacy profile).
    Person(Username),
    /// The answers to one caller's web-service calls (EMCS): no FTPS session shows it, and
    /// it holds no status files, only each call's answer.
    Calls(Username),
}

/// Which generation of the FTPS interface a mailbox is shown through: what its status files
/// are called and how its tree is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// The FTPS Gateway: a status file per step (`status_<service>_<txid>_<code>.xml`).
    Gateway,
    /// The older "Secure FTP": one status file per transaction, rewritten in place
    /// (`status_<service>_<txid>.xml`).
    SecureFtp,
}

impl Mailbox {
    /// The mailbox of the gateway user `username`.
    pub fn of_user(username: &Username) -> Self {
        Self::User(username.clone())
    }

    /// The stable key stores keep it under: `user:<username>`, `company:<cvr>`,
    /// `person:<username>` or `calls:<username>`.
    pub fn key(&self) -> String {
        match self {
            Self::User(username) => format!("user:{username}"),
            Self::Company(cvr) => format!("company:{cvr}"),
            Self::Person(username) => format!("person:{username}"),
            Self::Calls(username) => format!("calls:{username}"),
        }
    }

    /// The mailbox a [`key`](Self::key) names.
    pub fn from_key(key: &str) -> Result<Self, InvalidId> {
        match key.split_once(':') {
            Some(("user", username)) => Ok(Self::User(Username::parse(username)?)),
            Some(("company", cvr)) => Ok(Self::Company(Cvr::parse(cvr)?)),
            Some(("person", username)) => Ok(Self::Person(Username::parse(username)?)),
            Some(("calls", username)) => Ok(Self::Calls(Username::parse(username)?)),
            _ => Err(InvalidId {
                kind: "mailbox key",
                text: key.to_owned(),
                expected: "user:<username>, company:<cvr>, person:<username> or calls:<username>",
            }),
        }
    }

    /// The profile whose files this mailbox holds. A calls mailbox is named like the
    /// gateway's, though no FTPS session shows it (outbound files never go there).
    pub fn profile(&self) -> Profile {
        match self {
            Self::User(_) | Self::Calls(_) => Profile::Gateway,
            Self::Company(_) | Self::Person(_) => Profile::SecureFtp,
        }
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(username) => write!(f, "the /out of {username}"),
            Self::Company(cvr) => write!(f, "the /out of company {cvr}"),
            Self::Person(username) => write!(f, "the legacy /out of {username}"),
            Self::Calls(username) => write!(f, "the web-service answers of {username}"),
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
        let username = Username::of_account(
            Some(&Cvr::parse("19552101").unwrap()),
            &AccountId::parse("UID_1").unwrap(),
        );
        assert_eq!(username, "CVR_19552101_UID_1");
        let person = AccountId::parse("PID_9208-2002-2-123456789012").unwrap();
        assert_eq!(Username::of_account(None, &person), person.as_str());
        for bad in ["", "CVR 1", "CVR/1", "..", "CVR_1\n"] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ServiceName::parse("Moms").is_ok());
        for bad in ["", ".", "..", "a/b", "a\0"] {
            assert!(ServiceName::parse(bad).is_err(), "{bad:?}");
        }
        let empty = Sha256::from_digest(&[0; 32]);
        assert_eq!(empty.as_str().len(), 64);
        assert!(Sha256::parse(empty.as_str().to_uppercase().replace('0', "A")).is_err());
        assert!(Sha256::parse("ab").is_err());
        assert!(BlobKey::parse("0123abcd").is_ok());
        for bad in ["", "../x", "ABCD", "g"] {
            assert!(BlobKey::parse(bad).is_err(), "{bad:?}");
        }
        for mailbox in [
            Mailbox::of_user(&username),
            Mailbox::Company(Cvr::parse("19552101").unwrap()),
            Mailbox::Person(Username::of_account(None, &person)),
            Mailbox::Calls(username.clone()),
        ] {
            assert_eq!(Mailbox::from_key(&mailbox.key()).unwrap(), mailbox);
        }
        for bad in ["", "user:", "company:1", "person:x/y", "other:x", "user"] {
            assert!(Mailbox::from_key(bad).is_err(), "{bad:?}");
        }
        let json = serde_json::to_string(&Cvr::parse("19552101").unwrap()).unwrap();
        assert_eq!(json, "\"19552101\"");
        assert!(serde_json::from_str::<Cvr>("\"1\"").is_err());
    }
}
