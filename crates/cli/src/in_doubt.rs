//! `predebit holds in-doubt`: the operator's queue of SENT holds whose settlement is unknown.

use predebit_core::hold::Hold;
use predebit_core::money::format_usd;
use predebit_store::DynamoStore;
use predebit_verify::now_epoch_seconds;
use serde_json::{json, Value};

use crate::commands::{print, CliError};
use crate::Cli;

pub(crate) async fn in_doubt(
    cli: &Cli,
    store: DynamoStore,
    older_than: &str,
) -> Result<(), CliError> {
    let age = parse_age(older_than).ok_or_else(|| {
        CliError::Input("--older-than: seconds, or a number with s, m, h or d".into())
    })?;
    let now = now_epoch_seconds();
    let holds = store
        .sent_holds(now.saturating_sub(age))
        .await
        .map_err(|e| CliError::Failed(format!("{e}")))?;
    let rows: Vec<Value> = holds.iter().map(|h| row(h, now)).collect();
    let mut text = format!(
        "{} SENT hold(s) sent more than {older_than} ago",
        holds.len()
    );
    for h in &holds {
        text.push_str(&format!(
            "\n  {}  {}  {:>10}  sent {}s ago  settles until {}  failures {}{}{}",
            h.payment_session_id,
            h.payment_id,
            format_usd(h.amount_micros),
            now.saturating_sub(h.sent_at.unwrap_or(now)),
            h.signed.as_ref().map_or(0, |s| s.valid_before),
            h.settlement_failures,
            h.last_settlement_error
                .as_ref()
                .map_or(String::new(), |e| format!("  last error {e}")),
            h.pending_transaction
                .as_ref()
                .map_or(String::new(), |t| format!("  pending {t}")),
        ));
    }
    print(cli, json!({"olderThanSeconds": age, "holds": rows}), text);
    Ok(())
}

fn row(h: &Hold, now: u64) -> Value {
    json!({
        "paymentSessionId": h.payment_session_id,
        "paymentId": h.payment_id,
        "amount": format_usd(h.amount_micros),
        "amountMicros": h.amount_micros,
        "network": h.network,
        "payTo": h.pay_to,
        "sentAt": h.sent_at,
        "sentSecondsAgo": now.saturating_sub(h.sent_at.unwrap_or(now)),
        "validBefore": h.signed.as_ref().map(|s| s.valid_before),
        "expiresAt": h.hold_expires_at,
        "settlementFailures": h.settlement_failures,
        "lastSettlementError": h.last_settlement_error,
        "pendingTransaction": h.pending_transaction,
    })
}

/// `600`, `90s`, `10m`, `2h`, `1d` in seconds.
pub(crate) fn parse_age(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    n.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    use super::parse_age;

    #[test]
    fn ages_read_seconds_and_units_and_refuse_anything_else() {
        for (text, want) in [
            ("600", Some(600)),
            ("90s", Some(90)),
            ("10m", Some(600)),
            ("2h", Some(7200)),
            ("1d", Some(86_400)),
        ] {
            assert_eq!(parse_age(text), want, "{text}");
        }
        for bad in [
            "",
            "m",
            "-5m",
            "10x",
            "1.5h",
            "10 m",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_age(bad), None, "{bad}");
        }
    }
}
