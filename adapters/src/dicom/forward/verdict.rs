//! What one C-STORE attempt means for the instance: delivered (ack), worth
//! another attempt (backoff), or refused for good (dead letter now).
//!
//! Statuses (PS3.4 B.2.3, PS3.7 C): success and the warnings 0xB000, 0xB006,
//! 0xB007, 0x0107, 0x0116 mean the PACS stored it. 0xA7xx (out of resources)
//! and 0xA9xx (data set does not match SOP class; some PACS answer it while
//! their storage is unwell) are retried, as is any status not named here, a
//! dropped connection or a timeout. No association at all (connection
//! refused, association rejected — a permanent rejection too: it is about us,
//! an AE title the PACS does not know, not about the instance) is retried
//! without counting attempts: dead-lettering would empty the whole queue and
//! break its order; the destination reports itself unreachable and waits. 0xCxxx (cannot understand), the other 0x01xx/0x02xx refusals (SOP
//! class not supported 0x0122, not authorized 0x0124, invalid instance,
//! unrecognized operation) and a refused presentation context will not change
//! by trying again: dead-lettered at once.

use crate::dicom::scu::{self, Outcome, Response, ScuError};

/// The verdict on one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Stored by the PACS (success or a warning).
    Delivered {
        /// The C-STORE status.
        status: u16,
    },
    /// May pass: try again after the backoff; counts against `max_attempts`.
    Retry(Failure),
    /// No association could be made (connection refused, association
    /// rejected): the instance was never offered, so trying again costs it no
    /// attempt. Retried with backoff until the PACS takes associations again,
    /// so an outage or a config mistake never dead-letters the queue nor
    /// breaks its order.
    Unreachable(Failure),
    /// Will not pass: dead-letter now.
    Refuse(Failure),
}

/// Why an attempt failed, as the dead letter will carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Failure {
    /// One line for the dead letter's reason.
    pub why: String,
    /// The C-STORE status, when the PACS answered one.
    pub status: Option<u16>,
    /// The PACS's Error Comment (0000,0902), when it gave one.
    pub comment: Option<String>,
}

impl Failure {
    fn plain(why: String) -> Self {
        Failure {
            why,
            status: None,
            comment: None,
        }
    }
}

/// True for a failure status that trying again will not change.
fn permanent_status(status: u16) -> bool {
    matches!(status & 0xFF00, 0x0100 | 0x0200) || status & 0xF000 == 0xC000
}

/// Judges the result of one C-STORE.
pub(super) fn judge(result: Result<Response, ScuError>) -> Verdict {
    match result {
        Ok(rsp) => match scu::outcome(rsp.status) {
            Outcome::Success | Outcome::Warning => Verdict::Delivered { status: rsp.status },
            Outcome::Failure => {
                let f = Failure {
                    why: format!("the PACS answered {}", scu::describe(rsp.status)),
                    status: Some(rsp.status),
                    comment: rsp.error_comment,
                };
                if permanent_status(rsp.status) {
                    Verdict::Refuse(f)
                } else {
                    Verdict::Retry(f)
                }
            }
        },
        Err(e @ ScuError::ContextRejected { .. }) => Verdict::Refuse(Failure::plain(format!(
            "refused SOP class: {e} (no presentation context; the PACS does not take it)"
        ))),
        Err(e @ (ScuError::Associate { .. } | ScuError::Rejected { .. })) => {
            Verdict::Unreachable(Failure::plain(e.to_string()))
        }
        Err(e) => Verdict::Retry(Failure::plain(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsp(status: u16, comment: Option<&str>) -> Result<Response, ScuError> {
        Ok(Response {
            command_field: scu::command::C_STORE_RSP,
            responding_to: 1,
            status,
            error_comment: comment.map(String::from),
        })
    }

    #[test]
    fn statuses_sort_into_ack_retry_and_dead_letter() {
        for s in [0x0000, 0xB000, 0xB006, 0xB007, 0x0107, 0x0116] {
            assert_eq!(judge(rsp(s, None)), Verdict::Delivered { status: s });
        }
        for s in [0xA700, 0xA7FF, 0xA900, 0xFE00, 0xD000] {
            assert!(matches!(judge(rsp(s, None)), Verdict::Retry(_)), "{s:04X}");
        }
        for s in [0xC000, 0xC123, 0x0122, 0x0124, 0x0117, 0x0211] {
            assert!(matches!(judge(rsp(s, None)), Verdict::Refuse(_)), "{s:04X}");
        }
        let Verdict::Refuse(f) = judge(rsp(0xC000, Some("bad pixel data"))) else {
            panic!("0xC000 is refused")
        };
        assert_eq!((f.status, f.comment.as_deref()), (Some(0xC000), Some("bad pixel data")));
        assert!(f.why.contains("0xC000 (error: cannot understand)"), "{}", f.why);
    }

    #[test]
    fn association_failures_retry_even_when_permanent() {
        let addr = "127.0.0.1:104".parse().unwrap();
        let transient = ScuError::Rejected {
            addr,
            permanent: false,
            reason: "busy".into(),
        };
        assert!(matches!(judge(Err(transient)), Verdict::Unreachable(_)));
        let permanent = ScuError::Rejected {
            addr,
            permanent: true,
            reason: "called AE not recognized".into(),
        };
        // A rejection is about the association (our AE title, the PACS's
        // config), not the instance: dead-lettering would empty the queue.
        assert!(matches!(judge(Err(permanent)), Verdict::Unreachable(_)));
        let refused_connection = ScuError::Associate {
            addr,
            reason: "connection refused".into(),
        };
        assert!(matches!(judge(Err(refused_connection)), Verdict::Unreachable(_)));
        let refused = ScuError::ContextRejected {
            addr,
            abstract_syntax: "1.2.3".into(),
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
        };
        let Verdict::Refuse(f) = judge(Err(refused)) else {
            panic!("a refused context is final")
        };
        assert!(f.why.contains("refused SOP class"), "{}", f.why);
        assert!(matches!(
            judge(Err(ScuError::Transport("reset".into()))),
            Verdict::Retry(_)
        ));
        let timeout = ScuError::Timeout(std::time::Duration::from_secs(1));
        assert!(matches!(judge(Err(timeout)), Verdict::Retry(_)));
    }
}
