//! Unit tests of process planning and user resolution.

use super::*;
use crate::youki::image::test_support::{s, TestDir};
use crate::youki::image::ImageConfig;

fn image_with(rootfs: &Path, config: ImageConfig) -> Image {
    Image {
        reference: "test/img:1".into(),
        manifest_digest: format!("sha256:{}", "1".repeat(64)),
        config_digest: format!("sha256:{}", "2".repeat(64)),
        rootfs: rootfs.to_path_buf(),
        config,
        size_bytes: 0,
    }
}

fn rootfs_with_users() -> TestDir {
    let dir = TestDir::new("users");
    fs::create_dir_all(dir.path().join("etc")).unwrap();
    fs::write(
        dir.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n# comment\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("etc/group"),
        "root:x:0:\napp:x:1000:\nstaff:x:50:app,other\nwheel:x:10:app\n",
    )
    .unwrap();
    dir
}

#[test]
fn command_and_args_follow_docker_and_kubernetes_rules() {
    let dir = TestDir::new("argv");
    let img = image_with(
        dir.path(),
        ImageConfig {
            entrypoint: s(&["/entry"]),
            cmd: s(&["--default"]),
            ..ImageConfig::default()
        },
    );
    let env = BTreeMap::new();
    let plan = |c: &[&str], a: &[&str]| plan_process(&img, &s(c), &s(a), &env).map(|p| p.args);
    assert_eq!(plan(&[], &[]).unwrap(), s(&["/entry", "--default"]));
    assert_eq!(plan(&[], &["x"]).unwrap(), s(&["/entry", "x"]));
    assert_eq!(plan(&["/bin/sh"], &[]).unwrap(), s(&["/bin/sh"]));
    assert_eq!(
        plan(&["/bin/sh"], &["-c", "true"]).unwrap(),
        s(&["/bin/sh", "-c", "true"])
    );

    let bare = image_with(dir.path(), ImageConfig::default());
    assert!(plan_process(&bare, &[], &[], &env).is_err());
    let cmd_only = image_with(
        dir.path(),
        ImageConfig {
            cmd: s(&["sh"]),
            ..ImageConfig::default()
        },
    );
    assert_eq!(
        plan_process(&cmd_only, &[], &[], &env).unwrap().args,
        s(&["sh"])
    );
    assert_eq!(
        plan_process(&cmd_only, &[], &s(&["ls"]), &env)
            .unwrap()
            .args,
        s(&["ls"])
    );
}

#[test]
fn container_env_overrides_image_env_and_path_has_a_default() {
    let dir = TestDir::new("env");
    let img = image_with(
        dir.path(),
        ImageConfig {
            cmd: s(&["sh"]),
            env: s(&["A=image", "B=image", "EMPTY="]),
            working_dir: Some("srv".into()),
            ..ImageConfig::default()
        },
    );
    let env = BTreeMap::from([
        ("B".to_owned(), "container".to_owned()),
        ("C".to_owned(), "c=d".to_owned()),
    ]);
    let plan = plan_process(&img, &[], &[], &env).unwrap();
    assert_eq!(
        plan.env,
        s(&[
            "A=image",
            "B=container",
            "EMPTY=",
            "C=c=d",
            &format!("PATH={DEFAULT_PATH}")
        ])
    );
    assert_eq!(plan.cwd, "/srv");

    let with_path = image_with(
        dir.path(),
        ImageConfig {
            cmd: s(&["sh"]),
            env: s(&["PATH=/bin"]),
            ..ImageConfig::default()
        },
    );
    let plan = plan_process(&with_path, &[], &[], &BTreeMap::new()).unwrap();
    assert_eq!(plan.env, s(&["PATH=/bin"]));
    assert_eq!(plan.cwd, "/");
    let env = BTreeMap::from([("PATH".to_owned(), "/opt".to_owned())]);
    assert_eq!(
        plan_process(&with_path, &[], &[], &env).unwrap().env,
        s(&["PATH=/opt"])
    );
}

#[test]
fn users_resolve_through_passwd_and_group() {
    let dir = rootfs_with_users();
    let ids = |user: Option<&str>| {
        let img = image_with(
            dir.path(),
            ImageConfig {
                cmd: s(&["sh"]),
                user: user.map(str::to_owned),
                ..ImageConfig::default()
            },
        );
        plan_process(&img, &[], &[], &BTreeMap::new()).map(|p| (p.uid, p.gid, p.additional_gids))
    };
    assert_eq!(ids(None).unwrap(), (0, 0, vec![]));
    assert_eq!(ids(Some("app")).unwrap(), (1000, 1000, vec![10, 50]));
    assert_eq!(ids(Some("1000")).unwrap(), (1000, 1000, vec![10, 50]));
    assert_eq!(ids(Some("app:staff")).unwrap(), (1000, 50, vec![10]));
    assert_eq!(ids(Some("app:7")).unwrap(), (1000, 7, vec![10, 50]));
    assert_eq!(ids(Some("1234")).unwrap(), (1234, 0, vec![]));
    assert_eq!(ids(Some("1234:99")).unwrap(), (1234, 99, vec![]));
    assert!(ids(Some("nobody")).unwrap_err().contains("nobody"));
    assert!(ids(Some("app:nogroup")).unwrap_err().contains("nogroup"));
}

#[test]
fn numeric_users_need_no_passwd_and_names_do() {
    let dir = TestDir::new("nopasswd");
    let ids = |user: &str| {
        let img = image_with(
            dir.path(),
            ImageConfig {
                cmd: s(&["sh"]),
                user: Some(user.into()),
                ..ImageConfig::default()
            },
        );
        plan_process(&img, &[], &[], &BTreeMap::new()).map(|p| (p.uid, p.gid))
    };
    assert_eq!(ids("1000:1000").unwrap(), (1000, 1000));
    assert_eq!(ids("65534").unwrap(), (65534, 0));
    assert!(ids("app").is_err());
    assert!(ids("0:wheel").is_err());
}

#[test]
fn passwd_symlinks_resolve_inside_the_rootfs() {
    let dir = TestDir::new("passwd-link");
    fs::create_dir_all(dir.path().join("etc")).unwrap();
    fs::create_dir_all(dir.path().join("real")).unwrap();
    fs::write(dir.path().join("real/passwd"), "svc:x:42:43::/:/bin/sh\n").unwrap();
    std::os::unix::fs::symlink("/real/passwd", dir.path().join("etc/passwd")).unwrap();
    assert_eq!(resolve_user(dir.path(), "svc").unwrap(), (42, 43, vec![]));
}
