//! The service catalogue: every business service the gateway knows, and the backend system
//! it belongs to. The built-in catalogue is `services.toml` beside this crate's manifest
//! (the services of the client guide); operators may load their own in the same format
//! (`[services] file` in the gateway config).

use std::collections::HashMap;

use serde::Deserialize;

use crate::ids::ServiceName;
use crate::path_segment::PathSegmentError;

const BUILTIN_CATALOGUE: &str = include_str!("../services.toml");

/// A business service: a folder in the user's FTPS tree, delivered to one backend system;
/// or, for a web-service system, the role that admits its callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: ServiceName,
    pub system: String,
    pub interface: Interface,
}

/// How a system's services are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Interface {
    /// Files uploaded to the service's folder (FTPS, and the AS4 interface).
    #[default]
    Files,
    /// Calls of a web service (EMCS): the role admits callers, and no FTPS tree shows a
    /// folder for it.
    WebService,
}

/// Why a catalogue could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("the service catalogue is not valid TOML in the expected shape: {0}")]
    Parse(#[from] toml::de::Error),
    #[error(
        "service {name:?} is listed more than once (in system {first_system:?} and {second_system:?})"
    )]
    DuplicateService {
        name: String,
        first_system: String,
        second_system: String,
    },
    #[error("service {name:?} in system {system:?} cannot be a folder name: {reason}")]
    UnusableServiceName {
        name: String,
        system: String,
        reason: PathSegmentError,
    },
    #[error("a system in the service catalogue has an empty name")]
    EmptySystemName,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    system: Vec<SystemEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SystemEntry {
    name: String,
    #[serde(default)]
    interface: Interface,
    services: Vec<String>,
}

/// The set of known services, in the order the catalogue file lists them.
#[derive(Debug, Clone)]
pub struct ServiceCatalogue {
    services: Vec<Service>,
    index_by_name: HashMap<String, usize>,
}

impl ServiceCatalogue {
    /// The catalogue shipped with the gateway.
    pub fn builtin() -> Self {
        Self::from_toml(BUILTIN_CATALOGUE)
            .expect("the built-in services.toml is checked by this crate's tests")
    }

    /// Parses a catalogue in the format of `services.toml`:
    /// `[[system]]` tables with a `name` and a `services` list.
    pub fn from_toml(text: &str) -> Result<Self, CatalogueError> {
        let file: CatalogueFile = toml::from_str(text)?;
        let mut services = Vec::new();
        let mut index_by_name = HashMap::new();
        for system in file.system {
            if system.name.trim().is_empty() {
                return Err(CatalogueError::EmptySystemName);
            }
            for name in system.services {
                let name = match ServiceName::from_folder_name(name) {
                    Ok(name) => name,
                    Err((name, reason)) => {
                        return Err(CatalogueError::UnusableServiceName {
                            name,
                            system: system.name,
                            reason,
                        });
                    }
                };
                if let Some(&first) = index_by_name.get(name.as_str()) {
                    let first_system: &Service = &services[first];
                    return Err(CatalogueError::DuplicateService {
                        first_system: first_system.system.clone(),
                        second_system: system.name,
                        name: name.to_string(),
                    });
                }
                index_by_name.insert(name.to_string(), services.len());
                services.push(Service {
                    name,
                    system: system.name.clone(),
                    interface: system.interface,
                });
            }
        }
        Ok(Self {
            services,
            index_by_name,
        })
    }

    /// The service with exactly this name (names are case-sensitive, like the folders).
    pub fn get(&self, name: &str) -> Option<&Service> {
        self.index_by_name
            .get(name)
            .map(|&index| &self.services[index])
    }

    pub fn contains(&self, name: &str) -> bool {
        self.index_by_name.contains_key(name)
    }

    /// Whether `name` is a service files are uploaded to (a folder in the FTPS tree).
    pub fn takes_files(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|service| service.interface == Interface::Files)
    }

    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.services.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The service list at the end of the client guide (seed 000), copied verbatim.
    const SEED_SERVICES: &str = "\
FATCA CRS Udlaan Prioritetslaan Pensiondiverse Pantebreve Indlaan CBC
AKFA AKSA ANPA ATP BHOL CPS FINK GI IFPA IRTE OBLG PADE PANT SFS UDBY URTE KTR
INDBetalingsoplysningerTraekListeModtagService
INDBetalingsaftalerTraekListeModtagService
INDBetalingsanmodningerTraekListeSendService
INDIndbetalingsKortStatusListeModtagService
INDBetalingTilAfmeldingerTraekListeSendService
INDIndbetalingOplysningListeModtagService
INDKontoudtogOplysningListeModtagService
INDUdbetalingOplysningListeModtagService
INDMFFordringIndberetService
INDMFKvitteringHentService
INDMFUnderretSamlingHentService
INDMFFordringTypeHentService
INDMUdbetalingOplysningListeModtagService
INDMKontoudtogOplysningListeModtagService
MFFordringIndberet MFFordringTypeHent MFKvitteringHent MFUnderretSamlingHent
BetalingsanmodningerTrækListeSend
DMIBetalingsaftalerTrækListeModtagService
DMIBetalingsanmodningerTrækListeSendService
DMIBetalingsoplysningerTrækListeModtagService
DMIBetalingTilAfmeldingerTrækListeSendService
DMIIndbetalingOplysningListeModtagService
DMIKontoudtogOplysningListeModtagService
DMIUdbetalingOplysningListeModtagService
DMIValutaKurserOverførService
SummariskIndgangsangivelseOpdaterService
SummariskIndgangsangivelseOpretService
SummariskIndgangsangivelseSamlingOmdirigerService
Manifest.AfgangsdeklarationOpdater
Manifest.AfgangsdeklarationOpret
Manifest.AfgangsdeklarationSlet
Manifest.AnkomstdeklarationOpdater
Manifest.AnkomstdeklarationOpret
Manifest.AnkomstdeklarationSlet
Manifest.EksternAnkomstOgAfgangsIndberetningOpret
Manifest.MidlertidigOpbevaringOpdater
Manifest.MidlertidigOpbevaringOpret
Manifest.MidlertidigOpbevaringOpsplitOpret
Manifest.MidlertidigOpbevaringSlet
Manifest.TolddokumentSamlingHent
FTPSGW.Heartbeat";

    #[test]
    fn builtin_holds_every_service_of_the_client_guide() {
        let catalogue = ServiceCatalogue::builtin();
        let seed: Vec<&str> = SEED_SERVICES.split_whitespace().collect();
        for name in &seed {
            assert!(catalogue.takes_files(name), "missing service {name}");
        }
        let files = catalogue
            .services()
            .filter(|s| s.interface == Interface::Files);
        assert_eq!(files.count(), seed.len());
        assert!(catalogue.contains("EMCS"));
        assert!(
            !catalogue.takes_files("EMCS"),
            "EMCS is called, not a folder"
        );
        assert_eq!(
            catalogue
                .get("DMIValutaKurserOverførService")
                .map(|s| s.system.as_str()),
            Some("DMI")
        );
        assert_eq!(
            catalogue.get("FTPSGW.Heartbeat").map(|s| s.system.as_str()),
            Some("FTPS Gateway")
        );
        assert!(!catalogue.contains("fatca"), "names are case-sensitive");
    }

    #[test]
    fn builtin_service_count_per_system() {
        let catalogue = ServiceCatalogue::builtin();
        let expected = [
            ("eKapital", 8),
            ("eKapital (Classic)", 17),
            ("PSRM", 14),
            ("MiniMF (ICI)", 4),
            ("DMI", 9),
            ("ICS", 3),
            ("Manifest", 12),
            ("FTPS Gateway", 1),
            ("EMCS", 1),
        ];
        for (system, count) in expected {
            let actual = catalogue.services().filter(|s| s.system == system).count();
            assert_eq!(actual, count, "services of {system}");
        }
        let total: usize = expected.iter().map(|(_, count)| count).sum();
        assert_eq!(
            catalogue.services().count(),
            total,
            "no service outside the listed systems"
        );
    }

    #[test]
    fn operator_catalogue_keeps_file_order() {
        let catalogue = ServiceCatalogue::from_toml(
            "[[system]]\nname = \"B\"\nservices = [\"Zeta\", \"Alpha\"]\n",
        )
        .unwrap();
        let names: Vec<&str> = catalogue.services().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Zeta", "Alpha"]);
    }

    #[test]
    fn rejects_duplicates_across_systems() {
        let error = ServiceCatalogue::from_toml(
            "[[system]]\nname = \"A\"\nservices = [\"X\"]\n[[system]]\nname = \"B\"\nservices = [\"X\"]\n",
        )
        .unwrap_err();
        assert!(
            matches!(&error, CatalogueError::DuplicateService { name, first_system, second_system }
                if name == "X" && first_system == "A" && second_system == "B"),
            "{error}"
        );
    }

    #[test]
    fn rejects_names_that_are_not_one_path_segment() {
        for (name, reason) in [
            ("", PathSegmentError::Empty),
            ("..", PathSegmentError::DotName),
            ("a/b", PathSegmentError::Separator),
            ("a\\\\b", PathSegmentError::Separator),
            ("a\\tb", PathSegmentError::ControlCharacter),
        ] {
            let text = format!("[[system]]\nname = \"A\"\nservices = [\"{name}\"]\n");
            let error = ServiceCatalogue::from_toml(&text).unwrap_err();
            assert!(
                matches!(&error, CatalogueError::UnusableServiceName { reason: r, .. } if *r == reason),
                "{name}: {error}"
            );
        }
    }

    #[test]
    fn rejects_malformed_files() {
        assert!(matches!(
            ServiceCatalogue::from_toml("[[system]]\nname = \"A\"\n"),
            Err(CatalogueError::Parse(_))
        ));
        assert!(matches!(
            ServiceCatalogue::from_toml("[[system]]\nname = \"A\"\nservices = []\nextra = 1\n"),
            Err(CatalogueError::Parse(_))
        ));
        assert!(matches!(
            ServiceCatalogue::from_toml("[[system]]\nname = \" \"\nservices = []\n"),
            Err(CatalogueError::EmptySystemName)
        ));
    }
}
