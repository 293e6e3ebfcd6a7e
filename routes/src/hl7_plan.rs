//! What the routes in force do with one HL7 v2 message, decided before
//! anything is written: which routes take it, the message after each route's
//! changes, the canonical events of each changed message and the services
//! and destinations they go to.
//!
//! Routes whose changes leave the same bytes share one set of events (the
//! union of their services), so fan-out to two services through two routes
//! does not publish the same events twice. Without any route file, every
//! message that maps goes to every service of its kinds, as before routes.

use bytes::Bytes;
use medbus_adapters::hl7::ack::AckError;
use medbus_adapters::hl7::canonical::{map_message, MapError};
use medbus_adapters::hl7::parser::Message;
use medbus_bus::canonical::CanonicalEvent;

use crate::config::{Routes, Service};

/// What routing will do with a message.
#[derive(Debug)]
pub enum RoutePlan {
    /// No route takes it, or what takes it produces nothing: recorded as filtered, with why.
    Filtered(String),
    /// Publish these, in order.
    Outputs(Vec<Output>),
    /// It cannot be mapped or changed (the sender's, or the route's, to fix):
    /// dead-letter it, answering AE with `ack` when the sender asked.
    Invalid {
        /// Why, for the operator.
        why: String,
        /// The ERR to send, when the message itself is at fault.
        ack: Option<AckError>,
    },
}

/// One version of the message (as one or more routes left it) and where it goes.
#[derive(Debug)]
pub struct Output {
    /// The routes that produced these bytes (empty: the default, no route files).
    pub routes: Vec<String>,
    /// The message as changed.
    pub bytes: Bytes,
    /// Its canonical events (none when no service is named, or its type maps to none).
    pub events: Vec<CanonicalEvent>,
    /// The services that take the events; `None`: every service of their kinds.
    pub services: Option<Vec<Service>>,
    /// Destinations that receive the changed message.
    pub destinations: Vec<String>,
}

impl Output {
    /// The value of the `Medbus-Services` header for its events, if restricted.
    pub fn services_header(&self) -> Option<String> {
        self.services
            .as_ref()
            .map(|s| s.iter().map(|s| s.name()).collect::<Vec<_>>().join(","))
    }
}

/// Plans `msg` (whose bytes are `raw`) arriving on `channel`.
pub fn plan(routes: &Routes, msg: &Message<'_>, raw: &Bytes, channel: &str) -> RoutePlan {
    if routes.is_empty() {
        return match map_message(msg) {
            Ok(events) => RoutePlan::Outputs(vec![Output {
                routes: Vec::new(),
                bytes: raw.clone(),
                events,
                services: None,
                destinations: Vec::new(),
            }]),
            Err(e @ (MapError::NotMapped { .. } | MapError::NotAdt { .. })) => {
                RoutePlan::Filtered(format!("no route files, and {e}"))
            }
            Err(e) => RoutePlan::Invalid {
                why: e.to_string(),
                ack: Some(e.to_ack_error()),
            },
        };
    }
    let taken = routes.select(msg, channel);
    if taken.is_empty() {
        return RoutePlan::Filtered(format!("no route takes this message on channel {channel}"));
    }
    let mut outputs: Vec<Output> = Vec::new();
    for route in taken {
        let bytes = if route.steps().is_empty() {
            raw.clone()
        } else {
            match route.apply(msg) {
                Ok(b) => Bytes::from(b),
                Err(e) => {
                    return RoutePlan::Invalid {
                        why: format!("route {}: {e}", route.name()),
                        ack: None,
                    }
                }
            }
        };
        let out = match outputs.iter_mut().find(|o| o.bytes == bytes) {
            Some(o) => o,
            None => {
                outputs.push(Output {
                    routes: Vec::new(),
                    bytes,
                    events: Vec::new(),
                    services: Some(Vec::new()),
                    destinations: Vec::new(),
                });
                let last = outputs.len() - 1;
                &mut outputs[last]
            }
        };
        out.routes.push(route.name().to_string());
        if let Some(services) = out.services.as_mut() {
            for s in route.services() {
                if !services.contains(s) {
                    services.push(*s);
                }
            }
        }
        for d in route.destinations() {
            if !out.destinations.contains(d) {
                out.destinations.push(d.clone());
            }
        }
    }
    for out in &mut outputs {
        if out.services.as_ref().is_some_and(|s| s.is_empty()) {
            continue;
        }
        let mapped = if out.bytes == *raw {
            map_message(msg)
        } else {
            match Message::parse(&out.bytes) {
                Ok(changed) => map_message(&changed),
                Err(e) => {
                    return RoutePlan::Invalid {
                        why: format!(
                            "routes {}: the changed message does not parse: {e}",
                            out.routes.join(", ")
                        ),
                        ack: None,
                    }
                }
            }
        };
        match mapped {
            Ok(events) => out.events = events,
            // A route may take a type that only goes to destinations.
            Err(MapError::NotMapped { .. } | MapError::NotAdt { .. }) => {}
            Err(e) => {
                return RoutePlan::Invalid {
                    why: e.to_string(),
                    ack: Some(e.to_ack_error()),
                }
            }
        }
    }
    if outputs.iter().all(|o| o.events.is_empty() && o.destinations.is_empty()) {
        let names: Vec<&str> = outputs
            .iter()
            .flat_map(|o| o.routes.iter().map(String::as_str))
            .collect();
        return RoutePlan::Filtered(format!(
            "taken by {} but its type maps to no events and no destination is named",
            names.join(", ")
        ));
    }
    RoutePlan::Outputs(outputs)
}
