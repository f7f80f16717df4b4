//! A policy's `budgets` and `timezone` as written, and their validation.
//!
//! ```json
//! {"timezone": "Europe/Paris",
//!  "budgets": [{"window": "day", "amountUsd": "50.00"},
//!              {"window": {"rollingSeconds": 3600}, "count": 20}]}
//! ```

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::money::parse_usd;

/// The most budgets one policy document may hold: with every one rolling (five counters each)
/// in all three scopes, a reserve stays within DynamoDB's 100 items per transaction and
/// verify's read within 100 keys per BatchGetItem.
pub const MAX_BUDGETS_PER_POLICY: usize = 4;
/// The shortest rolling window.
pub const ROLLING_SECONDS_MIN: u64 = 60;
/// The longest rolling window (31 days).
pub const ROLLING_SECONDS_MAX: u64 = 31 * 86_400;

/// The period a budget counts over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BudgetWindow {
    /// The calendar day in the policy's time zone.
    Day,
    /// The ISO week (Monday to Sunday) in the policy's time zone.
    Week,
    /// The calendar month in the policy's time zone.
    Month,
    /// Any `N` consecutive seconds.
    Rolling(u64),
}

impl BudgetWindow {
    /// The stored name: `day`, `week`, `month`, `rolling<N>` (the counter's sort-key prefix).
    pub fn id(self) -> String {
        match self {
            BudgetWindow::Day => "day".into(),
            BudgetWindow::Week => "week".into(),
            BudgetWindow::Month => "month".into(),
            BudgetWindow::Rolling(seconds) => format!("rolling{seconds}"),
        }
    }

    /// Reads a stored name.
    pub fn from_id(id: &str) -> Option<Self> {
        match id {
            "day" => Some(BudgetWindow::Day),
            "week" => Some(BudgetWindow::Week),
            "month" => Some(BudgetWindow::Month),
            other => {
                let digits = other.strip_prefix("rolling")?;
                // One spelling per window: no sign, no leading zero.
                if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let seconds: u64 = digits.parse().ok()?;
                (ROLLING_SECONDS_MIN..=ROLLING_SECONDS_MAX)
                    .contains(&seconds)
                    .then_some(BudgetWindow::Rolling(seconds))
            }
        }
    }

    /// How messages name it: "day", "rolling 3600-second".
    pub fn describe(self) -> String {
        match self {
            BudgetWindow::Rolling(seconds) => format!("rolling {seconds}-second"),
            calendar => calendar.id(),
        }
    }
}

impl Serialize for BudgetWindow {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.id())
    }
}

impl<'de> Deserialize<'de> for BudgetWindow {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = String::deserialize(deserializer)?;
        BudgetWindow::from_id(&id)
            .ok_or_else(|| serde::de::Error::custom("window is not a budget window"))
    }
}

/// One budget as written in a policy document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BudgetDocument {
    /// `"day"`, `"week"`, `"month"` or `{"rollingSeconds": N}`.
    pub window: WindowDocument,
    /// The most that may be spent in the window, a USD decimal such as "50.00".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_usd: Option<String>,
    /// The most payments in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

/// A budget's window as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WindowDocument {
    /// `"day"`, `"week"` or `"month"`.
    Calendar(String),
    /// `{"rollingSeconds": N}`.
    Rolling(RollingDocument),
}

/// A rolling window as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollingDocument {
    /// The window's length, 60 seconds to 31 days.
    pub rolling_seconds: u64,
}

/// A validated budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The window.
    pub window: BudgetWindow,
    /// The most micro-USD per window.
    pub amount_micros: Option<u64>,
    /// The most payments per window.
    pub count: Option<u64>,
}

/// Validates a policy's budgets. The problem names the entry by position and the rule broken;
/// it is the operator's message (verify names only the field).
pub fn compile_budgets(list: &[BudgetDocument]) -> Result<Vec<Budget>, String> {
    if list.len() > MAX_BUDGETS_PER_POLICY {
        return Err(format!(
            "at most {MAX_BUDGETS_PER_POLICY} budgets per policy document"
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, doc)| {
            let window = match &doc.window {
                WindowDocument::Calendar(name) => match name.as_str() {
                    "day" => BudgetWindow::Day,
                    "week" => BudgetWindow::Week,
                    "month" => BudgetWindow::Month,
                    _ => {
                        return Err(format!(
                            "budgets[{i}].window must be \"day\", \"week\", \"month\" or {{\"rollingSeconds\": N}}"
                        ))
                    }
                },
                WindowDocument::Rolling(r) => {
                    if !(ROLLING_SECONDS_MIN..=ROLLING_SECONDS_MAX).contains(&r.rolling_seconds) {
                        return Err(format!(
                            "budgets[{i}].window.rollingSeconds must be {ROLLING_SECONDS_MIN} to {ROLLING_SECONDS_MAX}"
                        ));
                    }
                    BudgetWindow::Rolling(r.rolling_seconds)
                }
            };
            let amount_micros = doc
                .amount_usd
                .as_deref()
                .map(|usd| {
                    parse_usd(usd)
                        .map_err(|e| format!("budgets[{i}].amountUsd {usd:?} is invalid: {e}"))
                })
                .transpose()?;
            if doc.count == Some(0) {
                return Err(format!("budgets[{i}].count must be at least 1"));
            }
            if amount_micros.is_none() && doc.count.is_none() {
                return Err(format!("budgets[{i}] needs amountUsd, count or both"));
            }
            Ok(Budget {
                window,
                amount_micros,
                count: doc.count,
            })
        })
        .collect()
}

/// Resolves a policy's `timezone` (an IANA name in the bundled time zone database; absent is
/// UTC).
pub fn compile_timezone(name: Option<&str>) -> Result<jiff::tz::TimeZone, String> {
    match name {
        None => Ok(jiff::tz::TimeZone::UTC),
        Some(name) => jiff::tz::db()
            .get(name)
            .map_err(|_| format!("timezone {name:?} is not an IANA time zone name")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(json: &str) -> Vec<BudgetDocument> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn every_window_and_limit_is_read() {
        let budgets = compile_budgets(&docs(
            r#"[{"window":"day","amountUsd":"50.00"},{"window":"week","count":3},
                {"window":"month","amountUsd":"0.5","count":9},{"window":{"rollingSeconds":3600},"count":1}]"#,
        ))
        .unwrap();
        assert_eq!(
            budgets,
            vec![
                Budget {
                    window: BudgetWindow::Day,
                    amount_micros: Some(50_000_000),
                    count: None
                },
                Budget {
                    window: BudgetWindow::Week,
                    amount_micros: None,
                    count: Some(3)
                },
                Budget {
                    window: BudgetWindow::Month,
                    amount_micros: Some(500_000),
                    count: Some(9)
                },
                Budget {
                    window: BudgetWindow::Rolling(3600),
                    amount_micros: None,
                    count: Some(1)
                },
            ]
        );
    }

    #[test]
    fn bad_budgets_are_refused_naming_the_entry_and_rule() {
        for (json, says) in [
            (r#"[{"window":"year","count":1}]"#, "budgets[0].window"),
            (
                r#"[{"window":{"rollingSeconds":59},"count":1}]"#,
                "rollingSeconds",
            ),
            (
                r#"[{"window":{"rollingSeconds":2678401},"count":1}]"#,
                "rollingSeconds",
            ),
            (r#"[{"window":"day"}]"#, "needs amountUsd, count or both"),
            (
                r#"[{"window":"day","count":0}]"#,
                "count must be at least 1",
            ),
            (r#"[{"window":"day","amountUsd":"1.0000001"}]"#, "amountUsd"),
            (r#"[{"window":"day","amountUsd":"-1"}]"#, "amountUsd"),
            (
                r#"[{"window":"day","count":1},{"window":"day","count":1},{"window":"day","count":1},{"window":"day","count":1},{"window":"day","count":1}]"#,
                "at most 4",
            ),
        ] {
            let err = compile_budgets(&docs(json)).unwrap_err();
            assert!(err.contains(says), "{json}: {err}");
        }
    }

    #[test]
    fn a_budget_document_refuses_unknown_fields_and_mistyped_values() {
        for json in [
            r#"[{"window":"day","count":1,"amount":"5"}]"#,
            r#"[{"window":{"rollingSeconds":60,"x":1},"count":1}]"#,
            r#"[{"window":"day","count":-1}]"#,
            r#"[{"window":"day","count":1.5}]"#,
            r#"[{"window":3600,"count":1}]"#,
            r#"[{"count":1}]"#,
        ] {
            assert!(
                serde_json::from_str::<Vec<BudgetDocument>>(json).is_err(),
                "{json}"
            );
        }
    }

    #[test]
    fn window_ids_round_trip_and_refuse_anything_else() {
        for w in [
            BudgetWindow::Day,
            BudgetWindow::Week,
            BudgetWindow::Month,
            BudgetWindow::Rolling(60),
            BudgetWindow::Rolling(ROLLING_SECONDS_MAX),
        ] {
            assert_eq!(BudgetWindow::from_id(&w.id()), Some(w));
        }
        for bad in [
            "",
            "Day",
            "rolling",
            "rolling59",
            "rolling+60",
            "rolling 60",
            "rolling0060",
            "rolling0060x",
            "rolling99999999999999999999",
        ] {
            assert_eq!(BudgetWindow::from_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn timezones_come_from_the_bundled_database() {
        assert!(compile_timezone(Some("Europe/Paris")).is_ok());
        assert!(compile_timezone(Some("America/Santiago")).is_ok());
        assert_eq!(compile_timezone(None).unwrap(), jiff::tz::TimeZone::UTC);
        for bad in ["Mars/Olympus", "", "../../etc/passwd", "europe/paris "] {
            assert!(compile_timezone(Some(bad)).is_err(), "{bad:?}");
        }
    }
}
