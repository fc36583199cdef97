//! Why a run (or a sweep) stopped before the end: [`StopCause`].

/// Why a run stopped starting work before the end. A run can meet more than one cause (a
/// budget reached while dialogues in flight fail, then an interrupt): the summary keeps the
/// one that decides how it ends, an interrupt before repeated failures before a budget.
///
/// Serialized with a `cause` tag: `{"cause": "budget", "reason": "token budget reached (990
/// of 1000 tokens)"}`, `{"cause": "consecutive_failures", "reason": "10 dialogues in a row
/// failed, the last with: ..."}` or `{"cause": "interrupted"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum StopCause {
    /// A token or cost cap was reached; nothing new started. Resuming continues.
    Budget {
        /// Which cap, and the spend against it, e.g. `cost budget reached ($0.0100 of $0.0100)`.
        reason: String,
    },
    /// Too many dialogues (or respondents) failed in a row; nothing new started.
    ConsecutiveFailures {
        /// How many failed, and the last one's error.
        reason: String,
    },
    /// Stopped by an interrupt (Ctrl-C, SIGTERM, or the library's [`super::Interrupt`]);
    /// finished work is saved and resuming continues.
    Interrupted,
}

impl StopCause {
    /// The cause from what a batch met, in order of precedence (see [`StopCause`]).
    pub(crate) fn of(interrupted: bool, halted: Option<String>, budget: Option<String>) -> Option<Self> {
        if interrupted {
            Some(Self::Interrupted)
        } else if let Some(reason) = halted {
            Some(Self::ConsecutiveFailures { reason })
        } else {
            budget.map(|reason| Self::Budget { reason })
        }
    }

    /// The budget's reason, when a budget stopped the run.
    pub fn budget(&self) -> Option<&str> {
        match self {
            Self::Budget { reason } => Some(reason),
            _ => None,
        }
    }

    /// Why, in words (an interrupt has no more to say).
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Budget { reason } | Self::ConsecutiveFailures { reason } => Some(reason),
            Self::Interrupted => None,
        }
    }
}

impl std::fmt::Display for StopCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Budget { reason } => write!(f, "stopped for budget: {reason}"),
            Self::ConsecutiveFailures { reason } => write!(f, "stopped after repeated failures: {reason}"),
            Self::Interrupted => f.write_str("interrupted"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_serde_shape() {
        let b = || Some("token budget reached (1 of 1 tokens)".to_string());
        assert_eq!(StopCause::of(true, Some("x".into()), b()), Some(StopCause::Interrupted));
        assert_eq!(
            StopCause::of(false, Some("x".into()), b()),
            Some(StopCause::ConsecutiveFailures { reason: "x".into() })
        );
        assert_eq!(StopCause::of(false, None, None), None);
        let json = serde_json::to_value(StopCause::of(false, None, b()).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"cause": "budget", "reason": "token budget reached (1 of 1 tokens)"})
        );
        assert_eq!(
            serde_json::to_value(StopCause::Interrupted).unwrap(),
            serde_json::json!({"cause": "interrupted"})
        );
    }
}
