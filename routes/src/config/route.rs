//! [`Route`] and [`Routes`]: the compiled form the router runs per message.

use std::fmt;
use std::path::{Path, PathBuf};

use medbus_adapters::hl7::parser::Message;

use super::condition::{Condition, Facts};
use super::transform::{apply_steps, Step, TransformError};

/// A domain service a route can feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    /// Patients and encounters.
    Registration,
    /// Orders and appointments.
    Orders,
    /// Observations and reports.
    Results,
    /// Imaging studies.
    Imaging,
    /// Charges.
    Billing,
    /// Webhooks and e-mail.
    Notifications,
}

impl Service {
    /// Every service, in the order they are listed to users.
    pub const ALL: [Service; 6] = [
        Service::Registration,
        Service::Orders,
        Service::Results,
        Service::Imaging,
        Service::Billing,
        Service::Notifications,
    ];

    /// The name used in route files.
    pub fn name(self) -> &'static str {
        match self {
            Service::Registration => "registration",
            Service::Orders => "orders",
            Service::Results => "results",
            Service::Imaging => "imaging",
            Service::Billing => "billing",
            Service::Notifications => "notifications",
        }
    }

    /// From the name used in route files.
    pub fn from_name(name: &str) -> Option<Self> {
        Service::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One checked, compiled route.
#[derive(Debug, Clone)]
pub struct Route {
    pub(super) name: String,
    pub(super) description: Option<String>,
    pub(super) file: PathBuf,
    pub(super) line: usize,
    /// `None`: every channel (`channels = ["*"]`).
    pub(super) channels: Option<Vec<String>>,
    pub(super) when: Condition,
    pub(super) steps: Vec<Step>,
    pub(super) services: Vec<Service>,
    pub(super) destinations: Vec<String>,
    pub(super) enabled: bool,
}

impl Route {
    /// Its name, unique across the route files.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it is for, if the file says.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The file that defines it.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The line of its `[routes.<name>]` table.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The channels it takes from; `None` for every channel.
    pub fn channels(&self) -> Option<&[String]> {
        self.channels.as_deref()
    }

    /// The domain services it feeds.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// The destinations it sends to.
    pub fn destinations(&self) -> &[String] {
        &self.destinations
    }

    /// Its transform steps.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// False when the file keeps it switched off.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// True when it takes messages from `channel`.
    pub fn takes_channel(&self, channel: &str) -> bool {
        self.channels
            .as_ref()
            .is_none_or(|list| list.iter().any(|c| c == channel))
    }

    /// True when `msg` passes its filter (channels not considered).
    pub fn matches(&self, msg: &Message<'_>) -> bool {
        self.enabled && self.when.holds(msg, &Facts::of(msg))
    }

    fn matches_with(&self, msg: &Message<'_>, facts: &Facts<'_>) -> bool {
        self.enabled && self.when.holds(msg, facts)
    }

    /// The message after this route's transforms (the input's bytes when it has none).
    pub fn apply(&self, msg: &Message<'_>) -> Result<Vec<u8>, TransformError> {
        apply_steps(&self.steps, msg, None)
    }

    /// [`apply`](Self::apply), also saying what each step changed (for `medbus route test`).
    pub fn apply_explained(&self, msg: &Message<'_>) -> (Result<Vec<u8>, TransformError>, Vec<String>) {
        let mut notes = Vec::new();
        let result = apply_steps(&self.steps, msg, Some(&mut notes));
        (result, notes)
    }
}

/// Every route, in file order (files sorted by path).
#[derive(Debug, Clone, Default)]
pub struct Routes {
    pub(super) routes: Vec<Route>,
    pub(super) tables: usize,
    pub(super) files: usize,
    /// Route files and table files read: what a reload watches.
    pub(super) sources: Vec<PathBuf>,
}

impl Routes {
    /// The routes that take `msg` arriving on `channel`, in file order. Empty: the message is filtered.
    pub fn select<'r>(&'r self, msg: &Message<'_>, channel: &str) -> Vec<&'r Route> {
        let facts = Facts::of(msg);
        self.routes
            .iter()
            .filter(|r| r.takes_channel(channel) && r.matches_with(msg, &facts))
            .collect()
    }

    /// Like [`select`](Self::select) but whatever the routes' channels (for a dry run without `--channel`).
    pub fn select_any_channel<'r>(&'r self, msg: &Message<'_>) -> Vec<&'r Route> {
        let facts = Facts::of(msg);
        self.routes.iter().filter(|r| r.matches_with(msg, &facts)).collect()
    }

    /// The routes, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    /// The route named `name`.
    pub fn get(&self, name: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.name == name)
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True without routes.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Number of code tables the routes use.
    pub fn table_count(&self) -> usize {
        self.tables
    }

    /// The route files and table files these routes were read from.
    pub fn sources(&self) -> &[PathBuf] {
        &self.sources
    }

    /// Number of route files read.
    pub fn file_count(&self) -> usize {
        self.files
    }
}
