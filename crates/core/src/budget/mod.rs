//! Budgets that outlast a session: at most an amount and/or a number of payments per calendar
//! window (day, week, month in the policy's IANA time zone) or per rolling window of N seconds.
//!
//! Counted before signing, atomically: each budget is one or more counter items in the ledger
//! table (`pk=BUDGET#<scope>#<subject>`, `sk=<window>#<window start>`) that the reserve
//! transaction updates under conditions, so concurrent reserves can never pass a limit together.
//! A void returns the amount; a commit keeps it. verify reads the counters it can predict in its
//! one BatchGetItem and answers the same NO early.
//!
//! The flow: [`spec`] reads and validates a policy's `budgets` and `timezone`, [`window`] says
//! which counters a moment falls in, [`counter`] turns the budgets a decision carries into the
//! conditional charges of one payment and judges counters read by verify.

mod counter;
mod spec;
mod window;

pub use counter::{
    charges, counter_keys, BudgetClaim, BudgetRefusal, BudgetScope, CounterCharge, CounterKey,
    CounterRecord, BUDGET_PK_PREFIX, COUNTER_KEEP_SECONDS,
};
pub use spec::{
    compile_budgets, compile_timezone, Budget, BudgetDocument, BudgetWindow, RollingDocument,
    WindowDocument, MAX_BUDGETS_PER_POLICY, ROLLING_SECONDS_MAX, ROLLING_SECONDS_MIN,
};
pub use window::{slots, Slot, ROLLING_BUCKETS};
