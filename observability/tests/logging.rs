//! `init_tracing` installs once and reports, rather than panics on, a second
//! call. Its own test binary, because the subscriber is process-global.

use observability::{init_tracing, Error, LogFormat};

#[test]
fn second_init_is_an_error_not_a_panic() {
    // RUST_LOG may be set by whoever runs the tests; an invalid one is an
    // error of its own, which this test does not exercise.
    if std::env::var("RUST_LOG")
        .is_ok_and(|v| observability::logging::filter_from(Some(&v)).is_err())
    {
        println!("SKIPPED second_init_is_an_error_not_a_panic: RUST_LOG does not parse");
        return;
    }
    init_tracing(LogFormat::Json).expect("first init");
    tracing::info!(component = "test", "tracing initialised");
    assert!(matches!(
        init_tracing(LogFormat::Text),
        Err(Error::TracingInit(_))
    ));
}
