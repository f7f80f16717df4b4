//! Funding pools on DynamoDB Local: sessions draw their limit from a user's pool atomically,
//! concurrent opens never overdraw it, and closing gives back what the session did not spend
//! (holds still reserved give back when they void).

use std::sync::Arc;

use predebit_core::records::PoolRecord;
use serde_json::{json, Value};

use crate::common::NOW;
use crate::ledger_flow::{assert_invariant, pid, Flow};

const SESSION_EXPIRES_AT: u64 = 4_102_444_800;

fn open(id: &str, limit: &str, pool: &str) -> Value {
    json!({"version": "1", "op": "openSession", "paymentSessionId": id, "userId": "user-alice",
        "limit": limit, "expiresAt": SESSION_EXPIRES_AT, "pool": pool})
}

async fn pool(flow: &Flow, id: &str) -> PoolRecord {
    flow.ledger
        .ledger()
        .store()
        .read_pool("user-alice", id)
        .await
        .unwrap()
        .unwrap()
}

fn assert_pool_adds_up(p: &PoolRecord) {
    assert_eq!(
        p.available_micros + p.drawn_micros - p.returned_micros,
        p.funded_micros,
        "{p:?}"
    );
}

#[tokio::test]
async fn of_ten_concurrent_opens_on_a_pool_exactly_those_it_funds_open() {
    // GIVEN alice's $100 monthly pool
    let flow = Arc::new(Flow::new("pool-race").await);
    flow.ledger
        .ledger()
        .store()
        .create_pool("user-alice", "monthly", 100_000_000)
        .await
        .unwrap();
    // WHEN ten sessions of $30 open on it at once
    let barrier = Arc::new(tokio::sync::Barrier::new(10));
    let handles: Vec<_> = (0..10)
        .map(|i| {
            let (flow, barrier) = (flow.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                flow.op(open(&format!("ps-pool-{i}"), "30.00", "monthly"))
                    .await
            })
        })
        .collect();
    let mut opened = 0;
    for h in handles {
        let answer = h.await.unwrap();
        match answer["ok"].as_bool() {
            Some(true) => {
                assert_eq!(answer["session"]["poolId"], "monthly", "{answer}");
                opened += 1
            }
            _ => assert_eq!(answer["reasonCode"], "POOL_EXCEEDED", "{answer}"),
        }
    }
    // THEN exactly three opened and the pool holds the rest
    assert_eq!(opened, 3);
    let p = pool(&flow, "monthly").await;
    assert_eq!(
        (p.available_micros, p.drawn_micros),
        (10_000_000, 90_000_000)
    );
    assert_pool_adds_up(&p);
}

#[tokio::test]
async fn a_replayed_open_draws_once_and_an_unknown_or_foreign_pool_opens_nothing() {
    let flow = Flow::new("pool-replay").await;
    let store = flow.ledger.ledger().store();
    store
        .create_pool("user-alice", "p1", 50_000_000)
        .await
        .unwrap();
    store
        .create_pool("user-bob", "bobs", 50_000_000)
        .await
        .unwrap();
    let first = flow.op(open("ps-p1", "20.00", "p1")).await;
    assert_eq!(first["ok"], true, "{first}");
    let again = flow.op(open("ps-p1", "20.00", "p1")).await;
    assert_eq!(
        (again["ok"].clone(), again["replayed"].clone()),
        (json!(true), json!(true)),
        "{again}"
    );
    assert_eq!(pool(&flow, "p1").await.available_micros, 30_000_000);
    // Another pool for the same session id is other terms.
    let other = flow.op(open("ps-p1", "20.00", "p2")).await;
    assert_eq!(other["reasonCode"], "IDEMPOTENCY_CONFLICT", "{other}");
    // A pool alice does not have, and bob's (the key names alice, so it is not found).
    for name in ["nope", "bobs"] {
        let refused = flow.op(open(&format!("ps-{name}"), "1.00", name)).await;
        assert_eq!(refused["reasonCode"], "POOL_UNKNOWN", "{refused}");
    }
    let bobs = store.read_pool("user-bob", "bobs").await.unwrap().unwrap();
    assert_eq!(bobs.available_micros, 50_000_000);
}

#[tokio::test]
async fn closing_gives_back_the_unspent_part_and_holds_give_back_when_they_void() {
    // GIVEN a $30 session on a $100 pool: $5 settled, $2 PENDING, $3 SENT
    let flow = Flow::new("pool-close").await;
    flow.ledger
        .ledger()
        .store()
        .create_pool("user-alice", "monthly", 100_000_000)
        .await
        .unwrap();
    assert_eq!(
        flow.op(open("ps-pool", "30.00", "monthly")).await["ok"],
        true
    );
    flow.held(&pid(1), "5000000", "ps-pool").await;
    let committed = flow
        .op(json!({"version": "1", "op": "commit", "paymentSessionId": "ps-pool", "paymentId": pid(1),
            "settlement": {"success": true, "transaction": format!("0x{:064x}", 1), "network": "base"}}))
        .await;
    assert_eq!(committed["ok"], true, "{committed}");
    flow.held(&pid(2), "2000000", "ps-pool").await;
    flow.held(&pid(3), "3000000", "ps-pool").await;
    flow.mark_sent(&pid(3), "3000000", "ps-pool").await;

    // WHEN the session closes
    let closed = flow
        .op(json!({"version": "1", "op": "closeSession", "paymentSessionId": "ps-pool", "reason": "done"}))
        .await;
    assert_eq!(closed["ok"], true, "{closed}");
    // THEN the $20 never reserved goes back; the session's limit shrinks to what it holds
    let p = pool(&flow, "monthly").await;
    assert_eq!(
        (p.available_micros, p.returned_micros),
        (90_000_000, 20_000_000)
    );
    assert_pool_adds_up(&p);
    let s = flow.session("ps-pool").await;
    assert_eq!(
        (s.limit_micros, s.available_micros, s.returned_micros),
        (10_000_000, 0, 20_000_000)
    );
    assert_invariant(&s);
    // AND closing again gives nothing more
    let again = flow
        .op(json!({"version": "1", "op": "closeSession", "paymentSessionId": "ps-pool", "reason": "again"}))
        .await;
    assert_eq!(again["replayed"], true, "{again}");
    assert_eq!(pool(&flow, "monthly").await.available_micros, 90_000_000);

    // WHEN the PENDING hold is released (amount given: the path that reads nothing first)
    let released = flow
        .op(json!({"version": "1", "op": "release", "paymentSessionId": "ps-pool", "paymentId": pid(2),
            "reason": "NOT_SENT", "amountMicros": 2_000_000}))
        .await;
    assert_eq!(released["ok"], true, "{released}");
    // THEN its $2 goes back to the pool, not to the closed session
    assert_eq!(pool(&flow, "monthly").await.available_micros, 92_000_000);
    let s = flow.session("ps-pool").await;
    assert_eq!(
        (s.limit_micros, s.reserved_micros, s.available_micros),
        (8_000_000, 3_000_000, 0)
    );
    assert_invariant(&s);

    // WHEN the SENT hold's authorization lapses and expire voids it
    let expired = flow
        .op_at(json!({"version": "1", "op": "expire"}), NOW + 1000)
        .await;
    assert_eq!(expired["expired"]["sent"], 1, "{expired}");
    // THEN its $3 goes back too: the pool has everything but the $5 paid
    let p = pool(&flow, "monthly").await;
    assert_eq!(
        (p.available_micros, p.returned_micros),
        (95_000_000, 25_000_000)
    );
    assert_pool_adds_up(&p);
    let s = flow.session("ps-pool").await;
    assert_eq!(
        (s.limit_micros, s.reserved_micros, s.settled_micros),
        (5_000_000, 0, 5_000_000)
    );
    assert_invariant(&s);
}

#[tokio::test]
async fn a_late_settlement_of_a_hold_voided_into_the_pool_takes_it_back_from_the_pool() {
    // GIVEN a $10 pooled session with a $3 SENT hold, closed, then the hold expired into the pool
    let flow = Flow::new("pool-late").await;
    let store = flow.ledger.ledger().store();
    store
        .create_pool("user-alice", "m", 50_000_000)
        .await
        .unwrap();
    assert_eq!(flow.op(open("ps-late", "10.00", "m")).await["ok"], true);
    flow.held(&pid(7), "3000000", "ps-late").await;
    flow.mark_sent(&pid(7), "3000000", "ps-late").await;
    let closed = flow
        .op(json!({"version": "1", "op": "closeSession", "paymentSessionId": "ps-late", "reason": "done"}))
        .await;
    assert_eq!(closed["ok"], true, "{closed}");
    let expired = flow
        .op_at(json!({"version": "1", "op": "expire"}), NOW + 1000)
        .await;
    assert_eq!(expired["expired"]["sent"], 1, "{expired}");
    assert_eq!(pool(&flow, "m").await.available_micros, 50_000_000);
    // WHEN the merchant's settlement arrives after all
    let late = flow
        .op_at(json!({"version": "1", "op": "commit", "paymentSessionId": "ps-late", "paymentId": pid(7),
            "settlement": {"success": true, "transaction": format!("0x{:064x}", 7), "network": "base"}}), NOW + 1100)
        .await;
    assert_eq!(
        (late["ok"].clone(), late["hold"]["late"].clone()),
        (json!(true), json!(true)),
        "{late}"
    );
    // THEN the pool gives the $3 back (its sessions spent $3 of its $50) and no overdraft
    let p = pool(&flow, "m").await;
    assert_eq!(
        (p.available_micros, p.returned_micros),
        (47_000_000, 7_000_000)
    );
    assert_pool_adds_up(&p);
    let s = flow.session("ps-late").await;
    assert_eq!(
        (
            s.limit_micros,
            s.settled_micros,
            s.overdraft_micros,
            s.returned_micros
        ),
        (3_000_000, 3_000_000, 0, 7_000_000)
    );
    assert_invariant(&s);
}

#[tokio::test]
async fn a_lenient_replay_of_a_pooled_open_must_name_the_same_pool() {
    let flow = Flow::new("pool-lenient").await;
    let store = flow.ledger.ledger().store();
    store
        .create_pool("user-alice", "a", 50_000_000)
        .await
        .unwrap();
    store
        .create_pool("user-alice", "b", 50_000_000)
        .await
        .unwrap();
    let event = |pool: &str| {
        json!({"version": "1", "op": "openSession", "paymentSessionId": "ps-lenient",
            "userId": "user-alice", "limit": "5.00", "expiryMinutes": 60, "pool": pool})
    };
    assert_eq!(flow.op(event("a")).await["ok"], true);
    // expiryMinutes computes a new expiry on a replay: same user, limit and pool is the same open
    let same = flow.op_at(event("a"), NOW + 30).await;
    assert_eq!(same["replayed"], true, "{same}");
    let other = flow.op_at(event("b"), NOW + 30).await;
    assert_eq!(other["reasonCode"], "IDEMPOTENCY_CONFLICT", "{other}");
    assert_eq!(pool(&flow, "b").await.available_micros, 50_000_000);
}

#[tokio::test]
async fn a_pooled_session_that_expires_unclosed_gives_back_at_the_next_expire() {
    // GIVEN a $10 session on a $50 pool, expiring at NOW + 100, with a $2 hold left PENDING
    let flow = Flow::new("pool-expiry").await;
    flow.ledger
        .ledger()
        .store()
        .create_pool("user-alice", "m", 50_000_000)
        .await
        .unwrap();
    let opened = flow
        .op(
            json!({"version": "1", "op": "openSession", "paymentSessionId": "ps-short",
            "userId": "user-alice", "limit": "10.00", "expiresAt": NOW + 100, "pool": "m"}),
        )
        .await;
    assert_eq!(opened["ok"], true, "{opened}");
    flow.held(&pid(9), "2000000", "ps-short").await;
    // WHEN expire runs before the session's expiry THEN it is left open
    let early = flow
        .op_at(json!({"version": "1", "op": "expire"}), NOW + 50)
        .await;
    assert_eq!(early["closedPooledSessions"], 0, "{early}");
    // WHEN expire runs after it
    let expired = flow
        .op_at(json!({"version": "1", "op": "expire"}), NOW + 1000)
        .await;
    // THEN the hold is voided and the session closed: the whole $10 is back in the pool
    assert_eq!(
        (
            expired["expired"]["pending"].clone(),
            expired["closedPooledSessions"].clone()
        ),
        (json!(1), json!(1)),
        "{expired}"
    );
    let p = pool(&flow, "m").await;
    assert_eq!(
        (p.available_micros, p.returned_micros),
        (50_000_000, 10_000_000)
    );
    assert_pool_adds_up(&p);
    let s = flow.session("ps-short").await;
    assert_eq!(
        (s.status, s.limit_micros, s.available_micros),
        (predebit_core::records::SessionStatus::Closed, 0, 0)
    );
    assert_invariant(&s);
    // AND the next run finds nothing more to do
    let again = flow
        .op_at(json!({"version": "1", "op": "expire"}), NOW + 2000)
        .await;
    assert_eq!(
        (again["due"].clone(), again["closedPooledSessions"].clone()),
        (json!(0), json!(0)),
        "{again}"
    );
}

#[tokio::test]
async fn the_cli_creates_and_shows_a_pool() {
    // The CLI's own store calls, as `predebit pool create` and `pool show` make them.
    let flow = Flow::new("pool-cli").await;
    let store = flow.ledger.ledger().store();
    let created = store
        .create_pool("user-alice", "cli", 7_500_000)
        .await
        .unwrap();
    assert_eq!(created.available_micros, 7_500_000);
    // The same create again is a replay; another amount is a conflict.
    assert_eq!(
        store
            .create_pool("user-alice", "cli", 7_500_000)
            .await
            .unwrap(),
        created
    );
    assert!(store
        .create_pool("user-alice", "cli", 1_000_000)
        .await
        .is_err());
    assert!(store.create_pool("user-alice", "bad#id", 1).await.is_err());
}
