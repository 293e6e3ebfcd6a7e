//! The domain services after registration (`[services.*]`): orders, results
//! and billing. Each can be switched off; results and billing read a table
//! kept as CSV beside the route tables.

use std::path::PathBuf;

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
