//! Configuration: the model ([`model`]), the layered loader ([`load`](mod@load): built-in
//! defaults, then the file, then `MEDBUS_*` environment variables), pure
//! validation ([`validate`]) and problems located by file and line ([`problem`]).

pub mod channels;
pub mod destinations;
pub mod dicom;
pub mod dicom_destinations;
pub mod fhir_destinations;
pub mod fhir_server;
pub mod load;
pub mod model;
mod named;
pub mod notifications;
pub mod problem;
pub mod services;
pub mod subscriptions;
pub mod tls;
pub mod validate;

pub use channels::{ChannelConfig, ChannelProtocol};
pub use destinations::{DestinationConfig, DestinationProtocol, RefusalPolicy};
pub use load::{env_var_for, known_keys, load};
pub use model::*;
pub use problem::{Origin, Problem, Problems};
pub use tls::{TlsClientFiles, TlsFiles};
/// A URL with any password replaced by `***`, for logs and error messages.
pub fn redact_url(url: &str) -> String {
    // scheme://user:password@host… → scheme://user:***@host…
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((cred, host)) = rest.split_once('@') {
            if let Some((user, _)) = cred.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords_only() {
        assert_eq!(super::redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact_url("embedded"), "embedded");
    }
}
