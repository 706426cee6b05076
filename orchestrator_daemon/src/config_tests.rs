//! Tests of the daemon configuration: precedence, defaults, validation.
use super::*;

fn flags() -> Settings {
    Settings {
        runtime: Some(RuntimeKind::Mock),
        data_dir: Some("/tmp/x".into()),
        ..Settings::default()
    }
}

#[test]
fn flags_win_over_the_file() {
    let file: Settings =
        toml::from_str("store = \"memory\"\nnode_cpu = \"2\"\nlabels = {zone = \"a\"}").unwrap();
    let mut f = flags();
    f.node_cpu = Some("3".into());
    f.labels = vec!["disk=ssd".into()];
    let c = DaemonConfig::resolve(f, file).unwrap();
    assert_eq!(c.store, StoreKind::Memory);
    assert_eq!(c.node_capacity.cpu_millis, 3000);
    assert_eq!(c.labels.len(), 2);
}

#[test]
fn the_default_runtime_is_youki() {
    let f = Settings {
        data_dir: Some("/tmp/x".into()),
        ..Settings::default()
    };
    let c = DaemonConfig::resolve(f, Settings::default()).unwrap();
    assert_eq!(c.runtime, RuntimeKind::Youki);
    assert_eq!(c.youki.pull_policy, PullPolicy::IfNotPresent);
}

#[test]
fn registry_settings_are_validated_and_merged() {
    let file: Settings = toml::from_str(
        "insecure_registries = [\"10.0.0.1:5000\"]\nimage_pull_policy = \"Always\"\n\
         [registry_auth.\"ghcr.io\"]\nusername = \"u\"\npassword = \"p\"",
    )
    .unwrap();
    let mut f = flags();
    f.insecure_registries = vec!["127.0.0.1:5000".into()];
    f.image_cache_size = Some("1Gi".into());
    let c = DaemonConfig::resolve(f, file).unwrap();
    let s = &c.youki;
    assert_eq!(s.insecure_registries, ["10.0.0.1:5000", "127.0.0.1:5000"]);
    assert_eq!(s.pull_policy, PullPolicy::Always);
    assert_eq!(s.image_cache_bytes, 1 << 30);
    assert_eq!(s.credentials["ghcr.io"].username, "u");
    for (registry, policy) in [
        ("http://x:5000", "Always"),
        ("x", "Always"),
        ("x:1", "Sometimes"),
    ] {
        let mut f = flags();
        f.insecure_registries = vec![registry.into()];
        f.image_pull_policy = Some(policy.into());
        assert!(
            DaemonConfig::resolve(f, Settings::default()).is_err(),
            "{registry} {policy}"
        );
    }
}

#[test]
fn image_limits_and_the_store_quota_are_read_and_validated() {
    let file: Settings = toml::from_str(
        "image_store_quota = \"20Gi\"\n[image_limits]\nmax_manifest_size = \"1Mi\"\n\
         max_layer_entries = 5000\nmax_image_size = \"2Gi\"",
    )
    .unwrap();
    let c = DaemonConfig::resolve(flags(), file).unwrap();
    let l = &c.youki.image_limits;
    assert_eq!(l.max_manifest_bytes, 1 << 20);
    assert_eq!(l.max_layer_entries, 5000);
    assert_eq!(l.max_image_bytes, 2 << 30);
    assert_eq!(l.store_quota_bytes, 20 << 30);
    let d = container_runtime::youki::ImageLimits::default();
    assert_eq!(l.max_config_bytes, d.max_config_bytes);
    assert_eq!(l.max_layers, d.max_layers);

    let c = DaemonConfig::resolve(flags(), Settings::default()).unwrap();
    assert_eq!(c.youki.image_limits, d);

    for (toml_text, flag_quota, named) in [
        (
            "[image_limits]\nmax_layer_size = \"4Go\"",
            None,
            "max_layer_size",
        ),
        ("[image_limits]\nmax_layers = 0", None, "max_layers"),
        (
            "[image_limits]\nmax_layer_count = 3",
            None,
            "max_layer_count",
        ),
        ("", Some("1Gi"), "image_store_quota"),
    ] {
        let file: Result<Settings> =
            toml::from_str(toml_text).map_err(|e| Error::Config(e.to_string()));
        let mut f = flags();
        f.image_store_quota = flag_quota.map(Into::into);
        let err = file
            .and_then(|file| DaemonConfig::resolve(f, file))
            .unwrap_err()
            .to_string();
        assert!(err.contains(named), "{toml_text}: {err}");
    }
}

#[test]
fn owner_quotas_are_read_defaulted_and_validated() {
    let c = DaemonConfig::resolve(flags(), Settings::default()).unwrap();
    assert_eq!(c.reconciler.quotas, OwnerQuotas::default());
    let file: Settings = toml::from_str(
        "quota_workloads = 5\nquota_cpu = \"1500m\"\nquota_memory = \"1Gi\"\n\
             quota_volumes = \"10Gi\"",
    )
    .unwrap();
    let mut f = flags();
    f.quota_replicas = Some(7);
    f.quota_workloads = Some(6);
    let q = DaemonConfig::resolve(f, file).unwrap().reconciler.quotas;
    assert_eq!(
        q,
        OwnerQuotas {
            max_workloads: 6,
            max_replicas: 7,
            max_cpu_millis: 1500,
            max_memory_bytes: 1 << 30,
            max_volume_bytes: 10 << 30,
        }
    );
    for (f, named) in [
        (
            Settings {
                quota_cpu: Some("lots".into()),
                ..flags()
            },
            "quota_cpu",
        ),
        (
            Settings {
                quota_memory: Some("1Go".into()),
                ..flags()
            },
            "quota_memory",
        ),
        (
            Settings {
                quota_volumes: Some("much".into()),
                ..flags()
            },
            "quota_volumes",
        ),
        (
            Settings {
                quota_replicas: Some(0),
                ..flags()
            },
            "quota_replicas",
        ),
    ] {
        let err = DaemonConfig::resolve(f, Settings::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(named), "{err}");
    }
}

#[test]
fn bad_values_are_errors() {
    for (cpu, mem, label) in [
        ("x", "1Gi", "a=b"),
        ("2", "1Go", "a=b"),
        ("2", "1Gi", "nolabel"),
        ("0.05", "1Gi", "a=b"),
    ] {
        let mut f = flags();
        f.node_cpu = Some(cpu.into());
        f.node_memory = Some(mem.into());
        f.labels = vec![label.into()];
        assert!(
            DaemonConfig::resolve(f, Settings::default()).is_err(),
            "{cpu} {mem} {label}"
        );
    }
    assert!(toml::from_str::<Settings>("colour = 1").is_err());
}

#[test]
fn cluster_mode_needs_a_gossip_address_and_resolves_the_role() {
    assert!(
        DaemonConfig::resolve(flags(), Settings::default())
            .unwrap()
            .cluster
            .is_none(),
        "no gossip address: a standalone node"
    );
    let mut f = flags();
    f.seeds = vec!["10.0.0.1:7946".into()];
    let err = DaemonConfig::resolve(f, Settings::default()).unwrap_err();
    assert!(err.to_string().contains("--gossip-addr"), "{err}");

    let mut f = flags();
    f.gossip_addr = Some("10.0.0.1:7946".into());
    let c = DaemonConfig::resolve(f.clone(), Settings::default())
        .unwrap()
        .cluster
        .unwrap();
    assert_eq!(c.role, Role::ControlPlane, "no seed: the control plane");
    assert_eq!(c.gossip.gossip_interval, DEFAULT_GOSSIP_INTERVAL);

    f.seeds = vec!["10.0.0.1:7946".into()];
    f.cluster_id = Some("prod".into());
    let c = DaemonConfig::resolve(f, Settings::default())
        .unwrap()
        .cluster
        .unwrap();
    assert_eq!(c.role, Role::Worker, "a seed: a worker");
    assert!(c.cluster_id_explicit);
}

#[test]
fn a_seed_without_a_join_token_or_an_explicit_cluster_id_is_refused() {
    for role in [None, Some(Role::Worker), Some(Role::ControlPlane)] {
        let mut f = flags();
        f.gossip_addr = Some("10.0.0.2:7946".into());
        f.seeds = vec!["10.0.0.1:7946".into()];
        f.role = role;
        let err = DaemonConfig::resolve(f.clone(), Settings::default()).unwrap_err();
        let msg = err.to_string();
        for hint in [
            "--join",
            "join-token",
            "ui cluster join-token",
            "--cluster-id",
        ] {
            assert!(msg.contains(hint), "{msg} should mention {hint}");
        }
        // From the configuration file, too.
        let file: Settings = toml::from_str("seeds = [\"10.0.0.1:7946\"]").unwrap();
        f.seeds = Vec::new();
        let err = DaemonConfig::resolve(f.clone(), file).unwrap_err();
        assert!(err.to_string().contains("--join"), "{err}");
        // The legacy form, with the cluster id given explicitly, still works.
        f.seeds = vec!["10.0.0.1:7946".into()];
        f.cluster_id = Some("prod".into());
        let c = DaemonConfig::resolve(f, Settings::default())
            .unwrap()
            .cluster
            .unwrap();
        assert_eq!(c.gossip.seeds, vec!["10.0.0.1:7946".to_owned()]);
        assert_eq!(c.gossip.cluster_id, "prod");
    }
}

#[test]
fn cluster_settings_are_validated() {
    let bad = |change: fn(&mut Settings), what: &str| {
        let mut f = flags();
        f.gossip_addr = Some("10.0.0.1:7946".into());
        change(&mut f);
        let err = DaemonConfig::resolve(f, Settings::default()).unwrap_err();
        assert!(
            err.to_string().contains(what),
            "{err} should mention {what}"
        );
    };
    bad(
        |f| f.gossip_addr = Some("0.0.0.0:7946".into()),
        "--advertise-addr",
    );
    bad(
        |f| f.gossip_addr = Some("nonsense".into()),
        "gossip address",
    );
    bad(|f| f.seeds = vec!["no-port".into()], "seed");
    bad(|f| f.role = Some(Role::Worker), "--seed");
    bad(|f| f.gossip_interval_ms = Some(0), "gossip interval");
    bad(|f| f.phi_threshold = Some(f64::NAN), "phi threshold");
    bad(|f| f.dead_node_grace_seconds = Some(0), "dead node grace");
    bad(|f| f.cluster_id = Some(String::new()), "cluster id");
    let file: Settings = toml::from_str(
        "gossip_addr = \"0.0.0.0:7946\"\nadvertise_addr = \"node1\"\nrole = \"control-plane\"",
    )
    .unwrap();
    let c = DaemonConfig::resolve(flags(), file)
        .unwrap()
        .cluster
        .unwrap();
    assert_eq!(c.advertise_host.as_deref(), Some("node1"));
    assert_eq!(c.role, Role::ControlPlane);
}

#[test]
fn the_scheduler_is_simple_unless_chosen() {
    let c = DaemonConfig::resolve(flags(), Settings::default()).unwrap();
    assert_eq!(c.scheduler, SchedulerKind::Simple);
    let file: Settings = toml::from_str("scheduler = \"mycelial\"").unwrap();
    let c = DaemonConfig::resolve(flags(), file.clone()).unwrap();
    assert_eq!(c.scheduler, SchedulerKind::Mycelial);
    let mut f = flags();
    f.scheduler = Some(SchedulerKind::Simple);
    f.scoring = Some(Scoring::Binpack);
    let c = DaemonConfig::resolve(f, file).unwrap();
    assert_eq!(
        c.scheduler,
        SchedulerKind::Simple,
        "flags win over the file"
    );
    assert!(toml::from_str::<Settings>("scheduler = \"clever\"").is_err());
}

#[test]
fn bin_packing_is_refused_with_the_mycelial_scheduler() {
    let file: Settings = toml::from_str("scoring = \"binpack\"").unwrap();
    let mut f = flags();
    f.scheduler = Some(SchedulerKind::Mycelial);
    let err = DaemonConfig::resolve(f.clone(), file).unwrap_err();
    assert!(err.to_string().contains("simple scheduler only"), "{err}");
    f.scoring = Some(Scoring::Spread);
    assert!(DaemonConfig::resolve(f, Settings::default()).is_ok());
}

#[test]
fn the_credit_price_prices_pledges_and_cannot_be_negative() {
    let c = DaemonConfig::resolve(flags(), Settings::default()).unwrap();
    assert_eq!(c.pledges.price, 0, "no pledges by default");
    let file: Settings = toml::from_str("credit_price = 500").unwrap();
    let c = DaemonConfig::resolve(flags(), file.clone()).unwrap();
    assert_eq!(c.pledges.price, 500);
    let mut f = flags();
    f.credit_price = Some(2_000);
    assert_eq!(DaemonConfig::resolve(f, file).unwrap().pledges.price, 2_000);
    let mut f = flags();
    f.credit_price = Some(-1);
    let err = DaemonConfig::resolve(f, Settings::default()).unwrap_err();
    assert!(
        err.to_string().contains("credit price -1 is negative"),
        "{err}"
    );
}

#[test]
fn honesty_probes_run_only_with_an_image() {
    let c = DaemonConfig::resolve(flags(), Settings::default()).unwrap();
    assert_eq!(c.probes.image, None, "no probes by default");
    let file: Settings = toml::from_str("probe_image = \"registry.local/busybox:1\"").unwrap();
    let c = DaemonConfig::resolve(flags(), file).unwrap();
    assert_eq!(c.probes.image.as_deref(), Some("registry.local/busybox:1"));
    let mut f = flags();
    f.probe_image = Some("  ".into());
    assert_eq!(
        DaemonConfig::resolve(f, Settings::default())
            .unwrap()
            .probes
            .image,
        None
    );
}

#[test]
fn the_gossip_key_file_is_read_at_start_and_refused_when_shared() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gossip.keys");
    let key = cluster_manager::GossipKey::generate();
    std::fs::write(&path, format!("{}\n", *key.to_base64())).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

    // From the file's `gossip_key_file` key, as from the flag.
    let text = format!(
        "gossip_addr = \"10.0.0.1:7946\"\ngossip_key_file = {:?}",
        path.display().to_string()
    );
    let file: Settings = toml::from_str(&text).unwrap();
    let c = DaemonConfig::resolve(flags(), file)
        .unwrap()
        .cluster
        .unwrap();
    assert_eq!(c.gossip_key_file.as_deref(), Some(path.as_path()));
    let ring = c.gossip.keyring.as_ref().unwrap();
    assert_eq!(ring.key_ids(), vec![key.id()]);
    // Debug of the whole configuration names the key by id only.
    let debug = format!("{c:?}");
    assert!(!debug.contains(key.to_base64().as_str()), "{debug}");

    let mut f = flags();
    f.gossip_addr = Some("10.0.0.1:7946".into());
    f.gossip_key_file = Some(path.clone());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = DaemonConfig::resolve(f.clone(), Settings::default()).unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
    f.gossip_key_file = Some(dir.path().join("missing"));
    let err = DaemonConfig::resolve(f, Settings::default()).unwrap_err();
    assert!(err.to_string().contains("gossip key file"), "{err}");

    // A key file means cluster mode.
    let mut f = flags();
    f.gossip_key_file = Some(path);
    let err = DaemonConfig::resolve(f, Settings::default()).unwrap_err();
    assert!(err.to_string().contains("--gossip-addr"), "{err}");
}

#[test]
fn a_join_token_gives_the_cluster_the_seeds_and_the_role() {
    use base64::Engine as _;
    use orchestrator_shared_types::admission::{new_secret, ControlPlaneRef, JoinRole, JoinToken};
    let token = |role, expires_at| JoinToken {
        cluster_id: "c-0123456789abcdef".into(),
        control_planes: vec![ControlPlaneRef {
            node_id: orchestrator_shared_types::NodeId([3; 32]),
            gossip_addr: "10.0.0.1:7946".into(),
            api_addr: "10.0.0.1:9090".into(),
        }],
        gossip_key: base64::engine::general_purpose::STANDARD.encode([5u8; 32]),
        role,
        expires_at,
        secret: new_secret(),
    };
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let with = |t: &JoinToken| Settings {
        gossip_addr: Some("127.0.0.1:7946".into()),
        join_token: Some(t.encode()),
        ..flags()
    };
    // From the file key too.
    let file: Settings = toml::from_str(&format!(
        "join_token = \"{}\"",
        token(JoinRole::Worker, later).encode()
    ))
    .unwrap();
    assert!(file.join_token.is_some());

    let c =
        DaemonConfig::resolve(with(&token(JoinRole::Worker, later)), Settings::default()).unwrap();
    let cs = c.cluster.unwrap();
    assert_eq!(cs.role, Role::Worker, "a worker without any --seed");
    assert_eq!(cs.gossip.seeds, vec!["10.0.0.1:7946".to_owned()]);
    assert_eq!(cs.gossip.cluster_id, "c-0123456789abcdef");
    assert!(!cs.cluster_id_explicit);
    let c = DaemonConfig::resolve(
        with(&token(JoinRole::ControlPlane, later)),
        Settings::default(),
    )
    .unwrap();
    assert_eq!(c.cluster.unwrap().role, Role::ControlPlane);

    let expired = token(
        JoinRole::Worker,
        chrono::Utc::now() - chrono::Duration::seconds(1),
    );
    let err = DaemonConfig::resolve(with(&expired), Settings::default()).unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    let mut bad = with(&token(JoinRole::Worker, later));
    bad.join_token = Some("univrs-join-1.xyz".into());
    let err = DaemonConfig::resolve(bad, Settings::default()).unwrap_err();
    assert!(err.to_string().contains("malformed join token"), "{err}");
    let mut other = with(&token(JoinRole::Worker, later));
    other.cluster_id = Some("univrs".into());
    let err = DaemonConfig::resolve(other, Settings::default()).unwrap_err();
    assert!(err.to_string().contains("differs"), "{err}");
    let mut role = with(&token(JoinRole::Worker, later));
    role.role = Some(Role::ControlPlane);
    let err = DaemonConfig::resolve(role, Settings::default()).unwrap_err();
    assert!(err.to_string().contains("role"), "{err}");
    let mut standalone = with(&token(JoinRole::Worker, later));
    standalone.gossip_addr = None;
    assert!(DaemonConfig::resolve(standalone, Settings::default()).is_err());
}

#[test]
fn an_explicit_cluster_id_is_kept() {
    let f = Settings {
        gossip_addr: Some("127.0.0.1:7946".into()),
        cluster_id: Some("prod".into()),
        ..flags()
    };
    let cs = DaemonConfig::resolve(f, Settings::default())
        .unwrap()
        .cluster
        .unwrap();
    assert!(cs.cluster_id_explicit);
    assert_eq!(cs.gossip.cluster_id, "prod");
}

#[test]
fn the_bridge_network_takes_its_subnet_and_plugins_or_says_why_it_is_off() {
    let mut f = flags();
    f.node_subnet = Some("10.88.0.0/33".into());
    let e = DaemonConfig::resolve(f, Settings::default()).unwrap_err();
    assert!(e.to_string().contains("node subnet"), "{e}");
    for bad in ["40000-30000", "0-10", "30000", "a-b", "1-70000"] {
        let mut f = flags();
        f.host_port_range = Some(bad.into());
        let e = DaemonConfig::resolve(f, Settings::default()).unwrap_err();
        assert!(e.to_string().contains("host port range"), "{bad}: {e}");
    }

    let empty = tempfile::tempdir().unwrap();
    let mut f = flags();
    f.cni_bin_dir = Some(empty.path().to_owned());
    f.node_subnet = Some("10.77.1.0/24".into());
    let c = DaemonConfig::resolve(f, Settings::default()).unwrap();
    assert!(c.youki.cni.is_none(), "no plugins there: off");
    let why = c.bridge_off.unwrap();
    assert!(
        why.contains("bridge") && why.contains("containernetworking-plugins"),
        "{why}"
    );

    // With the plugins (CI installs Debian's containernetworking-plugins).
    if container_runtime::youki::cni::check_plugins(std::path::Path::new("/usr/lib/cni")).is_ok() {
        let c = DaemonConfig::resolve(flags(), Settings::default()).unwrap();
        let cni = c.youki.cni.expect("on with the plugins");
        assert_eq!(cni.subnet.to_string(), "10.88.0.0/24");
        assert_eq!(cni.host_port_range, 30000..=32767);
        let mut f = flags();
        f.host_port_range = Some("41000-41099".into());
        let c = DaemonConfig::resolve(f, Settings::default()).unwrap();
        assert_eq!(c.youki.cni.unwrap().host_port_range, 41000..=41099);
        assert_eq!(cni.warm, 2, "two attachments made ahead of time by default");
        let mut f = flags();
        f.warm_networks = Some(0);
        assert_eq!(
            DaemonConfig::resolve(f, Settings::default())
                .unwrap()
                .youki
                .cni
                .unwrap()
                .warm,
            0
        );
        let mut f = flags();
        f.warm_networks = Some(33);
        let err = DaemonConfig::resolve(f, Settings::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("--warm-networks 33"), "{err}");
        assert!(cni.guard_node, "instances are kept off the node by default");
        assert!(cni.isolate_owners, "owners are kept apart by default");
        let mut f = flags();
        f.allow_instances_to_node = Some(true);
        let c = DaemonConfig::resolve(f, Settings::default()).unwrap();
        assert!(!c.youki.cni.unwrap().guard_node);
        let mut f = flags();
        f.allow_traffic_between_owners = Some(true);
        let c = DaemonConfig::resolve(f, Settings::default()).unwrap();
        assert!(!c.youki.cni.unwrap().isolate_owners);
        assert!(
            cni.data_dir.starts_with(&c.data_dir),
            "leases under the data directory"
        );
    }
}

#[test]
fn containers_are_confined_unless_the_operator_relaxes_it() {
    let c = DaemonConfig::resolve(flags(), Settings::default()).unwrap();
    assert!(c.youki.seccomp, "Docker's seccomp profile by default");
    assert!(!c.youki.allow_net_raw, "no CAP_NET_RAW by default");
    assert!(!c.youki.allow_host_network, "no host network by default");

    /// The daemon's settings as its command line reads them.
    #[derive(clap::Parser)]
    struct Line {
        #[command(flatten)]
        settings: Settings,
    }
    use clap::Parser;
    let parse = |args: &[&str]| {
        let mut f = Line::try_parse_from(std::iter::once("d").chain(args.iter().copied()))
            .unwrap()
            .settings;
        f.runtime = Some(RuntimeKind::Mock);
        f.data_dir = Some("/tmp/x".into());
        f
    };
    let c = DaemonConfig::resolve(
        parse(&["--no-seccomp", "--allow-net-raw"]),
        Settings::default(),
    )
    .unwrap();
    assert!(!c.youki.seccomp && c.youki.allow_net_raw);
    // An explicit value, and the flag's value over the file's.
    let file: Settings = toml::from_str("no_seccomp = true\nallow_net_raw = true").unwrap();
    let c = DaemonConfig::resolve(parse(&["--no-seccomp=false"]), file.clone()).unwrap();
    assert!(c.youki.seccomp && c.youki.allow_net_raw);
    let c = DaemonConfig::resolve(flags(), file).unwrap();
    assert!(!c.youki.seccomp && c.youki.allow_net_raw);
    assert!(Line::try_parse_from(["d", "--allow-net-raw=maybe"]).is_err());
    let c = DaemonConfig::resolve(parse(&["--allow-host-network"]), Settings::default()).unwrap();
    assert!(c.youki.allow_host_network);
    let file: Settings = toml::from_str("allow_host_network = true").unwrap();
    let c = DaemonConfig::resolve(parse(&["--allow-host-network=false"]), file.clone()).unwrap();
    assert!(!c.youki.allow_host_network, "the flag over the file");
    assert!(
        DaemonConfig::resolve(flags(), file)
            .unwrap()
            .youki
            .allow_host_network
    );
}
