//! Unit tests of the image store's public types.

use super::*;

#[test]
fn pull_policy_parses_case_insensitively() {
    assert_eq!("Always".parse::<PullPolicy>().unwrap(), PullPolicy::Always);
    assert_eq!(
        "ifnotpresent".parse::<PullPolicy>().unwrap(),
        PullPolicy::IfNotPresent
    );
    assert_eq!(" NEVER ".parse::<PullPolicy>().unwrap(), PullPolicy::Never);
    assert_eq!(PullPolicy::default(), PullPolicy::IfNotPresent);
    for p in [
        PullPolicy::Always,
        PullPolicy::IfNotPresent,
        PullPolicy::Never,
    ] {
        assert_eq!(p.to_string().parse::<PullPolicy>().unwrap(), p);
    }
    let err = "sometimes".parse::<PullPolicy>().unwrap_err().to_string();
    assert!(err.contains("sometimes"), "{err}");
    for valid in ["Always", "IfNotPresent", "Never"] {
        assert!(err.contains(valid), "{err}");
    }
}

#[test]
fn credentials_are_not_printed() {
    let creds = RegistryCredentials {
        username: "me".into(),
        password: "hunter2".into(),
    };
    assert!(!format!("{creds:?}").contains("hunter2"));
}
