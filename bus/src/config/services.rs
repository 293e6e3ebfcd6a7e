//! The domain services after registration (`[services.*]`): orders, results,
//! billing and imaging. Each can be switched off; results and billing read a
//! table kept as CSV beside the route tables; imaging waits a quiet time
//! before it calls a study complete.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[services]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServicesConfig {
    /// `[services.orders]`: orders and appointments.
    pub orders: OrdersServiceConfig,
    /// `[services.results]`: observations, reports and critical values.
    pub results: ResultsServiceConfig,
    /// `[services.billing]`: charges.
    pub billing: BillingServiceConfig,
    /// `[services.imaging]`: DICOM studies.
    pub imaging: ImagingServiceConfig,
}

/// `[services.orders]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrdersServiceConfig {
    /// Run the service. Default true.
    pub enabled: bool,
}

impl Default for OrdersServiceConfig {
    fn default() -> Self {
        OrdersServiceConfig { enabled: true }
    }
}

/// `[services.results]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResultsServiceConfig {
    /// Run the service. Default true.
    pub enabled: bool,
    /// CSV of critical limits per code (`system,code,low,high,unit`), relative
    /// to the config file's directory. Empty: only the sender's HH/LL/AA flags count.
    pub critical_values: PathBuf,
}

impl Default for ResultsServiceConfig {
    fn default() -> Self {
        ResultsServiceConfig {
            enabled: true,
            critical_values: PathBuf::new(),
        }
    }
}

/// `[services.billing]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BillingServiceConfig {
    /// Run the service. Default true.
    pub enabled: bool,
    /// The charge master CSV (`code,cpt,description,price,currency`), relative
    /// to the config file's directory. Empty: only charges sent as DFT are posted.
    pub charge_master: PathBuf,
}

impl Default for BillingServiceConfig {
    fn default() -> Self {
        BillingServiceConfig {
            enabled: true,
            charge_master: PathBuf::new(),
        }
    }
}

/// `[services.imaging]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImagingServiceConfig {
    /// Run the service. Default true.
    pub enabled: bool,
    /// How long a study must go without a new instance before it is
    /// `available` and `imaging.study-completed` is raised. Default 60s;
    /// between 1s and 24h.
    #[serde(with = "humantime_serde")]
    pub quiet_time: Duration,
}

/// The shortest quiet time: below it a modality still sending a series would
/// see its study completed between two instances.
pub const MIN_QUIET_TIME: Duration = Duration::from_secs(1);
/// The longest quiet time: a day; longer would keep studies open past any
/// reading workflow.
pub const MAX_QUIET_TIME: Duration = Duration::from_secs(24 * 60 * 60);

impl Default for ImagingServiceConfig {
    fn default() -> Self {
        ImagingServiceConfig {
            enabled: true,
            quiet_time: Duration::from_secs(60),
        }
    }
}

/// Checks of `[services]` that types cannot express, as (key, message).
pub fn validate(s: &ServicesConfig) -> Vec<(String, String)> {
    let mut p = Vec::new();
    let q = s.imaging.quiet_time;
    if !(MIN_QUIET_TIME..=MAX_QUIET_TIME).contains(&q) {
        p.push((
            "services.imaging.quiet_time".to_string(),
            format!("must be between 1s and 24h, got {}", humantime::format_duration(q)),
        ));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_quiet_time_is_valid_and_the_bounds_hold() {
        let mut s = ServicesConfig::default();
        assert_eq!(s.imaging.quiet_time, Duration::from_secs(60));
        assert!(validate(&s).is_empty());
        for bad in [Duration::from_millis(999), Duration::from_secs(24 * 60 * 60 + 1)] {
            s.imaging.quiet_time = bad;
            let p = validate(&s);
            assert_eq!(p.len(), 1, "{bad:?}");
            assert_eq!(p[0].0, "services.imaging.quiet_time");
        }
        for good in [MIN_QUIET_TIME, MAX_QUIET_TIME] {
            s.imaging.quiet_time = good;
            assert!(validate(&s).is_empty(), "{good:?}");
        }
    }

    #[test]
    fn the_quiet_time_comes_from_the_environment_and_is_checked_there_too() {
        let env = |v: &str| std::collections::BTreeMap::from([("MEDBUS_SERVICES_IMAGING_QUIET_TIME".into(), v.into())]);
        let c = crate::config::load::load(None, &env("5m")).unwrap();
        assert_eq!(c.services.imaging.quiet_time, Duration::from_secs(300));
        let problems = crate::config::load::load(None, &env("2days")).unwrap_err().0;
        assert_eq!(problems.len(), 1);
        let said = problems[0].to_string();
        assert!(said.contains("MEDBUS_SERVICES_IMAGING_QUIET_TIME"), "{said}");
        assert!(said.contains("between 1s and 24h"), "{said}");
    }
}
