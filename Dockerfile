# The Mercator server image: built with cargo, run on slim Debian as a non-root user.
# Not built in CI (no container engine there); linted by hadolint (scripts/helm.sh).
#   docker build -t mercator:0.1.0 .
#   docker run -p 8001:8001 -p 8002:8002 mercator:0.1.0 --config /etc/mercator/mercator.toml

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Protobufs compile with protox (no protoc); TLS is rustls on ring (no OpenSSL).
COPY . .
RUN cargo build --release --locked -p mercator-server --bin mercator \
 && cp target/release/mercator /usr/local/bin/mercator

FROM debian:bookworm-slim
# CA roots for S3, PostgreSQL and Redis over TLS. Versions float with the base image,
# which is rebuilt for security updates.
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
# gRPC (V2 and the typed APIs), Prometheus metrics.
EXPOSE 8001 8002
ENTRYPOINT ["/usr/local/bin/mercator", "serve"]
