//! The Certificate Portal's rules (SPEC §7): the portal password (the username until the
//! first change, then the person's own, stored with argon2id), and what the editable fields
//! accept: SE-number, e-mail and the interface choice.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use aws_lc_rs::rand;

pub const PORTAL_PASSWORD_MIN_CHARS: usize = 10;
pub const PORTAL_PASSWORD_MAX_CHARS: usize = 128;
/// RFC 5321's limit on a forward path.
pub const EMAIL_MAX_CHARS: usize = 254;

/// Why a new portal password, or a profile field, was not accepted. Each has a text in both
/// portal languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FieldProblem {
    #[error("the password must be at least {PORTAL_PASSWORD_MIN_CHARS} characters")]
    PasswordTooShort,
    #[error("the password must be at most {PORTAL_PASSWORD_MAX_CHARS} characters")]
    PasswordTooLong,
    #[error("the new password must not be the username")]
    PasswordIsUsername,
    #[error("the new password must differ from the current one")]
    PasswordUnchanged,
    #[error("the two new passwords differ")]
    PasswordMismatch,
    #[error("the password must not contain control characters")]
    PasswordControlCharacters,
    #[error("an SE-number is 8 digits")]
    MalformedSeNumber,
    #[error("not an e-mail address")]
    MalformedEmail,
    #[error("choose at least one interface")]
    NoInterface,
}

/// Checks a new portal password against the policy.
pub fn check_new_portal_password(
    username: &str,
    current: &str,
    new: &str,
    confirmation: &str,
) -> Result<(), FieldProblem> {
    let chars = new.chars().count();
    if chars < PORTAL_PASSWORD_MIN_CHARS {
        return Err(FieldProblem::PasswordTooShort);
    }
    if chars > PORTAL_PASSWORD_MAX_CHARS {
        return Err(FieldProblem::PasswordTooLong);
    }
    if new.chars().any(char::is_control) {
        return Err(FieldProblem::PasswordControlCharacters);
    }
    if new.eq_ignore_ascii_case(username) {
        return Err(FieldProblem::PasswordIsUsername);
    }
    if new == current {
        return Err(FieldProblem::PasswordUnchanged);
    }
    if new != confirmation {
        return Err(FieldProblem::PasswordMismatch);
    }
    Ok(())
}

/// An argon2id PHC string for `password`, with a fresh random salt and the crate's default
/// cost (19 MiB, 2 passes).
///
/// # Panics
/// If the operating system cannot provide random bytes.
pub fn hash_portal_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::fill(&mut salt).expect("the system random generator failed");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2id with default parameters accepts any password")
        .to_string()
}

/// Whether `password` is the portal password: the stored hash's, or the username while the
/// person has not chosen one yet (`stored` is `None`). Both cases cost one argon2id run, so
/// the time taken does not tell whether a password has been chosen.
/// What a portal password is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortalSecret {
    /// The person's own password (argon2id PHC string).
    Chosen(String),
    /// None chosen yet, and the first password is the username.
    Username,
    /// None chosen yet, and the first password is an operator's one-time code (its argon2id
    /// PHC string), if one is valid; without one nothing is accepted.
    InitialCode(Option<String>),
}

/// Whether `password` is right. Every case costs one argon2id, so the time taken does not
/// tell which case it was.
pub fn verify_portal_password(username: &str, secret: &PortalSecret, password: &str) -> bool {
    static UNCHOSEN: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| hash_portal_password("no portal password chosen yet"));
    let argon2_matches = |stored: &str| {
        PasswordHash::new(stored).is_ok_and(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
    };
    match secret {
        PortalSecret::Chosen(stored) | PortalSecret::InitialCode(Some(stored)) => {
            argon2_matches(stored)
        }
        PortalSecret::Username => {
            let _ = argon2_matches(&UNCHOSEN);
            constant_time_eq(password.as_bytes(), username.as_bytes())
        }
        PortalSecret::InitialCode(None) => {
            let _ = argon2_matches(&UNCHOSEN);
            false
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An SE-number: 8 digits, or empty for none.
pub fn parse_se_number(text: &str) -> Result<Option<String>, FieldProblem> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() == 8 && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(Some(text.to_owned()))
    } else {
        Err(FieldProblem::MalformedSeNumber)
    }
}

/// An e-mail address, or empty for none: one `@`, a non-empty local part, a domain with a dot,
/// no spaces, quotes, angle brackets or control characters. Deliverability is not checked.
pub fn parse_email(text: &str) -> Result<Option<String>, FieldProblem> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let forbidden = |c: char| c.is_whitespace() || c.is_control() || "\"'<>()[],;:\\".contains(c);
    let well_formed = text.chars().count() <= EMAIL_MAX_CHARS
        && !text.contains(forbidden)
        && text.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains("..")
        });
    if well_formed {
        Ok(Some(text.to_owned()))
    } else {
        Err(FieldProblem::MalformedEmail)
    }
}

/// Which gateways a certificate is set up for; FTPS by default (the client guide).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interfaces {
    pub ftps: bool,
    pub as4: bool,
}

impl Interfaces {
    pub fn new(ftps: bool, as4: bool) -> Result<Self, FieldProblem> {
        if ftps || as4 {
            Ok(Self { ftps, as4 })
        } else {
            Err(FieldProblem::NoInterface)
        }
    }

    /// Reads the stored form (`ftps`, `as4`, `ftps,as4`); anything unreadable is FTPS.
    pub fn from_stored(text: &str) -> Self {
        let names: Vec<&str> = text.split(',').map(str::trim).collect();
        Self::new(names.contains(&"ftps"), names.contains(&"as4")).unwrap_or_default()
    }

    pub fn to_stored(self) -> String {
        let mut names = Vec::new();
        if self.ftps {
            names.push("ftps");
        }
        if self.as4 {
            names.push("as4");
        }
        names.join(",")
    }
}

impl Default for Interfaces {
    fn default() -> Self {
        Self {
            ftps: true,
            as4: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "CVR_19552101_UID_25351738";

    #[test]
    fn new_password_policy() {
        let check = |new: &str, confirmation: &str| {
            check_new_portal_password(USER, USER, new, confirmation)
        };
        assert_eq!(check("correct horse", "correct horse"), Ok(()));
        assert_eq!(check("short", "short"), Err(FieldProblem::PasswordTooShort));
        let long = "x".repeat(PORTAL_PASSWORD_MAX_CHARS + 1);
        assert_eq!(check(&long, &long), Err(FieldProblem::PasswordTooLong));
        let ok_long = "æ".repeat(PORTAL_PASSWORD_MAX_CHARS);
        assert_eq!(check(&ok_long, &ok_long), Ok(()), "characters, not bytes");
        assert_eq!(check(USER, USER), Err(FieldProblem::PasswordIsUsername));
        assert_eq!(
            check(&USER.to_lowercase(), &USER.to_lowercase()),
            Err(FieldProblem::PasswordIsUsername)
        );
        assert_eq!(
            check("correct horse", "correct horsE"),
            Err(FieldProblem::PasswordMismatch)
        );
        assert_eq!(
            check("correct\nhorse", "correct\nhorse"),
            Err(FieldProblem::PasswordControlCharacters)
        );
        assert_eq!(
            check_new_portal_password(USER, "correct horse", "correct horse", "correct horse"),
            Err(FieldProblem::PasswordUnchanged)
        );
    }

    #[test]
    fn portal_passwords_hash_with_argon2id_and_verify() {
        let hash = hash_portal_password("correct horse");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert_ne!(hash, hash_portal_password("correct horse"), "salted");
        let chosen = PortalSecret::Chosen(hash);
        assert!(verify_portal_password(USER, &chosen, "correct horse"));
        assert!(!verify_portal_password(USER, &chosen, "correct horsE"));
        assert!(!verify_portal_password(USER, &chosen, USER));
        let garbage = PortalSecret::Chosen("garbage".into());
        assert!(!verify_portal_password(USER, &garbage, "correct horse"));
    }

    #[test]
    fn the_first_password_is_the_username_or_the_operators_code() {
        let username = PortalSecret::Username;
        assert!(verify_portal_password(USER, &username, USER));
        assert!(!verify_portal_password(
            USER,
            &username,
            "CVR_19552101_UID_2535173"
        ));
        assert!(!verify_portal_password(USER, &username, ""));

        let code = PortalSecret::InitialCode(Some(hash_portal_password("one-time code")));
        assert!(verify_portal_password(USER, &code, "one-time code"));
        assert!(
            !verify_portal_password(USER, &code, USER),
            "not the username then"
        );
        let none = PortalSecret::InitialCode(None);
        assert!(!verify_portal_password(USER, &none, USER));
        assert!(!verify_portal_password(USER, &none, ""));
    }

    #[test]
    fn se_numbers() {
        assert_eq!(parse_se_number(""), Ok(None));
        assert_eq!(parse_se_number(" 12345678 "), Ok(Some("12345678".into())));
        for bad in [
            "1234567",
            "123456789",
            "1234567a",
            "<script>",
            "１２３４５６７８",
        ] {
            assert_eq!(
                parse_se_number(bad),
                Err(FieldProblem::MalformedSeNumber),
                "{bad}"
            );
        }
    }

    #[test]
    fn email_addresses() {
        assert_eq!(parse_email("  "), Ok(None));
        assert_eq!(
            parse_email("karen@testfirma.example"),
            Ok(Some("karen@testfirma.example".into()))
        );
        assert_eq!(
            parse_email("søren@firma.dk"),
            Ok(Some("søren@firma.dk".into()))
        );
        let long = format!("{}@example.com", "a".repeat(EMAIL_MAX_CHARS));
        for bad in [
            "karen",
            "@firma.dk",
            "karen@",
            "karen@firma",
            "a@b@c.dk",
            "karen@.dk",
            "karen@firma..dk",
            "karen @firma.dk",
            "<script>alert(1)</script>@x.dk",
            "\"karen\"@firma.dk",
            long.as_str(),
        ] {
            assert_eq!(parse_email(bad), Err(FieldProblem::MalformedEmail), "{bad}");
        }
    }

    #[test]
    fn interfaces_round_trip_and_need_one() {
        assert_eq!(
            Interfaces::new(false, false),
            Err(FieldProblem::NoInterface)
        );
        for (ftps, as4, stored) in [
            (true, false, "ftps"),
            (false, true, "as4"),
            (true, true, "ftps,as4"),
        ] {
            let interfaces = Interfaces::new(ftps, as4).unwrap();
            assert_eq!(interfaces.to_stored(), stored);
            assert_eq!(Interfaces::from_stored(stored), interfaces);
        }
        assert_eq!(Interfaces::from_stored("nonsense"), Interfaces::default());
    }
}
