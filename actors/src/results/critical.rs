//! Which values are critical: the sender's flag (`HH`, `LL`, `AA`), or a
//! quantity beyond the limits configured for its code.
//!
//! The limits come from a CSV kept beside the config,
//! `system,code,low,high,unit`: critical below `low` or above `high` (either
//! may be empty, not both), for a value in `unit` (empty: any unit). A value
//! in another unit is not compared — converting units is not this table's job,
//! and a wrong comparison is worse than none.

use std::collections::HashMap;
use std::path::Path;

use medbus_bus::canonical::{
    CriticalReason, Decimal, Observation, ObservationStatus, ObservationValue, Quantity, QuantityComparator,
};
use medbus_bus::config::services::ResultsServiceConfig;

use crate::table::{self, TableError};

/// The interpretation codes that mean critical (v3 ObservationInterpretation).
pub const CRITICAL_FLAGS: [&str; 3] = ["HH", "LL", "AA"];

/// The columns of the critical values CSV.
pub const COLUMNS: [&str; 5] = ["system", "code", "low", "high", "unit"];

/// The critical limits of one code.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    /// Critical below this.
    pub low: Option<Decimal>,
    /// Critical above this.
    pub high: Option<Decimal>,
    /// The unit the limits are in (UCUM code or unit as displayed); None: any.
    pub unit: Option<String>,
}

impl Limit {
    /// True when `q` is in this limit's unit.
    fn unit_matches(&self, q: &Quantity) -> bool {
        match &self.unit {
            None => true,
            Some(u) => q.code.as_deref() == Some(u.as_str()) || q.unit.as_deref() == Some(u.as_str()),
        }
    }

    /// True when `q` is beyond a limit. A bound (`<2.0`, `>10`) counts only
    /// when every value it stands for is beyond: `>6.5` is above 6.5, `<7.0`
    /// says nothing about a high limit of 6.5.
    fn crossed_by(&self, q: &Quantity) -> bool {
        let Some(v) = q.value else {
            return false;
        };
        let above = |high: Decimal| match q.comparator {
            None => v > high,
            Some(QuantityComparator::Greater) => v >= high,
            Some(QuantityComparator::GreaterOrEqual) => v > high,
            Some(QuantityComparator::Less | QuantityComparator::LessOrEqual) => false,
        };
        let below = |low: Decimal| match q.comparator {
            None => v < low,
            Some(QuantityComparator::Less) => v <= low,
            Some(QuantityComparator::LessOrEqual) => v < low,
            Some(QuantityComparator::Greater | QuantityComparator::GreaterOrEqual) => false,
        };
        self.high.is_some_and(above) || self.low.is_some_and(below)
    }
}

/// Critical limits by (code system, code).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CriticalLimits {
    limits: HashMap<(String, String), Limit>,
}

impl CriticalLimits {
    /// No limits: only the sender's flags count.
    pub fn none() -> Self {
        CriticalLimits::default()
    }

    /// The limits `[services.results] critical_values` names, relative to
    /// `config_dir`; none when the setting is empty.
    pub fn from_config(cfg: &ResultsServiceConfig, config_dir: &Path) -> Result<Self, TableError> {
        if cfg.critical_values.as_os_str().is_empty() {
            return Ok(CriticalLimits::none());
        }
        CriticalLimits::load(&config_dir.join(&cfg.critical_values))
    }

    /// Reads a CSV `system,code,low,high,unit`; any bad line is an error
    /// naming the file and the line.
    pub fn load(path: &Path) -> Result<Self, TableError> {
        let mut limits = HashMap::new();
        let mut seen: HashMap<(String, String), usize> = HashMap::new();
        for row in table::read(path, &COLUMNS)? {
            let [system, code, low, high, unit] = row.fields.as_slice() else {
                return Err(TableError::at(path, row.line, "a row is system,code,low,high,unit"));
            };
            if system.is_empty() || code.is_empty() {
                return Err(TableError::at(path, row.line, "system and code must not be empty"));
            }
            let number = |name: &str, text: &str| -> Result<Option<Decimal>, TableError> {
                if text.is_empty() {
                    return Ok(None);
                }
                Decimal::parse(text)
                    .map(Some)
                    .ok_or_else(|| TableError::at(path, row.line, format!("{name} {text:?} is not a decimal number")))
            };
            let (low, high) = (number("low", low)?, number("high", high)?);
            match (low, high) {
                (None, None) => {
                    return Err(TableError::at(path, row.line, "give low, high or both"));
                }
                (Some(l), Some(h)) if l > h => {
                    return Err(TableError::at(path, row.line, format!("low {l} is above high {h}")));
                }
                _ => {}
            }
            let key = (system.clone(), code.clone());
            if let Some(first) = seen.get(&key) {
                return Err(TableError::at(
                    path,
                    row.line,
                    format!("{system}|{code} is already in the table (line {first})"),
                ));
            }
            seen.insert(key.clone(), row.line);
            let unit = (!unit.is_empty()).then(|| unit.clone());
            limits.insert(key, Limit { low, high, unit });
        }
        Ok(CriticalLimits { limits })
    }

    /// The limits of `code` in `system`.
    pub fn limit(&self, system: &str, code: &str) -> Option<&Limit> {
        self.limits.get(&(system.to_string(), code.to_string()))
    }

    /// Number of codes with limits.
    pub fn len(&self) -> usize {
        self.limits.len()
    }

    /// True without limits.
    pub fn is_empty(&self) -> bool {
        self.limits.is_empty()
    }
}

/// Why `obs` is critical, or None. The sender's flag wins over a threshold
/// (one reason per value); a cancelled or withdrawn value is never critical.
pub fn judge(obs: &Observation, limits: &CriticalLimits) -> Option<CriticalReason> {
    if matches!(
        obs.status,
        ObservationStatus::Cancelled | ObservationStatus::EnteredInError
    ) {
        return None;
    }
    if let Some(flag) = CRITICAL_FLAGS.iter().find(|f| obs.has_interpretation(f)) {
        return Some(CriticalReason::Flag((*flag).to_string()));
    }
    let Some(ObservationValue::Quantity(q)) = &obs.value else {
        return None;
    };
    obs.code.coding.iter().find_map(|c| {
        let limit = limits.limit(c.system.as_deref()?, c.code.as_deref()?)?;
        (limit.unit_matches(q) && limit.crossed_by(q)).then_some(CriticalReason::Threshold {
            low: limit.low,
            high: limit.high,
        })
    })
}

#[cfg(test)]
#[path = "critical_tests.rs"]
mod tests;
