//! `orchestrator_container_run_duration_seconds` measures how long containers
//! ran, from start to exit — not the create call, which has
//! `orchestrator_container_create_duration_seconds`.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{memory_harness, spec, spec_with_image, wait_for, OWNER};
use container_runtime::MockBehaviour;
use orchestrator_shared_types::RestartPolicy;

/// How long the job's container runs before it exits by itself.
const JOB_RUN: Duration = Duration::from_millis(600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_histogram_measures_how_long_containers_ran() {
    let h = memory_harness(1).await;
    let m = Arc::clone(&h.orch.deps().metrics);

    // A service runs until stopped: its create call is timed, but it has not
    // ended, so it is not a run yet.
    h.apply(spec("svc", 1)).await;
    h.wait_running("svc", 1).await;
    let svc_seen_running = Instant::now();
    assert_eq!(m.container_create_duration.get_sample_count(), 1);
    assert_eq!(m.container_run_duration.get_sample_count(), 0);

    // A job exits by itself after JOB_RUN; it is never restarted.
    h.runtime.set_image_behaviour(
        "example/job:1",
        MockBehaviour::ExitAfter {
            after: JOB_RUN,
            exit_code: 0,
        },
    );
    let mut job = spec_with_image("job", 1, "example/job:1");
    job.restart_policy = RestartPolicy::Never;
    h.apply(job).await;
    wait_for(
        Duration::from_secs(20),
        "the job's run to be observed",
        || async { (m.container_run_duration.get_sample_count() == 1).then_some(()) },
    )
    .await;
    let job_secs = m.container_run_duration.get_sample_sum();
    let want = JOB_RUN.as_secs_f64();
    // Never shorter than the run (the mock's timer does not fire early);
    // the margin above is scheduling delay on a loaded machine.
    assert!(
        job_secs >= want - 0.002 && job_secs < want + 0.4,
        "the job ran {want}s but the histogram's sum is {job_secs}s"
    );
    assert_eq!(m.container_create_duration.get_sample_count(), 2);

    // The service, stopped when its workload is deleted, ran at least since
    // it was seen running.
    let svc_ran_at_least = svc_seen_running.elapsed().as_secs_f64();
    h.orch.delete_workload(&OWNER, "svc").await.unwrap();
    wait_for(
        Duration::from_secs(20),
        "the service's run to be observed",
        || async { (m.container_run_duration.get_sample_count() == 2).then_some(()) },
    )
    .await;
    let svc_secs = m.container_run_duration.get_sample_sum() - job_secs;
    assert!(
        svc_secs >= svc_ran_at_least,
        "the service ran at least {svc_ran_at_least}s but was observed as {svc_secs}s"
    );
    h.cancel.cancel();
}
