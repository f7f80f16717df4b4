//! `predebit pool`: a user's funding pools, and sessions opened on one.

use predebit_core::money::{format_usd, parse_usd};
use predebit_core::records::PoolRecord;
use predebit_store::DynamoStore;
use serde_json::{json, Value};

use crate::commands::{print, CliError};
use crate::{Cli, PoolAction};

pub(crate) async fn pool(
    cli: &Cli,
    store: DynamoStore,
    action: &PoolAction,
) -> Result<(), CliError> {
    match action {
        PoolAction::Create {
            user_id,
            pool_id,
            amount,
        } => {
            let micros =
                parse_usd(amount).map_err(|e| CliError::Input(format!("--amount: {e}")))?;
            let pool = store.create_pool(user_id, pool_id, micros).await?;
            print(
                cli,
                view(&pool),
                format!("pool {pool_id} of {user_id}: {}", text(&pool)),
            );
        }
        PoolAction::Show { user_id, pool_id } => {
            let pool = store
                .read_pool(user_id, pool_id)
                .await
                .map_err(|e| CliError::Failed(format!("{e}")))?
                .ok_or_else(|| {
                    CliError::Failed(format!("pool {pool_id} of {user_id} not found"))
                })?;
            print(
                cli,
                view(&pool),
                format!("pool {pool_id} of {user_id}: {}", text(&pool)),
            );
        }
    }
    Ok(())
}

/// openSession on a pool through the admin ledger (one transaction draws the limit).
pub(crate) async fn open_on_pool(
    cli: &Cli,
    store: DynamoStore,
    mut event: Value,
) -> Result<(), CliError> {
    if let Some(obj) = event.as_object_mut() {
        obj.retain(|_, v| !v.is_null());
    }
    let response = crate::commands::admin_op(store, &event).await;
    if response["ok"] != true {
        return Err(CliError::Failed(format!(
            "the session was not opened: {} {}",
            response["reasonCode"].as_str().unwrap_or("?"),
            response["message"].as_str().unwrap_or("")
        )));
    }
    let text = format!(
        "session {} opened on pool {} (limit {})",
        response["session"]["paymentSessionId"]
            .as_str()
            .unwrap_or("?"),
        response["session"]["poolId"].as_str().unwrap_or("?"),
        response["session"]["limit"].as_str().unwrap_or("?"),
    );
    print(cli, response, text);
    Ok(())
}

fn view(p: &PoolRecord) -> Value {
    json!({"userId": p.user_id, "poolId": p.pool_id,
        "funded": format_usd(p.funded_micros), "available": format_usd(p.available_micros),
        "drawn": format_usd(p.drawn_micros), "returned": format_usd(p.returned_micros),
        "fundedMicros": p.funded_micros, "availableMicros": p.available_micros,
        "drawnMicros": p.drawn_micros, "returnedMicros": p.returned_micros})
}

fn text(p: &PoolRecord) -> String {
    format!(
        "funded {}  available {}  drawn {}  returned {}",
        format_usd(p.funded_micros),
        format_usd(p.available_micros),
        format_usd(p.drawn_micros),
        format_usd(p.returned_micros)
    )
}
