//! One deployed function: its persisted record, how its replicas run, its replica slots, and
//! the routing entry the gateway reads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ironfaas_spec::names::FunctionRef;
use ironfaas_spec::provider::FunctionRoute;
use ironfaas_spec::wire::FunctionStatus;

use super::logs::LogStore;
use super::record::FunctionRecord;
use super::runspec::RunSpec;
use super::slot::{Outcome, Slot, SlotContext};

/// Bytes of replica output kept per function, in each of two segments.
const LOG_SEGMENT_BYTES: u64 = 1 << 20;

/// A deployed function.
pub(crate) struct Function {
    /// Its name and namespace.
    pub key: FunctionRef,
    /// What the gateway routes with.
    pub route: Arc<FunctionRoute>,
    /// Its replicas' last output.
    pub logs: Arc<LogStore>,
    /// Held by every change (deploy, update, scale, remove), so they happen one at a time.
    pub changes: tokio::sync::Mutex<()>,
    record: Mutex<FunctionRecord>,
    run: Mutex<Arc<RunSpec>>,
    slots: Mutex<Vec<Arc<Slot>>>,
    /// A replica whose sandbox is built and whose program waits to start: kept while the
    /// function is at zero, so the next call does not wait for a sandbox to be made.
    spare: Mutex<Option<Arc<Slot>>>,
    next_slot: AtomicU64,
}

impl Function {
    /// A function with no replicas yet.
    pub fn new(
        key: FunctionRef,
        record: FunctionRecord,
        run: RunSpec,
        log_dir: &std::path::Path,
    ) -> Arc<Function> {
        let function = Arc::new(Function {
            route: Arc::new(FunctionRoute::new(key.clone())),
            logs: Arc::new(LogStore::open(
                log_dir.to_path_buf(),
                key.clone(),
                LOG_SEGMENT_BYTES,
            )),
            key,
            changes: tokio::sync::Mutex::new(()),
            record: Mutex::new(record),
            run: Mutex::new(Arc::new(run)),
            slots: Mutex::new(Vec::new()),
            spare: Mutex::new(None),
            next_slot: AtomicU64::new(1),
        });
        function.protect(&function.record().deployment);
        function
    }

    /// The persisted record now.
    pub fn record(&self) -> FunctionRecord {
        self.record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Changes the record in memory (the caller persists it).
    pub fn update_record(&self, f: impl FnOnce(&mut FunctionRecord)) -> FunctionRecord {
        let mut record = self.record.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut record);
        record.clone()
    }

    /// How replicas of the current version run.
    pub fn run(&self) -> Arc<RunSpec> {
        Arc::clone(&self.run.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Marks the route protected when the deployment asks for authentication.
    pub fn protect(&self, d: &ironfaas_spec::wire::FunctionDeployment) {
        let wanted = d
            .spec
            .annotation(ironfaas_spec::provider::AUTH_ANNOTATION)
            .map(str::trim);
        self.route
            .set_protected(matches!(wanted, Some("basic" | "true")));
    }

    /// Makes `run` the current version.
    pub fn set_run(&self, run: Arc<RunSpec>) {
        *self.run.lock().unwrap_or_else(|p| p.into_inner()) = run;
    }

    /// Offers the gateway exactly the ready replicas. The slot list stays locked while the
    /// route is written, so concurrent calls cannot store a stale set.
    pub fn publish(&self) {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        self.route
            .set_backends(slots.iter().filter_map(|s| s.backend()).collect());
    }

    /// The slots now.
    pub fn slots(&self) -> Vec<Arc<Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Starts `count` new replicas of `run`; the spare, when it runs `run`, is the first.
    pub fn add_slots(
        self: &Arc<Self>,
        count: u64,
        run: &Arc<RunSpec>,
        ctx: &SlotContext,
    ) -> Vec<Arc<Slot>> {
        let mut spare = None;
        if count > 0
            && let Some(s) = self.take_spare()
        {
            if Arc::ptr_eq(&s.run, run) {
                s.release();
                spare = Some(s);
            } else {
                tokio::spawn(async move { s.stop().await });
            }
        }
        let fresh = count - u64::from(spare.is_some());
        let added: Vec<Arc<Slot>> = spare
            .into_iter()
            .chain((0..fresh).map(|_| {
                let n = self.next_slot.fetch_add(1, Ordering::Relaxed);
                Slot::start(
                    format!("{}-{n}", self.key.name),
                    Arc::clone(run),
                    ctx.clone(),
                )
            }))
            .collect();
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(added.iter().cloned());
        added
    }

    /// Builds a spare replica of `run` unless there is one.
    pub fn keep_spare(self: &Arc<Self>, run: &Arc<RunSpec>, ctx: &SlotContext) {
        let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        if spare.is_none() {
            let n = self.next_slot.fetch_add(1, Ordering::Relaxed);
            *spare = Some(Slot::start_spare(
                format!("{}-{n}", self.key.name),
                Arc::clone(run),
                ctx.clone(),
            ));
        }
    }

    /// Takes every replica and the spare away (to stop them).
    pub fn take_all(&self) -> Vec<Arc<Slot>> {
        let mut slots = self.take_slots(|_| true);
        slots.extend(self.take_spare());
        slots
    }

    /// Takes the spare replica away (to start or to stop it).
    pub fn take_spare(&self) -> Option<Arc<Slot>> {
        self.spare.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Takes the slots `pick` chooses out of routing and returns them (still running).
    pub fn take_slots(&self, pick: impl Fn(&Arc<Slot>) -> bool) -> Vec<Arc<Slot>> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let (taken, kept): (Vec<_>, Vec<_>) = slots.drain(..).partition(|s| pick(s));
        *slots = kept;
        self.route
            .set_backends(slots.iter().filter_map(|s| s.backend()).collect());
        taken
    }

    /// The API view of the function.
    pub fn status(&self) -> FunctionStatus {
        let record = self.record();
        let mut status = FunctionStatus {
            name: record.deployment.service.clone(),
            spec: record.deployment.spec.clone(),
            ..FunctionStatus::default()
        };
        status.spec.namespace = self.key.namespace.clone();
        let slots = self.slots();
        status.replicas = record.replicas;
        status.available_replicas = slots.iter().filter(|s| s.is_ready()).count() as u64;
        status.created_at = record.created_at;
        status.digest = record.digest;
        status.instances = slots.iter().map(|s| s.instance()).collect();
        status
    }
}

/// Stops every slot in `slots`, all at once, and returns when all are gone.
pub(crate) async fn stop_all(slots: Vec<Arc<Slot>>) {
    futures_util::future::join_all(slots.iter().map(|s| s.stop())).await;
}

/// Waits for the first start of each slot; the error explains the first failure.
pub(crate) async fn await_ready(slots: &[Arc<Slot>], limit: Duration) -> Result<(), String> {
    let outcomes =
        futures_util::future::join_all(slots.iter().map(|s| s.first_outcome(limit))).await;
    let failures: Vec<String> = outcomes
        .into_iter()
        .filter_map(|o| match o {
            Outcome::Failed(why) => Some(why),
            _ => None,
        })
        .collect();
    match failures.first() {
        None => Ok(()),
        Some(first) if failures.len() == 1 => Err(first.clone()),
        Some(first) => Err(format!(
            "{first}\n({} more replicas failed the same way or similar)",
            failures.len() - 1
        )),
    }
}
