# The Univrs daemon image: `orchestrator_daemon` (entrypoint) and the `ui` CLI.
#
#   docker build -t univrs/orchestrator:local .
#   docker compose up -d          # three nodes, Prometheus, Grafana
#   docker compose --profile ha up -d etcd1 etcd2 etcd3 cp1 cp2 cp3
#                                 # three control planes on etcd
#
# Builds both binaries from source in a rust:1.95-bookworm stage, so it needs
# a registry for the two base images. Without one (CI here), build the same
# runtime image from binaries built on the host with deploy/Dockerfile.prebuilt
# (scripts/test-compose shows how). The runtime stage below and that file must
# stay the same.

# RUST_IMAGE: another Rust 1.95+ image on Debian bookworm (a mirror, say).
ARG RUST_IMAGE=rust:1.95-bookworm
FROM ${RUST_IMAGE} AS build
# libseccomp-dev: libcontainer's seccomp support links libseccomp.
# protobuf-compiler: protoc, which etcd-client's build needs.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libseccomp-dev protobuf-compiler \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# --features etcd: the daemon's (ui_cli has none of that name), so that the
# image can run control planes on etcd (--store etcd, docker-compose.yml's ha
# profile) as well as on SQLite. Not `orchestrator_daemon/etcd`: that names
# the feature of the daemon's dev-dependency on itself, which a build leaves
# out.
RUN cargo build --release --locked -p orchestrator_daemon -p ui_cli \
        --features etcd \
        --bin orchestrator_daemon --bin ui \
 && install -D -m 0755 target/release/orchestrator_daemon /out/orchestrator_daemon \
 && install -D -m 0755 target/release/ui /out/ui

FROM debian:bookworm-slim
# ca-certificates: the daemon pulls images from registries over HTTPS and
# trusts the system's roots. libseccomp2: the containers' seccomp filter.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates libseccomp2 e2fsprogs mount \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/orchestrator_daemon /out/ui /usr/local/bin/
LABEL org.univrs.image=orchestrator \
      org.opencontainers.image.title="Univrs orchestrator" \
      org.opencontainers.image.source="https://github.com/univrs/orchestrator"
ENV UNIVRS_DATA_DIR=/var/lib/univrs \
    UNIVRS_API_ADDR=0.0.0.0:9090
RUN mkdir -p -m 0700 /var/lib/univrs
VOLUME ["/var/lib/univrs"]
# REST API (tcp) and cluster gossip (udp, with --gossip-addr 0.0.0.0:7946).
EXPOSE 9090/tcp 7946/udp
ENTRYPOINT ["orchestrator_daemon"]
