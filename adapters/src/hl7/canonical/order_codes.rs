//! The HL7 tables that steer the order mapping: 0119 order control (which
//! event), 0038 order status (ServiceRequest.status) and 0027 priority.

use medbus_bus::canonical::{RequestPriority, ServiceRequestStatus};

/// What an order control code says happened to the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OrderChange {
    /// `order.placed`.
    Placed,
    /// `order.updated`.
    Updated,
    /// `order.cancelled`.
    Cancelled,
    /// `order.completed`.
    Completed,
}

/// Table 0119 → the change, and the status it implies when it implies one
/// (`None`: ORC-5 says, else the order is active).
pub(super) fn control(code: &str) -> Option<(OrderChange, Option<ServiceRequestStatus>)> {
    use OrderChange::*;
    use ServiceRequestStatus as S;
    Some(match code {
        // New order from the placer; number assigned by the filler for its own new order.
        "NW" | "SN" => (Placed, None),
        // Accepted, status changed, changed (requested, done, unsolicited).
        "OK" | "SC" | "XO" | "XR" | "XX" => (Updated, None),
        // Held (request, done, as requested) and released (request, done, as requested).
        "HD" | "OH" | "HR" => (Updated, Some(S::OnHold)),
        "RL" | "OE" | "OR" => (Updated, Some(S::Active)),
        // Cancel and discontinue: requested, done, done as requested.
        "CA" | "OC" | "CR" | "DC" | "OD" | "DR" => (Cancelled, Some(S::Revoked)),
        "CM" => (Completed, Some(S::Completed)),
        _ => return None,
    })
}

/// Table 0038 (ORC-5) → ServiceRequest.status, as HL7's v2-to-FHIR map has it.
pub(super) fn status(code: &str) -> Option<ServiceRequestStatus> {
    use ServiceRequestStatus as S;
    Some(match code {
        "A" | "IP" | "SC" => S::Active,
        "CA" | "DC" | "RP" => S::Revoked,
        "CM" => S::Completed,
        "ER" => S::EnteredInError,
        "HD" => S::OnHold,
        _ => return None,
    })
}

/// Table 0027 (TQ-6, TQ1-9) → priority. Preoperative, callback and
/// timing-critical have no FHIR code of their own: they are more than
/// routine, so urgent. Unknown values are left out (priority is optional).
pub(super) fn priority(code: &str) -> Option<RequestPriority> {
    Some(match code.to_ascii_uppercase().as_str() {
        "S" | "STAT" => RequestPriority::Stat,
        "A" | "ASAP" => RequestPriority::Asap,
        "R" | "ROUTINE" => RequestPriority::Routine,
        "P" | "C" | "T" | "URGENT" => RequestPriority::Urgent,
        _ => return None,
    })
}
