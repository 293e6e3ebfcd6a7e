//! Notification rules (`[notifications]`): which events become webhook calls
//! and e-mails, to whom, how often, and when to escalate.
//! (Filled in by the notifications service work.)

use serde::{Deserialize, Serialize};

/// `[notifications]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {}
