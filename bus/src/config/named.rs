//! Environment overrides of named tables (`[subscriptions.<name>]`,
//! `[fhir_destinations.<name>]`): the names exist only in the file, so the
//! variables are worked out from it rather than listed in advance.

use serde::Serialize;

/// `s` as an environment variable part: ASCII letters and digits
/// upper-cased, anything else `_`.
fn upper(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The variable that sets `key` of `[<section>.<name>]`
/// (`subscriptions`, `emr-main`, `secret` → `MEDBUS_SUBSCRIPTIONS_EMR_MAIN_SECRET`).
pub fn env_var(section: &str, name: &str, key: &str) -> String {
    format!("MEDBUS_{}_{}_{}", upper(section), upper(name), upper(key))
}

/// The config key (`<section>.<name>.<key>`) the variable `var` sets, among
/// the tables of `section` named in the file `table` with `keys`.
pub fn env_key(table: &toml::Table, section: &str, keys: &[(String, toml::Value)], var: &str) -> Option<String> {
    let named = table.get(section)?.as_table()?;
    named.keys().find_map(|name| {
        keys.iter()
            .find(|(k, _)| env_var(section, name, k) == var)
            .map(|(k, _)| format!("{section}.{name}.{k}"))
    })
}

/// Every key of a table type with its default, for `medbus config keys`.
pub fn known_keys<T: Serialize + Default>() -> Vec<(String, toml::Value)> {
    match toml::Value::try_from(T::default()) {
        Ok(toml::Value::Table(t)) => t.into_iter().collect(),
        _ => Vec::new(),
    }
}
