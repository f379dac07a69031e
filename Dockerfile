# The Mercator server image: built with cargo, run on slim Debian as a non-root user.
# Not built in CI (no container engine there); linted by hadolint (scripts/helm.sh).
#
#   docker build -t mercator:0.1.0 .
#   docker volume create mercator-data
#   # an admin key, printed once (the registry keeps only its hash):
#   docker run --rm -v mercator-data:/var/lib/mercator --entrypoint mercator mercator:0.1.0 \
#     keys create ops --scope admin
#   # the demo models, reachable from the host; every call needs the key:
#   docker run -d --name mercator -p 8001:8001 -p 8002:8002 -v mercator-data:/var/lib/mercator \
#     -e MERCATOR_GRPC__ADDR=0.0.0.0:8001 -e MERCATOR_METRICS__ADDR=0.0.0.0:8002 \
#     -e MERCATOR_AUTH__MODE=required mercator:0.1.0 --demo
#   curl -H "Authorization: Bearer $KEY" 127.0.0.1:8002/v2/models/churn
#
# Inside a container the server must listen on 0.0.0.0 to be reached through -p, and it
# refuses to listen off loopback without auth: hence the three variables (the Helm chart
# sets the same in its mercator.toml). Arguments after the image go to `mercator serve`.
#
# Base images are pinned by digest (the multi-arch index); bump tag and digest together,
# the digest from `docker buildx imagetools inspect rust:1.95-slim-bookworm` (and
# `debian:bookworm-slim`).

# Dependencies first: cargo-chef's recipe holds only the manifests and the lockfile, so
# the layer that compiles every dependency is rebuilt only when they change, not on
# every source edit.
FROM rust:1.95-slim-bookworm@sha256:d7482085ff5b415f84dba5647ae71606650bdef00db7aeb69f4b3d170c3e4082 AS chef
RUN cargo install cargo-chef --version 0.1.78 --locked
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
# Protobufs compile with protox (no protoc); TLS is rustls on ring (no OpenSSL).
RUN cargo chef cook --release --locked -p mercator-server --bin mercator --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked -p mercator-server --bin mercator \
 && cp target/release/mercator /usr/local/bin/mercator

FROM debian:bookworm-slim@sha256:b1a741487078b369e78119849663d7f1a5341ef2768798f7b7406c4240f86aef
# CA roots for S3, PostgreSQL and Redis over TLS. Package versions follow the pinned
# base image.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/mercator mercator \
 && mkdir -p /var/lib/mercator \
 && chown mercator:mercator /var/lib/mercator
COPY --from=build /usr/local/bin/mercator /usr/local/bin/mercator
USER 10001:10001
WORKDIR /var/lib/mercator
ENV MERCATOR_SERVER__DATA_DIR=/var/lib/mercator
VOLUME ["/var/lib/mercator"]
# gRPC (V2 and the typed APIs), V2 REST and Prometheus metrics.
EXPOSE 8001 8002
ENTRYPOINT ["/usr/local/bin/mercator", "serve"]
