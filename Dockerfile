# Build stage: the release binary, with crates fetched from the registry.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin mqgate

# Run stage: the binary, the default configuration, a data volume.
FROM debian:bookworm-slim
RUN useradd --system --home /var/lib/mqgate mqgate \
    && mkdir -p /etc/mqgate /var/lib/mqgate \
    && chown mqgate /var/lib/mqgate
COPY --from=build /src/target/release/mqgate /usr/local/bin/mqgate
COPY config/mqgate.toml /etc/mqgate/mqgate.toml
USER mqgate
WORKDIR /var/lib/mqgate
ENV MQGATE__DATA_DIR=/var/lib/mqgate
VOLUME ["/var/lib/mqgate"]
# MQTT TCP, MQTT WebSocket, docs, mica, NanoMQ, RealMQ, Easemob
EXPOSE 1883 8083 18080 18083 8081 8090 8088
ENTRYPOINT ["mqgate", "--config", "/etc/mqgate/mqgate.toml"]
CMD ["run"]
