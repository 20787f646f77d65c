//! Client certificate profiles: which OCES certificate type a test client gets, and how that turns
//! into an OCES-shaped subject, key type and extensions.

use anyhow::Context;
use rcgen::string::{Ia5String, PrintableString};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::authority::{Authority, generate_rsa_3072_key};

/// The OCES certificate type of a client, with the identifiers that go into its subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientProfile {
    /// OCES2 company/system certificate: serialNumber `CVR:<cvr>-UID:<uid>`.
    Voces { cvr: String, uid: String },
    /// OCES2 employee certificate: serialNumber `CVR:<cvr>-RID:<rid>`.
    Moces { cvr: String, rid: String },
    /// OCES2 function certificate: serialNumber `CVR:<cvr>-FID:<fid>`.
    Foces { cvr: String, fid: String },
    /// OCES2 personal certificate: serialNumber `PID:<pid>`.
    Personal { pid: String },
    /// OCES3 organisation/system certificate: serialNumber `UI:DK-O:G:<uuid>`,
    /// organizationIdentifier `NTRDK-<cvr>`.
    Oces3Organisation { cvr: String, uuid: String },
    /// OCES3 employee certificate: serialNumber `UI:DK-E:G:<uuid>`,
    /// organizationIdentifier `NTRDK-<cvr>`.
    Oces3Employee { cvr: String, uuid: String },
}

impl ClientProfile {
    /// The subject serialNumber (2.5.4.5) value.
    pub fn subject_serial_number(&self) -> String {
        match self {
            ClientProfile::Voces { cvr, uid } => format!("CVR:{cvr}-UID:{uid}"),
            ClientProfile::Moces { cvr, rid } => format!("CVR:{cvr}-RID:{rid}"),
            ClientProfile::Foces { cvr, fid } => format!("CVR:{cvr}-FID:{fid}"),
            ClientProfile::Personal { pid } => format!("PID:{pid}"),
            ClientProfile::Oces3Organisation { uuid, .. } => format!("UI:DK-O:G:{uuid}"),
            ClientProfile::Oces3Employee { uuid, .. } => format!("UI:DK-E:G:{uuid}"),
        }
    }

    fn cvr(&self) -> Option<&str> {
        match self {
            ClientProfile::Voces { cvr, .. }
            | ClientProfile::Moces { cvr, .. }
            | ClientProfile::Foces { cvr, .. }
            | ClientProfile::Oces3Organisation { cvr, .. }
            | ClientProfile::Oces3Employee { cvr, .. } => Some(cvr),
            ClientProfile::Personal { .. } => None,
        }
    }

    fn is_oces3(&self) -> bool {
        matches!(
            self,
            ClientProfile::Oces3Organisation { .. } | ClientProfile::Oces3Employee { .. }
        )
    }

    /// The trusted CA that issues this profile.
    pub(crate) fn trusted_authority(&self) -> Authority {
        if self.is_oces3() {
            Authority::Oces3
        } else {
            Authority::Oces2
        }
    }

    fn default_common_name(&self) -> String {
        match self {
            ClientProfile::Voces { .. } => "Test System".to_owned(),
            ClientProfile::Moces { .. } => "Test Medarbejder".to_owned(),
            ClientProfile::Foces { .. } => "Test Funktion".to_owned(),
            ClientProfile::Personal { .. } => "Test Borger".to_owned(),
            ClientProfile::Oces3Organisation { .. } => "Test Integration".to_owned(),
            ClientProfile::Oces3Employee { .. } => "Test Medarbejder".to_owned(),
        }
    }
}

/// Whether a client certificate is valid now or expired.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Validity {
    /// Valid from yesterday for two years.
    #[default]
    Current,
    /// Valid for a year that ended 30 days ago.
    Expired,
    /// Valid from yesterday until this moment (a certificate that expires while in use).
    Until(OffsetDateTime),
}

/// Which CA issues a client certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientIssuer {
    /// The trusted issuing CA for the profile (OCES2 or OCES3).
    #[default]
    Trusted,
    /// The untrusted rogue CA.
    Untrusted,
}

/// Everything that decides what a client certificate looks like.
#[derive(Clone, Debug)]
pub struct ClientSpec {
    pub profile: ClientProfile,
    /// The subject CN: a person's or system's name.
    pub common_name: String,
    /// The company name; the subject O becomes `<company> // CVR:<cvr>`.
    pub company: String,
    /// Written as subject emailAddress and as rfc822Name subjectAltName.
    pub email: Option<String>,
    pub validity: Validity,
    pub issuer: ClientIssuer,
    /// One human line saying what the certificate is for (stored in pki.json).
    pub note: String,
}

impl ClientSpec {
    /// A current certificate from the trusted CA, with a generic name and company.
    pub fn new(profile: ClientProfile) -> ClientSpec {
        let common_name = profile.default_common_name();
        let company = match profile.cvr() {
            Some(cvr) => format!("Testfirma {cvr} ApS"),
            None => String::new(),
        };
        ClientSpec {
            profile,
            common_name,
            company,
            email: None,
            validity: Validity::Current,
            issuer: ClientIssuer::Trusted,
            note: "additional test client".to_owned(),
        }
    }

    pub fn common_name(mut self, common_name: &str) -> ClientSpec {
        self.common_name = common_name.to_owned();
        self
    }

    pub fn company(mut self, company: &str) -> ClientSpec {
        self.company = company.to_owned();
        self
    }

    pub fn email(mut self, email: &str) -> ClientSpec {
        self.email = Some(email.to_owned());
        self
    }

    pub fn validity(mut self, validity: Validity) -> ClientSpec {
        self.validity = validity;
        self
    }

    pub fn issuer(mut self, issuer: ClientIssuer) -> ClientSpec {
        self.issuer = issuer;
        self
    }

    pub fn note(mut self, note: &str) -> ClientSpec {
        self.note = note.to_owned();
        self
    }

    pub(crate) fn authority(&self) -> Authority {
        match self.issuer {
            ClientIssuer::Trusted => self.profile.trusted_authority(),
            ClientIssuer::Untrusted => Authority::Untrusted,
        }
    }

    /// OCES3 leaves get RSA 3072 keys like the real ones; everything else gets P-256 to keep
    /// generation fast.
    pub(crate) fn generate_key(&self) -> anyhow::Result<KeyPair> {
        if self.profile.is_oces3() {
            generate_rsa_3072_key()
        } else {
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).context("generating a P-256 client key")
        }
    }

    pub(crate) fn certificate_params(&self, serial: Vec<u8>) -> anyhow::Result<CertificateParams> {
        let mut params = CertificateParams::default();
        params.serial_number = Some(SerialNumber::from(serial));
        let now = OffsetDateTime::now_utc();
        (params.not_before, params.not_after) = match self.validity {
            Validity::Current => (now - Duration::days(1), now + Duration::days(730)),
            Validity::Expired => (now - Duration::days(395), now - Duration::days(30)),
            Validity::Until(until) => (now - Duration::days(1), until),
        };
        params.distinguished_name = self.subject()?;
        if let Some(email) = &self.email {
            params.subject_alt_names.push(SanType::Rfc822Name(
                Ia5String::try_from(email.as_str())
                    .with_context(|| format!("email {email:?} is not ASCII"))?,
            ));
        }
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        // Real OCES3 certificates carry no extendedKeyUsage at all; OCES2 ones do.
        if !self.profile.is_oces3() {
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ClientAuth,
                ExtendedKeyUsagePurpose::EmailProtection,
            ];
        }
        Ok(params)
    }

    fn subject(&self) -> anyhow::Result<DistinguishedName> {
        let mut name = DistinguishedName::new();
        name.push(DnType::CountryName, "DK");
        let organisation = match self.profile.cvr() {
            Some(cvr) => format!("{} // CVR:{cvr}", self.company),
            None => "Ingen organisatorisk tilknytning".to_owned(),
        };
        name.push(DnType::OrganizationName, organisation);
        name.push(DnType::CommonName, self.common_name.as_str());
        let serial_number = self.profile.subject_serial_number();
        name.push(
            DnType::CustomDnType(vec![2, 5, 4, 5]),
            DnValue::PrintableString(
                PrintableString::try_from(serial_number.as_str()).with_context(|| {
                    format!("subject serialNumber {serial_number:?} is not a PrintableString")
                })?,
            ),
        );
        if let (true, Some(cvr)) = (self.profile.is_oces3(), self.profile.cvr()) {
            name.push(
                DnType::CustomDnType(vec![2, 5, 4, 97]),
                format!("NTRDK-{cvr}"),
            );
        }
        if let Some(email) = &self.email {
            name.push(
                DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
                DnValue::Ia5String(
                    Ia5String::try_from(email.as_str())
                        .with_context(|| format!("email {email:?} is not ASCII"))?,
                ),
            );
        }
        Ok(name)
    }
}
