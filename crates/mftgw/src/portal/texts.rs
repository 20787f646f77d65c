//! The portal's words in Danish (the default: the users are Danish companies) and English.
//! Templates read fixed texts from [`Texts`]; texts with a value in them are composed here.

use mftgw_domain::TransactionState;
use mftgw_domain::portal::FieldProblem;
use mftgw_domain::status::StatusCode;
use mftgw_oces::identity::{CertificateKind, IdentityRefusal};

use mftgw_core::portal::RegistrationStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Da,
    En,
}

impl Lang {
    /// The `lang` cookie's value, or Danish.
    pub fn from_code(code: Option<&str>) -> Lang {
        match code {
            Some("en") => Lang::En,
            _ => Lang::Da,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Da => "da",
            Lang::En => "en",
        }
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::Da => &DA,
            Lang::En => &EN,
        }
    }
}

pub struct Texts {
    pub portal_name: &'static str,
    pub skip_to_content: &'static str,
    pub language: &'static str,
    pub nav_overview: &'static str,
    pub nav_transactions: &'static str,
    pub nav_out: &'static str,
    pub log_out: &'static str,
    pub signed_in_as: &'static str,

    pub login_title: &'static str,
    pub login_selected_user: &'static str,
    pub login_instructions: &'static str,
    pub login_first_time: &'static str,
    pub password: &'static str,
    pub log_on: &'static str,
    pub login_wrong_password: &'static str,
    pub login_blocked: &'static str,
    pub logged_out: &'static str,
    pub session_expired: &'static str,
    pub session_other_certificate: &'static str,

    pub refused_title: &'static str,
    pub refused_foces: &'static str,
    pub refused_personal: &'static str,
    pub refused_other: &'static str,
    pub refused_expired: &'static str,
    pub refused_supported: &'static str,
    pub technical_detail: &'static str,

    pub change_password_title: &'static str,
    pub change_password_forced: &'static str,
    pub current_password: &'static str,
    pub new_password: &'static str,
    pub repeat_new_password: &'static str,
    pub password_rule: &'static str,
    pub change_password: &'static str,
    pub current_password_wrong: &'static str,
    pub password_changed: &'static str,

    pub overview_title: &'static str,
    pub state_not_registered: &'static str,
    pub state_active: &'static str,
    pub state_active_as4_only: &'static str,
    pub state_older: &'static str,
    pub state_replaced: &'static str,
    pub state_suspended: &'static str,
    pub state_deleted: &'static str,
    pub state_revoked: &'static str,
    pub common_name: &'static str,
    pub expiry_date: &'static str,
    pub kind: &'static str,
    pub legal_identifier: &'static str,
    pub account: &'static str,
    pub se_number: &'static str,
    pub se_number_hint: &'static str,
    pub email: &'static str,
    pub interfaces: &'static str,
    pub interfaces_hint: &'static str,
    pub registration: &'static str,
    pub gateway_user: &'static str,
    pub gateway_password: &'static str,
    pub show: &'static str,
    pub not_available: &'static str,
    pub register_certificate: &'static str,
    pub refresh: &'static str,
    pub save_changes: &'static str,
    pub changes_saved: &'static str,
    pub registration_requested: &'static str,

    pub transactions_title: &'static str,
    pub transactions_none: &'static str,
    pub received_at: &'static str,
    pub service: &'static str,
    pub file: &'static str,
    pub skat_transaction_id: &'static str,
    pub size: &'static str,
    pub state: &'static str,
    pub history: &'static str,

    pub out_title: &'static str,
    pub out_hint: &'static str,
    pub out_none: &'static str,
    pub name: &'static str,
    pub created_at: &'static str,

    pub error_title: &'static str,
    pub error_csrf: &'static str,
    pub error_revoked: &'static str,
    pub error_limited: &'static str,
    pub error_bad_form: &'static str,
    pub error_not_found: &'static str,
    pub error_internal: &'static str,
    pub back_to_portal: &'static str,
}

pub static DA: Texts = Texts {
    portal_name: "mftgw Certifikatportal",
    skip_to_content: "Spring til indhold",
    language: "Sprog",
    nav_overview: "Oversigt",
    nav_transactions: "Transaktioner",
    nav_out: "Filer i /out",
    log_out: "Log af",
    signed_in_as: "Logget på som",

    login_title: "Log på",
    login_selected_user: "Det valgte certifikat er for brugeren:",
    login_instructions: "Log på med din adgangskode til Certifikatportalen.",
    login_first_time: "Første gang er adgangskoden dit brugernavn; du skal derefter vælge en ny.",
    password: "Adgangskode",
    log_on: "Log på",
    login_wrong_password: "Forkert adgangskode.",
    login_blocked: "For mange forkerte forsøg. Prøv igen om et kvarter.",
    logged_out: "Du er logget af.",
    session_expired: "Din session er udløbet. Log på igen.",
    session_other_certificate: "Sessionen hørte til et andet certifikat og er afsluttet. Log på med dette certifikat.",

    refused_title: "Certifikatet kan ikke bruges",
    refused_foces: "FOCES-certifikater (funktionscertifikater) understøttes ikke.",
    refused_personal: "Personlige certifikater understøttes ikke.",
    refused_other: "Certifikatets emne angiver ikke et CVR-nummer og en konto, som gatewayen kender.",
    refused_expired: "Certifikatet er udløbet eller endnu ikke gyldigt.",
    refused_supported: "Brug et VOCES-, MOCES- eller OCES3-certifikat (MitID Erhverv). Vælg et andet certifikat i browseren, og prøv igen.",
    technical_detail: "Teknisk årsag",

    change_password_title: "Skift adgangskode",
    change_password_forced: "Det er første gang, du logger på. Vælg en ny adgangskode til Certifikatportalen.",
    current_password: "Nuværende adgangskode",
    new_password: "Ny adgangskode",
    repeat_new_password: "Gentag ny adgangskode",
    password_rule: "Mindst 10 tegn, og ikke dit brugernavn.",
    change_password: "Skift adgangskode",
    current_password_wrong: "Den nuværende adgangskode er forkert.",
    password_changed: "Din adgangskode er skiftet.",

    overview_title: "Certifikat- og brugeroversigt",
    state_not_registered: "Dit certifikat er ikke registreret. Tryk på »Registrér certifikat« for at registrere det.",
    state_active: "Dit certifikat er registreret og klar til brug.",
    state_active_as4_only: "Dit certifikat er registreret, men FTPS er fravalgt under Snitflader, så gatewayen afviser det ved FTPS-login.",
    state_older: "Brugeren er registreret med et certifikat, der er gyldigt længere end dette. Kun et nyere certifikat kan erstatte det.",
    state_replaced: "Dette certifikat er erstattet af et nyere og kan ikke længere bruges.",
    state_suspended: "Brugeren er spærret. Kontakt driften.",
    state_deleted: "Brugeren er slettet. Kontakt driften.",
    state_revoked: "Dette certifikat er spærret (tilbagekaldt). Det kan registreres, men gatewayen afviser det ved login, og det giver ikke adgang til adgangskoder eller oplysninger. Registrér et gyldigt certifikat.",
    common_name: "Navn (CN)",
    expiry_date: "Udløbsdato",
    kind: "Type",
    legal_identifier: "Juridisk identifikator",
    account: "Konto",
    se_number: "SE-nummer",
    se_number_hint: "8 cifre; lad feltet stå tomt, hvis du ikke bruger SE-nummer.",
    email: "E-mail",
    interfaces: "Snitflader",
    interfaces_hint: "Vælg kun AS4, hvis certifikatet også bruges til AS4 (fx DMS.Import). Uden FTPS afviser gatewayen certifikatet ved FTPS-login.",
    registration: "Registrering",
    gateway_user: "Gateway-bruger",
    gateway_password: "Gateway-adgangskode",
    show: "Vis",
    not_available: "kan ikke vises",
    register_certificate: "Registrér certifikat",
    refresh: "Opdatér",
    save_changes: "Gem ændringer",
    changes_saved: "Dine ændringer er gemt.",
    registration_requested: "Registreringen er startet.",

    transactions_title: "Seneste transaktioner",
    transactions_none: "Ingen transaktioner endnu.",
    received_at: "Modtaget",
    service: "Tjeneste",
    file: "Fil (FTPTransaktionsId)",
    skat_transaction_id: "SKATTransaktionsId",
    size: "Størrelse",
    state: "Tilstand",
    history: "Statusfiler",

    out_title: "Filer i /out",
    out_hint: "Hent filerne over FTPS. Portalen viser kun, hvad der ligger.",
    out_none: "Der er ingen filer i /out.",
    name: "Navn",
    created_at: "Oprettet",

    error_title: "Det gik ikke",
    error_csrf: "Formularen var udløbet eller kom ikke fra portalen. Indlæs siden igen, og prøv igen.",
    error_revoked: "Certifikatet er spærret (tilbagekaldt): med det kan du kun registrere certifikatet. Brug et gyldigt certifikat.",
    error_limited: "Det kan dette certifikat ikke: det er erstattet af et nyere, eller brugeren er spærret eller slettet.",
    error_bad_form: "Formularen kunne ikke læses.",
    error_not_found: "Siden findes ikke.",
    error_internal: "Der opstod en fejl hos os. Prøv igen om lidt.",
    back_to_portal: "Tilbage til portalen",
};

pub static EN: Texts = Texts {
    portal_name: "mftgw Certificate Portal",
    skip_to_content: "Skip to content",
    language: "Language",
    nav_overview: "Overview",
    nav_transactions: "Transactions",
    nav_out: "Files in /out",
    log_out: "Log out",
    signed_in_as: "Signed in as",

    login_title: "Log on",
    login_selected_user: "The selected certificate is for user:",
    login_instructions: "Log on using your password for the Certificate Portal.",
    login_first_time: "The first time, the password is your username; you will then choose a new one.",
    password: "Password",
    log_on: "Log on",
    login_wrong_password: "Wrong password.",
    login_blocked: "Too many failed attempts. Try again in a quarter of an hour.",
    logged_out: "You are logged out.",
    session_expired: "Your session expired. Log on again.",
    session_other_certificate: "That session belonged to another certificate and has been ended. Log on with this certificate.",

    refused_title: "This certificate cannot be used",
    refused_foces: "FOCES (function) certificates are not supported.",
    refused_personal: "Personal certificates are not supported.",
    refused_other: "The certificate's subject does not name a CVR number and an account the gateway knows.",
    refused_expired: "The certificate has expired or is not valid yet.",
    refused_supported: "Use a VOCES, MOCES or OCES3 (MitID Erhverv) certificate. Choose another certificate in your browser and try again.",
    technical_detail: "Technical reason",

    change_password_title: "Change password",
    change_password_forced: "This is your first logon. Choose a new password for the Certificate Portal.",
    current_password: "Current password",
    new_password: "New password",
    repeat_new_password: "Repeat new password",
    password_rule: "At least 10 characters, and not your username.",
    change_password: "Change password",
    current_password_wrong: "The current password is wrong.",
    password_changed: "Your password is changed.",

    overview_title: "Certificate and user overview",
    state_not_registered: "Your certificate is not registered. Press “Register certificate” to register it.",
    state_active: "Your certificate is registered and ready for use.",
    state_active_as4_only: "Your certificate is registered, but FTPS is not chosen under Interfaces, so the gateway refuses it at FTPS login.",
    state_older: "The user is registered with a certificate valid for longer than this one. Only a newer certificate can replace it.",
    state_replaced: "This certificate has been replaced by a newer one and can no longer be used.",
    state_suspended: "The user is suspended. Contact the operators.",
    state_deleted: "The user is deleted. Contact the operators.",
    state_revoked: "This certificate is revoked. It can be registered, but the gateway refuses it at login, and it gives no access to passwords or details. Register a valid certificate.",
    common_name: "Common name",
    expiry_date: "Expiry date",
    kind: "Type",
    legal_identifier: "Legal identifier",
    account: "Account",
    se_number: "SE-number",
    se_number_hint: "8 digits; leave it empty if you do not use an SE-number.",
    email: "E-mail",
    interfaces: "Interfaces",
    interfaces_hint: "Choose AS4 only if the certificate is also used for AS4 (such as DMS.Import). Without FTPS, the gateway refuses the certificate at FTPS login.",
    registration: "Registration",
    gateway_user: "Gateway user",
    gateway_password: "Gateway password",
    show: "Show",
    not_available: "cannot be shown",
    register_certificate: "Register certificate",
    refresh: "Refresh",
    save_changes: "Save changes",
    changes_saved: "Your changes are saved.",
    registration_requested: "Registration has started.",

    transactions_title: "Recent transactions",
    transactions_none: "No transactions yet.",
    received_at: "Received",
    service: "Service",
    file: "File (FTPTransaktionsId)",
    skat_transaction_id: "SKATTransaktionsId",
    size: "Size",
    state: "State",
    history: "Status files",

    out_title: "Files in /out",
    out_hint: "Download the files over FTPS. The portal only shows what is there.",
    out_none: "There are no files in /out.",
    name: "Name",
    created_at: "Created",

    error_title: "That did not work",
    error_csrf: "The form had expired or did not come from the portal. Reload the page and try again.",
    error_revoked: "The certificate is revoked: with it you can only register the certificate. Use a valid certificate.",
    error_limited: "This certificate cannot do that: it was replaced by a newer one, or the user is suspended or deleted.",
    error_bad_form: "The form could not be read.",
    error_not_found: "There is no such page.",
    error_internal: "Something went wrong on our side. Try again in a moment.",
    back_to_portal: "Back to the portal",
};

impl Lang {
    pub fn field_problem(self, problem: FieldProblem) -> &'static str {
        use FieldProblem::*;
        match (self, problem) {
            (Lang::Da, PasswordTooShort) => "Adgangskoden skal være mindst 10 tegn.",
            (Lang::En, PasswordTooShort) => "The password must be at least 10 characters.",
            (Lang::Da, PasswordTooLong) => "Adgangskoden må højst være 128 tegn.",
            (Lang::En, PasswordTooLong) => "The password must be at most 128 characters.",
            (Lang::Da, PasswordIsUsername) => "Den nye adgangskode må ikke være dit brugernavn.",
            (Lang::En, PasswordIsUsername) => "The new password must not be your username.",
            (Lang::Da, PasswordUnchanged) => {
                "Den nye adgangskode skal være en anden end den nuværende."
            }
            (Lang::En, PasswordUnchanged) => "The new password must differ from the current one.",
            (Lang::Da, PasswordMismatch) => "De to nye adgangskoder er ikke ens.",
            (Lang::En, PasswordMismatch) => "The two new passwords differ.",
            (Lang::Da, PasswordControlCharacters) => "Adgangskoden må ikke indeholde kontroltegn.",
            (Lang::En, PasswordControlCharacters) => {
                "The password must not contain control characters."
            }
            (Lang::Da, MalformedSeNumber) => "Et SE-nummer er 8 cifre.",
            (Lang::En, MalformedSeNumber) => "An SE-number is 8 digits.",
            (Lang::Da, MalformedEmail) => "Det er ikke en e-mailadresse.",
            (Lang::En, MalformedEmail) => "That is not an e-mail address.",
            (Lang::Da, NoInterface) => "Vælg mindst én snitflade.",
            (Lang::En, NoInterface) => "Choose at least one interface.",
        }
    }

    pub fn refusal(self, refusal: &IdentityRefusal) -> &'static str {
        let texts = self.texts();
        match refusal {
            IdentityRefusal::FunctionCertificate => texts.refused_foces,
            IdentityRefusal::PersonalCertificate => texts.refused_personal,
            _ => texts.refused_other,
        }
    }

    pub fn certificate_kind(self, kind: CertificateKind) -> &'static str {
        match (self, kind) {
            (_, CertificateKind::Voces) => "CVR · VOCES",
            (_, CertificateKind::Moces) => "CVR · MOCES",
            (Lang::Da, CertificateKind::Oces3Organisation) => "CVR · OCES3 organisation",
            (Lang::En, CertificateKind::Oces3Organisation) => "CVR · OCES3 organisation",
            (Lang::Da, CertificateKind::Oces3Employee) => "CVR · OCES3 medarbejder",
            (Lang::En, CertificateKind::Oces3Employee) => "CVR · OCES3 employee",
            (Lang::Da, CertificateKind::Personal) => "Personligt certifikat",
            (Lang::En, CertificateKind::Personal) => "Personal certificate",
        }
    }

    /// One or two words for the overview's "Registration" row.
    pub fn registration_word(self, status: &RegistrationStatus) -> &'static str {
        use RegistrationStatus::*;
        match (self, status) {
            (Lang::Da, NotRegistered | RenewalPossible | CannotReplaceRegistered) => {
                "Ikke registreret"
            }
            (Lang::En, NotRegistered | RenewalPossible | CannotReplaceRegistered) => {
                "Not registered"
            }
            (Lang::Da, Queued { .. }) => "I gang",
            (Lang::En, Queued { .. }) => "In progress",
            (Lang::Da, Failed { .. }) => "Mislykkedes",
            (Lang::En, Failed { .. }) => "Failed",
            (Lang::Da, PendingActivation { .. }) => "Registreret, afventer aktivering",
            (Lang::En, PendingActivation { .. }) => "Registered, activation pending",
            (Lang::Da, Active) => "Registreret og aktiv",
            (Lang::En, Active) => "Registered and active",
            (Lang::Da, Replaced) => "Erstattet",
            (Lang::En, Replaced) => "Replaced",
            (Lang::Da, Suspended) => "Spærret",
            (Lang::En, Suspended) => "Suspended",
            (Lang::Da, Deleted) => "Slettet",
            (Lang::En, Deleted) => "Deleted",
        }
    }

    pub fn pending_activation(self, from: &str) -> String {
        match self {
            Lang::Da => format!("Dit certifikat er registreret. FTPS-login virker fra {from}."),
            Lang::En => format!("Your certificate is registered. FTPS login works from {from}."),
        }
    }

    pub fn renewal(self, username: &str) -> String {
        match self {
            Lang::Da => format!(
                "Brugeren {username} er registreret med et andet certifikat. Tryk på »Registrér certifikat« for at skifte til dette; gateway-adgangskoden forbliver den samme."
            ),
            Lang::En => format!(
                "User {username} is registered with another certificate. Press “Register certificate” to switch to this one; the gateway password stays the same."
            ),
        }
    }

    pub fn registration_failed(self, reason: &str) -> String {
        match self {
            Lang::Da => format!(
                "Registreringen mislykkedes. Tryk på »Registrér certifikat« for at prøve igen. Teknisk årsag: {reason}"
            ),
            Lang::En => format!(
                "Registration failed. Press “Register certificate” to try again. Technical reason: {reason}"
            ),
        }
    }

    pub fn queued(self, since: &str) -> String {
        match self {
            Lang::Da => format!(
                "Registreringen er i gang (startet {since}). Tryk på »Opdatér« for at se, om den er færdig."
            ),
            Lang::En => format!(
                "Registration is in progress (started {since}). Press “Refresh” to see when it is done."
            ),
        }
    }

    pub fn transaction_state(self, state: TransactionState) -> &'static str {
        match (self, state) {
            (Lang::Da, TransactionState::Received) => "Modtaget",
            (Lang::En, TransactionState::Received) => "Received",
            (Lang::Da, TransactionState::Delivered) => "Leveret til backend",
            (Lang::En, TransactionState::Delivered) => "Delivered to the backend",
            (Lang::Da, TransactionState::Accepted) => "Accepteret",
            (Lang::En, TransactionState::Accepted) => "Accepted",
            (Lang::Da, TransactionState::Answered) => "Besvaret",
            (Lang::En, TransactionState::Answered) => "Answered",
            (Lang::Da, TransactionState::Rejected) => "Afvist",
            (Lang::En, TransactionState::Rejected) => "Rejected",
        }
    }

    pub fn status_code(self, code: StatusCode) -> &'static str {
        match (self, code) {
            (Lang::Da, StatusCode::Error) => "0 fejl",
            (Lang::En, StatusCode::Error) => "0 error",
            (Lang::Da, StatusCode::Delivered) => "1 leveret",
            (Lang::En, StatusCode::Delivered) => "1 delivered",
            (Lang::Da, StatusCode::Accepted) => "2 accepteret",
            (Lang::En, StatusCode::Accepted) => "2 accepted",
            (Lang::Da, StatusCode::Exposed) => "3 svar lagt i /out",
            (Lang::En, StatusCode::Exposed) => "3 response in /out",
        }
    }
}
