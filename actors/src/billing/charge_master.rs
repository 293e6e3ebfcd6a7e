//! The charge master: what an order or a final result is charged, by code.
//!
//! A CSV kept beside the config, `code,cpt,description,price,currency`: the
//! code an order or report carries (any of its codings, e.g. the LOINC panel
//! code or a local code), the CPT code billed for it (may be empty), its
//! description, its price as a decimal and the ISO 4217 currency.

use std::collections::HashMap;
use std::path::Path;

use medbus_bus::canonical::{CodeableConcept, Coding, Decimal};
use medbus_bus::config::services::BillingServiceConfig;

use crate::table::{self, TableError};

/// The columns of the charge master CSV.
pub const COLUMNS: [&str; 5] = ["code", "cpt", "description", "price", "currency"];

/// One chargeable code.
#[derive(Debug, Clone, PartialEq)]
pub struct ChargeEntry {
    /// The code orders and reports carry.
    pub code: String,
    /// The CPT code billed, when there is one.
    pub cpt: Option<String>,
    /// What is charged, as the bill shows it.
    pub description: String,
    /// The price of one.
    pub price: Decimal,
    /// ISO 4217 currency (`USD`).
    pub currency: String,
}

/// The charge master, by code.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChargeMaster {
    entries: HashMap<String, ChargeEntry>,
}

impl ChargeMaster {
    /// An empty charge master: nothing is derived, only DFT charges are posted.
    pub fn none() -> Self {
        ChargeMaster::default()
    }

    /// The charge master `[services.billing] charge_master` names, relative to
    /// `config_dir`; empty when the setting is empty.
    pub fn from_config(cfg: &BillingServiceConfig, config_dir: &Path) -> Result<Self, TableError> {
        if cfg.charge_master.as_os_str().is_empty() {
            return Ok(ChargeMaster::none());
        }
        ChargeMaster::load(&config_dir.join(&cfg.charge_master))
    }

    /// Reads a CSV `code,cpt,description,price,currency`; any bad line is an
    /// error naming the file and the line.
    pub fn load(path: &Path) -> Result<Self, TableError> {
        let mut entries: HashMap<String, ChargeEntry> = HashMap::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for row in table::read(path, &COLUMNS)? {
            let [code, cpt, description, price, currency] = row.fields.as_slice() else {
                return Err(TableError::at(
                    path,
                    row.line,
                    "a row is code,cpt,description,price,currency",
                ));
            };
            if code.is_empty() {
                return Err(TableError::at(path, row.line, "the code must not be empty"));
            }
            let price = Decimal::parse(price).filter(|p| p.value() >= 0.0).ok_or_else(|| {
                TableError::at(path, row.line, format!("price {price:?} is not a decimal number ≥ 0"))
            })?;
            if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(TableError::at(
                    path,
                    row.line,
                    format!("currency {currency:?} is not an ISO 4217 code such as USD"),
                ));
            }
            if let Some(first) = seen.get(code) {
                return Err(TableError::at(
                    path,
                    row.line,
                    format!("{code:?} is already in the table (line {first})"),
                ));
            }
            seen.insert(code.clone(), row.line);
            let entry = ChargeEntry {
                code: code.clone(),
                cpt: (!cpt.is_empty()).then(|| cpt.clone()),
                description: description.clone(),
                price,
                currency: currency.clone(),
            };
            entries.insert(code.clone(), entry);
        }
        Ok(ChargeMaster { entries })
    }

    /// The entry for `code`.
    pub fn get(&self, code: &str) -> Option<&ChargeEntry> {
        self.entries.get(code)
    }

    /// The first coding of `concept` whose code is charged, with its entry.
    pub fn find<'a>(&'a self, concept: &'a CodeableConcept) -> Option<(&'a Coding, &'a ChargeEntry)> {
        concept
            .coding
            .iter()
            .find_map(|c| c.code.as_deref().and_then(|code| self.get(code)).map(|e| (c, e)))
    }

    /// Number of codes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True without codes.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use medbus_bus::canonical::systems;

    use super::*;

    const TABLE: &str = "code,cpt,description,price,currency\n\
        51990-0,80048,\"BASIC METABOLIC PANEL\",42.50,USD\n\
        36415,36415,ROUTINE VENIPUNCTURE,12.00,USD\n";

    fn load(text: &str) -> Result<ChargeMaster, TableError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cm.csv");
        std::fs::write(&path, text).unwrap();
        ChargeMaster::load(&path)
    }

    #[test]
    fn codes_are_found_in_any_coding() {
        let cm = load(TABLE).unwrap();
        assert_eq!(cm.len(), 2);
        let e = cm.get("51990-0").unwrap();
        assert_eq!(
            (e.cpt.as_deref(), e.price.value(), e.currency.as_str()),
            (Some("80048"), 42.5, "USD")
        );
        let concept = CodeableConcept {
            coding: vec![
                Coding::new("urn:medbus:codesystem:LAB", "BMP", None),
                Coding::new(systems::LOINC, "51990-0", None),
            ],
            text: None,
        };
        let (coding, entry) = cm.find(&concept).unwrap();
        assert_eq!(
            (coding.code.as_deref(), entry.code.as_str()),
            (Some("51990-0"), "51990-0")
        );
        assert!(cm
            .find(&CodeableConcept::coded(Coding::new(systems::LOINC, "1-8", None)))
            .is_none());
    }

    #[test]
    fn bad_lines_are_refused_with_the_line() {
        for (row, why) in [
            ("X,,x,ten,USD", "not a decimal"),
            ("X,,x,-1,USD", "not a decimal"),
            ("X,,x,1,dollars", "ISO 4217"),
            (",,x,1,USD", "must not be empty"),
            ("36415,,x,1,USD", "already in the table (line 3)"),
        ] {
            let e = load(&format!("{TABLE}{row}\n")).unwrap_err();
            assert_eq!(e.line, Some(4), "{row}: {e}");
            assert!(e.message.contains(why), "{row}: {e}");
        }
    }
}
